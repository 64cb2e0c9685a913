"""Training data of a run: drawn from an RHM grammar or read from a token array.

``data.npz`` (run-directory contract) holds ``train (P,d)``, ``heldout (H,d)`` (uint8
when ``v <= 256``, else uint16) and their exact grammar log-probabilities
``train_logp``/``heldout_logp`` (NaN without a grammar). The held-out set is disjoint
from the training set.

>>> import numpy as np, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> np.savez(d / "tok.npz", train=np.array([[0, 1], [1, 0]]))
>>> from rhmfast.diffusion.config import TrainConfig
>>> data = build_data(TrainConfig(data_path=str(d / "tok.npz"), v=2, s=2, L=1))
>>> data.train.tolist(), data.heldout.shape
([[0, 1], [1, 0]], (0, 2))
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
from typing import Any

import numpy as np

from rhmfast.diffusion.checkpoint import atomic_write_bytes
from rhmfast.diffusion.config import TrainConfig


@dataclasses.dataclass
class RunData:
    train: np.ndarray
    heldout: np.ndarray
    train_logp: np.ndarray
    heldout_logp: np.ndarray
    grammar: Any = None  # rhmfast.RHM or None

    @property
    def d(self) -> int:
        return int(self.train.shape[1])


def token_dtype(v: int) -> type[np.integer]:
    return np.uint8 if v <= 256 else np.uint16


def make_grammar(config: TrainConfig) -> Any:
    import rhmfast

    rule_probs = None
    if config.zipf_a > 0:
        levels = config.zipf_levels or tuple(range(config.L))
        rule_probs = {lev: rhmfast.zipf(config.m, config.zipf_a) for lev in levels}
    return rhmfast.RHM(
        config.v,
        config.n,
        config.m,
        config.s,
        config.L,
        seed=config.grammar_seed,
        rule_probs=rule_probs,
    )


def _check_tokens(arr: Any, key: str, config: TrainConfig) -> np.ndarray:
    where = f"data_path {config.data_path!r}: array {key!r}"
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{where} has dtype {a.dtype}: expected integers")
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"{where} has shape {a.shape}: expected (N, d) with d >= 1")
    if a.size and (int(a.min()) < 0 or int(a.max()) >= config.v):
        raise ValueError(
            f"{where} holds tokens in [{int(a.min())}, {int(a.max())}]: TrainConfig.v = "
            f"{config.v} requires tokens in [0, {config.v})"
        )
    return a.astype(token_dtype(config.v))


def build_data(config: TrainConfig) -> RunData:
    """Draw (or read) the training and held-out sets described by ``config``."""
    dtype = token_dtype(config.v)
    if config.data_path:
        path = pathlib.Path(config.data_path)
        if not path.is_file():
            raise ValueError(f"TrainConfig.data_path = {config.data_path!r}: no such file")
        try:
            with np.load(path, allow_pickle=False) as f:
                if "train" not in f:
                    raise ValueError(
                        f"TrainConfig.data_path = {config.data_path!r}: no 'train' array "
                        f"(found {sorted(f.files)})"
                    )
                train = _check_tokens(f["train"], "train", config)
                heldout = (
                    _check_tokens(f["heldout"], "heldout", config)
                    if "heldout" in f
                    else np.zeros((0, train.shape[1]), dtype)
                )
        except (OSError, EOFError) as err:
            raise ValueError(f"TrainConfig.data_path = {config.data_path!r}: {err}") from None
        if len(train) == 0:
            raise ValueError(f"TrainConfig.data_path = {config.data_path!r}: 'train' is empty")
        if heldout.shape[1] != train.shape[1]:
            raise ValueError(
                f"TrainConfig.data_path = {config.data_path!r}: heldout strings have length "
                f"{heldout.shape[1]}, train strings {train.shape[1]}"
            )
        nan = np.full(len(train), np.nan)
        return RunData(train, heldout, nan, np.full(len(heldout), np.nan))

    g = make_grammar(config)
    if config.unique and config.num_train > g.num_strings:
        raise ValueError(
            f"TrainConfig.num_train = {config.num_train}: the grammar has only "
            f"{g.num_strings} distinct strings, too few for a unique training set"
        )
    train = np.asarray(g.sample(config.num_train, seed=config.data_seed, unique=config.unique))
    train = train.astype(dtype)
    heldout = _draw_heldout(g, train, config).astype(dtype)
    return RunData(
        train,
        heldout,
        np.asarray(g.log_prob(train), dtype=np.float64),
        np.asarray(g.log_prob(heldout), dtype=np.float64),
        g,
    )


def _draw_heldout(g: Any, train: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Strings from the grammar not in the training set (distinct when ``unique``)."""
    seen = {row.tobytes() for row in train.astype(np.uint16)}
    rows: list[np.ndarray] = []
    want = config.heldout_count
    for attempt in range(1, 1001):
        if len(rows) >= want:
            break
        batch = np.asarray(g.sample(max(64, 2 * want), seed=config.data_seed + 7919 * attempt))
        for row in batch:
            key = row.astype(np.uint16).tobytes()
            if key in seen:
                continue
            if config.unique:
                seen.add(key)
            rows.append(row)
            if len(rows) >= want:
                break
    if len(rows) < want:
        raise ValueError(
            f"TrainConfig.num_heldout = {config.num_heldout} ({want} strings): could only "
            f"draw {len(rows)} strings outside the training set; the grammar has too few strings"
        )
    return np.asarray(rows).reshape(want, train.shape[1])


def save_data(path: pathlib.Path, data: RunData) -> None:
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        train=data.train,
        heldout=data.heldout,
        train_logp=data.train_logp,
        heldout_logp=data.heldout_logp,
    )
    atomic_write_bytes(path, buf.getvalue())


def load_data(path: pathlib.Path, config: TrainConfig) -> RunData:
    """Read and validate a run's ``data.npz`` (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("train", "heldout", "train_logp", "heldout_logp")}
    except (KeyError, OSError, ValueError, EOFError) as err:
        raise ValueError(f"run data {str(path)!r} is unreadable or incomplete: {err}") from None
    tr, ho = arrays["train"], arrays["heldout"]
    ok = (
        tr.ndim == 2
        and ho.ndim == 2
        and tr.shape[1] == ho.shape[1]
        and arrays["train_logp"].shape == (len(tr),)
        and arrays["heldout_logp"].shape == (len(ho),)
        and tr.dtype.kind == "u"
    )
    if not ok:
        raise ValueError(f"run data {str(path)!r} has inconsistent shapes or dtypes")
    # the grammar is a pure function of the (already matched) config
    grammar = None if config.data_path else make_grammar(config)
    return RunData(tr, ho, arrays["train_logp"], arrays["heldout_logp"], grammar)
