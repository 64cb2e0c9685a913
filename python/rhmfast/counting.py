"""Exact substring counts in a set of equal-length token strings: every distinct k-gram
(never crossing a string boundary) and the aligned blocks of each level, and the
aligned blocks of each string with their counts at the same position in a reference
set (the expected frequencies under the grammar are methods of :class:`rhmfast.RHM`).

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


# -- aligned blocks as numpy views and positional counts (what the statistics read)


def depth_of(d: int, s: int) -> int:
    """``L`` with ``s**L == d``; ValueError when ``d`` is not a power of ``s``.

    >>> depth_of(16, 2)
    4
    """
    if s < 2:
        raise ValueError(f"s must be >= 2, got {s}")
    L, n = 0, 1
    while n < d:
        n *= s
        L += 1
    if n != d:
        raise ValueError(f"string length d={d} is not a power of s={s}")
    return L


def blocks_at(x: np.ndarray, s: int, level: int) -> np.ndarray:
    """``(N, s**level, s**(L-level))`` view of the aligned blocks of ``level``.

    >>> blocks_at(np.arange(8).reshape(1, 8), 2, 1)[0].tolist()
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (strings, d), got shape {x.shape}")
    L = depth_of(x.shape[1], s)
    if not 0 <= level <= L:
        raise ValueError(f"level must lie in [0, {L}], got {level}")
    return x.reshape(x.shape[0], s**level, s ** (L - level))


def row_ids(*arrays: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Distinct rows over all ``arrays`` (each ``(n_i, k)``), in lexicographic order, and
    each row's id. Rows of small non-negative tokens are packed into one int64 each
    (first column most significant: the same order), which sorts ~10x faster than rows.

    >>> uniq, (ids,) = row_ids(np.array([[1, 0], [0, 2], [1, 0]]))
    >>> uniq.tolist(), ids.tolist()
    ([[0, 2], [1, 0]], [1, 0, 1])
    """
    stacked = np.concatenate([np.asarray(a, np.int64) for a in arrays], axis=0)
    n, k = stacked.shape
    base = int(stacked.max(initial=0)) + 1
    if n and k and int(stacked.min()) >= 0 and base ** k < 2**62:
        weights = base ** np.arange(k - 1, -1, -1, dtype=np.int64)
        keys, inv = np.unique(stacked @ weights, return_inverse=True)
        uniq = (keys[:, None] // weights[None, :]) % base
    else:
        uniq, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    out, start = [], 0
    for a in arrays:
        out.append(inv[start : start + len(a)])
        start += len(a)
    return uniq, out


def row_keys(rows: np.ndarray) -> np.ndarray:
    """``(n, k)`` rows as ``(n,)`` fixed-size byte keys (equal rows, equal keys)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return rows.view(np.dtype((np.void, 8 * rows.shape[1]))).ravel()


def joint_block_counts(generated: np.ndarray, train: np.ndarray, s: int, level: int, *,
                       positional: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct level-``level`` blocks of ``generated`` and ``train`` together, as
    ``(K, k)`` rows (``positional``: ``(K, 1 + k)``, the position first, so that one
    block at two positions is two rows), each row's count among the generated and among
    the training blocks, and the ``(N, s**level)`` row of each generated block: the one
    block table that over-production in both ``overproduction`` and
    ``rhmfast.memorization_report`` reads.

    >>> rows, gen, train, ids = joint_block_counts(np.array([[0, 1]]), np.array([[1, 1]]), 2, 1)
    >>> rows.tolist(), gen.tolist(), train.tolist(), ids.tolist()
    ([[0], [1]], [1, 1], [0, 2], [[0, 1]])
    """
    bg, bt = blocks_at(generated, s, level), blocks_at(train, s, level)
    if bg.shape[1:] != bt.shape[1:]:
        raise ValueError(f"generated and train must be 2-D with equal d, got {np.shape(generated)}, "
                         f"{np.shape(train)}")
    n, npos, k = bg.shape

    def rows(b: np.ndarray) -> np.ndarray:
        flat = b.reshape(-1, k)
        return np.column_stack([np.tile(np.arange(npos), len(b)), flat]) if positional else flat

    uniq, (ig, it) = row_ids(rows(bg), rows(bt))
    return (uniq, np.bincount(ig, minlength=len(uniq)), np.bincount(it, minlength=len(uniq)),
            ig.reshape(n, npos))


def positional_block_counts(x: np.ndarray, s: int, level: int, *,
                            reference: np.ndarray | None = None) -> np.ndarray:
    """``(N, s**level)``: how many ``reference`` strings (default: ``x``) hold each
    string's level-``level`` block at the same position, from the native
    :func:`rhmfast.block_counts` (0 for a block the reference never has there).

    >>> x = np.array([[0, 0], [0, 1], [0, 1]])
    >>> positional_block_counts(x, 2, 1).tolist()   # level 1 = tokens: 3 zeros, then 1 / 2 / 2
    [[3, 1], [3, 2], [3, 2]]
    """
    x = np.asarray(x)
    L = depth_of(x.shape[1], s)
    ref = x if reference is None else np.asarray(reference)
    if ref.ndim != 2 or ref.shape[1] != x.shape[1]:
        raise ValueError(f"reference must have shape (M, {x.shape[1]}), got {ref.shape}")
    if not 0 <= level <= L:
        raise ValueError(f"level must lie in [0, {L}], got {level}")
    npos = s**level
    if not len(x) or not len(ref):
        return np.zeros((len(x), npos), np.int64)
    positions, blocks, counts = block_counts(ref, s, level, positional=True)
    keys = row_keys(np.column_stack([positions, blocks]))
    order = np.argsort(keys)
    keys, counts = keys[order], np.asarray(counts, np.int64)[order]
    bx = blocks_at(x, s, level)
    q = row_keys(np.column_stack([np.tile(np.arange(npos), len(x)), bx.reshape(len(x) * npos, -1)]))
    at = np.minimum(np.searchsorted(keys, q), len(keys) - 1)
    return np.where(keys[at] == q, counts[at], 0).reshape(len(x), npos)


__all__ = ["kgram_counts", "kgram_counts_all", "block_counts", "depth_of", "blocks_at", "row_ids", "row_keys",
           "joint_block_counts", "positional_block_counts"]
