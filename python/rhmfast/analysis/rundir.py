"""Reading run directories (the contract in ``docs/ARCHITECTURE.md``), validated.

Everything is read as untrusted input (:mod:`rhmfast._io.untrusted`: never unpickled,
sizes checked before anything is allocated) and checked against the
shapes the contract promises, so a truncated or foreign file gives a ``ValueError`` that
names the file and the key, never a silent wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast._io.toml import load_toml
from rhmfast._io.untrusted import InvalidFileError, iter_jsonl, read_npz
from rhmfast._tokens import check_tokens
from rhmfast.index import TrainingIndex  # the suffix index the trainer's copy_of uses

__all__ = ["Run", "EvalRecord", "load_run", "find_runs"]

_STEP_FILE = re.compile(r"^step_(\d{8})\.npz$")


@dataclass(frozen=True)
class EvalRecord:
    """One checkpoint's evaluation (``eval/step_XXXXXXXX.npz``).

    Attributes:
        step: training step of the checkpoint.
        samples: ``(B, d)`` generated strings.
        copy_of: ``(B,)`` int64, index of the training string each sample copies, -1 if none.
        valid: ``(B,)`` bool, the whole string parses.
        valid_levels: ``(B, L)`` bool, validity per level.
        train_nll: ``(P,)`` model bound on ``-log p(x)`` of every training string (nats).
        heldout_nll: ``(H,)`` the same for held-out strings.
    """

    step: int
    samples: np.ndarray
    copy_of: np.ndarray
    valid: np.ndarray
    valid_levels: np.ndarray
    train_nll: np.ndarray
    heldout_nll: np.ndarray


def _bad(path: Path, what: str) -> ValueError:
    return ValueError(f"{path}: {what}")


# the most elements one array of a run file may hold (its sizes are also checked against
# the file's before anything is allocated)
_MAX_ELEMENTS = 1 << 34
# metrics.jsonl: about 200 training lines and one line per evaluation (a few KiB each)
_MAX_METRICS_BYTES = 1 << 28
_MAX_METRICS_DEPTH = 8


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``, read as an untrusted file
    (:func:`rhmfast._io.untrusted.read_npz`: no pickles, every member's sizes checked
    before it is inflated); any damage is one ValueError naming the file."""
    try:
        return read_npz(path, max_elements=_MAX_ELEMENTS)
    except InvalidFileError as exc:
        raise _bad(path, f"not a readable .npz file ({exc.reason})") from None
    except OSError as exc:
        raise _bad(path, f"not a readable .npz file ({exc.strerror or exc})") from None


