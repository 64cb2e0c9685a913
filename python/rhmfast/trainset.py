"""The data-set builder (numpy only): training and held-out strings drawn from the
study grammar (:func:`rhmfast.study_grammar`) or read from a token array. The trainer,
``rhmfast data`` and the known-answer memorizers all build their data here, from any
object with :class:`~rhmfast.diffusion.TrainConfig`'s data fields.

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

from rhmfast._io import untrusted
from rhmfast._io.atomic import atomic_write_bytes
from rhmfast._tokens import check_tokens
from rhmfast.grammar import RHM, study_grammar

__all__ = ["RunData", "token_dtype", "make_grammar", "build_data", "save_data", "load_data", "read_npz"]

# TrainConfig, or anything with its data fields (v, n, m, s, L, grammar_seed, zipf_a,
# zipf_levels, num_train, unique, num_heldout, heldout_count, data_seed, data_path)
TrainConfig = Any


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


def make_grammar(config: TrainConfig) -> RHM:
    """The grammar of ``config``: :func:`rhmfast.study_grammar` of its grammar fields."""
    return study_grammar(v=config.v, n=config.n, m=config.m, s=config.s, L=config.L,
                         grammar_seed=config.grammar_seed, zipf_a=config.zipf_a,
                         zipf_levels=config.zipf_levels)


# the most elements one array of a data file may hold (2**34; its sizes are also checked
# against the file's before anything is allocated)
_MAX_DATA_ELEMENTS = 1 << 34


def read_npz(
    path: str | pathlib.Path, what: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    """The ``keys`` (and those of ``optional`` present) of the ``.npz`` at ``path``, read
    as an untrusted file (:func:`rhmfast._io.untrusted.read_npz`: every member's ZIP
    sizes and ``.npy`` header checked before it is inflated). Anything else (missing,
    truncated, a pickle, object arrays) is a ``ValueError`` starting with ``what``;
    pickled data are refused, never loaded (they can run code)."""
    try:
        return untrusted.read_npz(
            path, keys=keys, optional=optional, max_elements=_MAX_DATA_ELEMENTS, name=what
        )
    except FileNotFoundError:
        raise ValueError(f"{what}: no such file") from None
    except OSError as err:
        raise ValueError(f"{what}: cannot be read ({err.strerror or err})") from None


def build_data(config: TrainConfig) -> RunData:
    """Draw (or read) the training and held-out sets described by ``config``."""
    dtype = token_dtype(config.v)
    if config.data_path:
        what = f"TrainConfig.data_path = {config.data_path!r}"
        arrays = read_npz(config.data_path, what, ("train",), ("heldout",))

        def tokens(key: str) -> np.ndarray:  # in [0, TrainConfig.v), in the run's dtype
            label = f"{what}: array {key!r}"
            return check_tokens(arrays[key], label, v=config.v, type_error=ValueError).astype(dtype)

        train = tokens("train")
        heldout = tokens("heldout") if "heldout" in arrays else np.zeros((0, train.shape[1]), dtype)
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
    want = config.heldout_count
    left = g.num_strings - config.num_train
    if config.unique and want > left:  # refused at once: drawing could only fail, slowly
        asked = f" (-1: as many as num_train = {config.num_train})" if config.num_heldout < 0 else ""
        raise ValueError(
            f"TrainConfig.num_heldout = {config.num_heldout}{asked}: {want} distinct held-out "
            f"strings are needed but only {left} are left (the grammar has {g.num_strings} "
            f"distinct strings, num_train = {config.num_train} of them train)"
        )
    try:
        train = np.asarray(g.sample(config.num_train, seed=config.data_seed, unique=config.unique))
    except (ValueError, MemoryError) as err:  # the message names sample()'s own "num"
        raise ValueError(f"TrainConfig.num_train = {config.num_train}: cannot draw them: {err}") from None
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
    if want and not config.unique and len(seen) >= g.num_strings:
        raise ValueError(
            f"TrainConfig.num_heldout = {config.num_heldout}: the training set holds all "
            f"{g.num_strings} strings of the grammar; none is left to hold out"
        )
    for attempt in range(1, 1001):
        if len(rows) >= want:
            break
        try:
            batch = np.asarray(g.sample(max(64, 2 * want), seed=config.data_seed + 7919 * attempt))
        except (ValueError, MemoryError) as err:
            raise ValueError(
                f"TrainConfig.num_heldout = {config.num_heldout}: cannot draw {want} strings: {err}"
            ) from None
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
    arrays = read_npz(path, f"run data {str(path)!r}", ("train", "heldout", "train_logp", "heldout_logp"))
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
