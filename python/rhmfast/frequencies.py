"""Exact substring frequencies in a set of equal-length token strings: every distinct
k-gram (never crossing a string boundary) and the aligned blocks of each level.

>>> import numpy as np
>>> from rhmfast import kgram_counts, block_counts
>>> x = np.array([[0, 1, 0, 1], [1, 1, 0, 1]])
>>> kgrams, counts = kgram_counts(x, 2)
>>> kgrams.tolist(), counts.tolist()
([[0, 1], [1, 0], [1, 1]], [3, 2, 1])
>>> positions, blocks, counts = block_counts(x, 2, 1)
>>> positions.tolist(), blocks.tolist(), counts.tolist()
([0, 0, 1], [[0, 1], [1, 1], [0, 1]], [1, 1, 2])
"""

from __future__ import annotations

from typing import Any, Literal, overload

import numpy as np

from rhmfast import _rhmfast
from rhmfast._args import integer
from rhmfast._tokens import training_tokens


def _out_dtype(x: Any) -> np.dtype[Any]:
    dt = np.asarray(x).dtype
    return dt if dt.kind in "iu" else np.dtype(np.int64)


def kgram_counts(x: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct k-gram of the set with its count, never crossing a string boundary.

    Returns ``(kgrams, counts)``: kgrams ``(K, k)`` in lexicographic order, in the input's
    integer dtype, counts ``(K,)`` int64. ``1 <= k <= d``.
    """
    a = training_tokens(x, "x")
    kgrams, counts = _rhmfast.kgram_counts(a, integer("k", k, lo=1))
    return kgrams.astype(_out_dtype(x), copy=False), counts


def kgram_counts_all(x: Any, *, max_k: int | None = None) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """:func:`kgram_counts` for every ``k = 1..max_k`` at once (default ``max_k = d``): the
    k-gram frequency spectrum. One sort of the longest windows (or the suffix array's LCP
    intervals for wide alphabets and long k) serves every k.

    >>> import numpy as np
    >>> spectrum = kgram_counts_all(np.array([[0, 0, 1]]))
    >>> [(k, c.tolist()) for k, (_, c) in spectrum.items()]
    [(1, [2, 1]), (2, [1, 1]), (3, [1])]
    """
    a = training_tokens(x, "x")
    mk = a.shape[1] if max_k is None else integer("max_k", max_k, lo=1)
    dt = _out_dtype(x)
    return {
        k: (kg.astype(dt, copy=False), c)
        for k, (kg, c) in enumerate(_rhmfast.kgram_counts_all(a, mk), start=1)
    }


@overload
def block_counts(
    x: Any, s: int, level: int, *, positional: Literal[True] = ...
) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def block_counts(
    x: Any, s: int, level: int, *, positional: Literal[False]
) -> tuple[np.ndarray, np.ndarray]: ...
def block_counts(
    x: Any, s: int, level: int, *, positional: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray]:
    """Counts of the aligned blocks of a level.

    Strings have ``d = s**L`` tokens; a level-``level`` block spans ``s**(L-level)``
    tokens at offsets ``j * s**(L-level)``, ``j = 0..s**level - 1`` (level 0: the whole
    string, level L: single tokens). With ``positional=True`` returns ``(positions,
    blocks, counts)`` counted per block position ``j`` (sorted by position, then block);
    with ``positional=False``, ``(blocks, counts)`` pooled over positions.
    """
    a = training_tokens(x, "x")
    positions, blocks, counts = _rhmfast.block_counts(
        a, integer("s", s, lo=2), integer("level", level), positional=bool(positional)
    )
    blocks = blocks.astype(_out_dtype(x), copy=False)
    return (positions, blocks, counts) if positional else (blocks, counts)


__all__ = ["kgram_counts", "kgram_counts_all", "block_counts"]