def _require(path: Path, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        raise _bad(path, f"missing array {key!r} (has {sorted(arrays)})")
    return arrays[key]


def _check_vector(path: Path, key: str, x: np.ndarray, n: int, kind: str) -> np.ndarray:
    if x.shape != (n,):
        raise _bad(path, f"{key!r} must have shape ({n},), got {x.shape}")
    if kind == "f" and not np.issubdtype(x.dtype, np.floating):
        raise _bad(path, f"{key!r} must be floating point, got dtype {x.dtype}")
    return x


@dataclass
class Run:
    """A run directory, read lazily and validated.

    >>> import tempfile, numpy as np
    >>> from rhmfast.analysis import load_run
    >>> d = tempfile.mkdtemp()
    >>> train = np.array([[0, 1], [1, 0]], np.uint8)
    >>> np.savez(f"{d}/data.npz", train=train, heldout=train[:1],
    ...          train_logp=np.log([0.25, 0.25]), heldout_logp=np.log([0.25]))
    >>> run = load_run(d)
    >>> run.num_train, run.d, len(run.steps)
    (2, 2, 0)
    """

    path: Path
    config: dict[str, Any]
    train: np.ndarray
    heldout: np.ndarray
    train_logp: np.ndarray
    heldout_logp: np.ndarray
    steps: np.ndarray
    _cache: dict[int, EvalRecord] = field(default_factory=dict, repr=False)

    @property
    def num_train(self) -> int:
        return int(self.train.shape[0])

    @property
    def num_heldout(self) -> int:
        return int(self.heldout.shape[0])

    @property
    def d(self) -> int:
        return int(self.train.shape[1])

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        """Rows of ``metrics.jsonl``, read as an untrusted file
        (:func:`rhmfast._io.untrusted.iter_jsonl`: size and nesting bounded; the NaN a
        diverged loss is written as is read back; a torn last line, from a killed run,
        is skipped); any other damage is one ValueError naming the file and the line."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        rows: list[dict[str, Any]] = []
        for i, row in iter_jsonl(path, max_bytes=_MAX_METRICS_BYTES, max_depth=_MAX_METRICS_DEPTH,
                                 name=str(path), allow_nan=True, torn_tail=True):
            if not isinstance(row, dict):
                raise _bad(path, f"line {i}: is not a JSON object")
            rows.append(row)
        return rows

    def eval(self, step: int) -> EvalRecord:
        """The evaluation at ``step`` (validated against the data)."""
        step = int(step)
        if step in self._cache:
            return self._cache[step]
        path = self.path / "eval" / f"step_{step:08d}.npz"
        if not path.exists():
            raise ValueError(f"step={step}: no evaluation in {self.path / 'eval'}")
        z = _load_npz(path)
        samples = check_tokens(_require(path, z, "samples"), f"{path}: 'samples'", d=self.d, type_error=ValueError)
        b = samples.shape[0]
        copy_of = _check_vector(path, "copy_of", _require(path, z, "copy_of"), b, "i")
        if not np.issubdtype(copy_of.dtype, np.integer):
            raise _bad(path, f"'copy_of' must be integer, got dtype {copy_of.dtype}")
        if b and (copy_of.min() < -1 or copy_of.max() >= self.num_train):
            raise _bad(path, f"'copy_of' values must lie in [-1, {self.num_train})")
        valid = _check_vector(path, "valid", _require(path, z, "valid"), b, "b").astype(bool)
        vl = _require(path, z, "valid_levels")
        if vl.ndim != 2 or vl.shape[0] != b:
            raise _bad(path, f"'valid_levels' must have shape ({b}, L), got {vl.shape}")
        train_nll = _check_vector(path, "train_nll", _require(path, z, "train_nll"), self.num_train, "f")
        heldout_nll = _check_vector(
            path, "heldout_nll", _require(path, z, "heldout_nll"), self.num_heldout, "f"
        )
        if "step" in z and int(z["step"]) != step:
            raise _bad(path, f"'step' is {int(z['step'])}, the file name says {step}")
        rec = EvalRecord(
            step=step,
            samples=samples,
            copy_of=copy_of.astype(np.int64),
            valid=valid,
            valid_levels=vl.astype(bool),
            train_nll=train_nll.astype(np.float64),
            heldout_nll=heldout_nll.astype(np.float64),
        )
        self._cache[step] = rec
        return rec

    def evals(self) -> list[EvalRecord]:
        """Every evaluation, in step order."""
        return [self.eval(int(s)) for s in self.steps]

    # -- per-checkpoint matrices (T checkpoints) --------------------------------------

    @cached_property
    def copy_counts(self) -> np.ndarray:
        """``(T, P)`` int64: how many generated samples copy each training string."""
        out = np.zeros((len(self.steps), self.num_train), np.int64)
        for t, rec in enumerate(self.evals()):
            hit = rec.copy_of[rec.copy_of >= 0]
            out[t] = np.bincount(hit, minlength=self.num_train)
        return out

    @cached_property
    def heldout_copy_counts(self) -> np.ndarray:
        """``(T, H)`` int64: how many generated samples equal each held-out string.

        Held-out strings come from the same distribution as the training strings but
        were never trained on: their generation rate is the control that tells
        memorization apart from generalization (and from over-production of common
        strings)."""
        out = np.zeros((len(self.steps), self.num_heldout), np.int64)
        if not self.num_heldout or not len(self.steps):
            return out
        index = TrainingIndex(self.heldout)
        for t, rec in enumerate(self.evals()):
            which, _ = index.lookup(rec.samples)  # smallest index of an equal held-out string
            out[t] = np.bincount(which[which >= 0], minlength=self.num_heldout)
        return out

    @cached_property
    def num_samples(self) -> np.ndarray:
        """``(T,)`` number of generated samples per checkpoint."""
        return np.array([rec.samples.shape[0] for rec in self.evals()], np.int64)

    @cached_property
    def train_nll(self) -> np.ndarray:
        """``(T, P)`` model NLL bound of every training string per checkpoint."""
        if not len(self.steps):
            return np.zeros((0, self.num_train))
        return np.stack([rec.train_nll for rec in self.evals()])

    @cached_property
    def heldout_nll(self) -> np.ndarray:
        """``(T, H)`` model NLL bound of every held-out string per checkpoint."""
        if not len(self.steps):
            return np.zeros((0, self.num_heldout))
        return np.stack([rec.heldout_nll for rec in self.evals()])

    @cached_property
    def valid_fraction(self) -> np.ndarray:
        """``(T,)`` fraction of generated samples that parse."""
        return np.array([rec.valid.mean() if rec.valid.size else np.nan for rec in self.evals()])

    @cached_property
    def valid_other(self) -> np.ndarray:
        """``(T,)`` valid samples that copy no training string: the grammar draws of a
        model that memorized nothing, times ``1 - S`` (:mod:`rhmfast.stats.chance`)."""
        valid = np.array([int(np.count_nonzero(rec.valid)) for rec in self.evals()], np.float64)
        return np.maximum(valid - self.copy_counts.sum(1), 0.0) if len(valid) else valid

    @cached_property
    def valid_levels_fraction(self) -> np.ndarray:
        """``(T, L)`` per-level validity rates of the generated samples."""
        if not len(self.steps):
            return np.zeros((0, 0))
        return np.stack([rec.valid_levels.mean(axis=0) for rec in self.evals()])


def load_run(path: str | Path) -> Run:
    """Open a run directory: ``data.npz`` (required), ``config.toml``, ``eval/*.npz``."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path={str(root)!r}: not a run directory")
    data_path = root / "data.npz"
    if not data_path.exists():
        raise ValueError(f"path={str(root)!r}: no data.npz (is this a run directory?)")
    z = _load_npz(data_path)
    # tokens >= 0 (a run directory does not record v)
    train = check_tokens(_require(data_path, z, "train"), f"{data_path}: 'train'", type_error=ValueError)
    if train.shape[0] == 0:
        raise _bad(data_path, "'train' is empty")
    heldout = z.get("heldout", np.zeros((0, train.shape[1]), train.dtype))
    heldout = check_tokens(heldout, f"{data_path}: 'heldout'", d=train.shape[1], type_error=ValueError)
    nan_p = np.full(train.shape[0], np.nan)
    train_logp = _check_vector(data_path, "train_logp", z.get("train_logp", nan_p), train.shape[0], "f")
    heldout_logp = _check_vector(
        data_path, "heldout_logp", z.get("heldout_logp", np.full(heldout.shape[0], np.nan)),
        heldout.shape[0], "f",
    )
    config: dict[str, Any] = {}
    if (root / "config.toml").exists():
        config = load_toml(root / "config.toml")
    steps: list[int] = []
    if (root / "eval").is_dir():
        for f in (root / "eval").iterdir():
            m = _STEP_FILE.match(f.name)
            if m:
                steps.append(int(m.group(1)))
    return Run(
        path=root,
        config=config,
        train=train,
        heldout=heldout,
        train_logp=train_logp.astype(np.float64),
        heldout_logp=heldout_logp.astype(np.float64),
        steps=np.array(sorted(steps), np.int64),
    )


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory (holding ``data.npz``) at or below ``root``, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("data.npz"))
