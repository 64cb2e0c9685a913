"""The training-set suffix index: exact copies, longest shared substrings, substring
counts. Built once over a training set (a suffix array with LCP, in Rust), queried many
times, saved and loaded.

>>> import numpy as np
>>> from rhmfast import TrainingIndex, memorized
>>> train = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3]])
>>> index = TrainingIndex(train)
>>> index.lookup(np.array([[3, 2, 1, 0], [1, 1, 1, 1]]))
(array([ 1, -1]), array([1, 0]))
>>> memorized(np.array([[0, 1, 2, 3], [0, 1, 2, 2]]), index)
array([ True, False])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np

from rhmfast import _rhmfast
from rhmfast._args import integer
from rhmfast._tokens import query_tokens, training_tokens


class TrainingIndex:
    """Suffix index over a set of equal-length token strings.

    ``train`` is a 2-D integer array (strings x tokens) with tokens in ``[0, 2**32)``.
    The strings are concatenated with a separator after each one, so no match ever
    spans two strings. Short strings over at most 255 symbols are sorted by a radix
    sort of packed token chunks, which also yields the LCP array; otherwise libsais
    builds the suffix array. Memory: about 6 bytes per token for alphabets under 255
    symbols and strings under 256 tokens (1 text + 4 suffix array + 1 LCP), up to 14
    during the build.

    >>> import numpy as np
    >>> index = TrainingIndex(np.array([[0, 1, 0, 1], [1, 1, 0, 0]]))
    >>> index.num_strings, index.length
    (2, 4)
    >>> index.count([np.array([0, 1]), np.array([1, 0, 0]), np.array([2])])
    array([2, 1, 0])
    >>> index.longest_match(np.array([[1, 0, 1, 1]]))
    (array([3]), array([0]), array([1]))
    """

    __slots__ = ("_native",)

    def __init__(self, train: Any) -> None:
        self._native = _rhmfast.TrainingIndex(training_tokens(train, "train"))

    @classmethod
    def _from_native(cls, native: _rhmfast.TrainingIndex) -> TrainingIndex:
        obj = cls.__new__(cls)
        obj._native = native
        return obj

    @property
    def num_strings(self) -> int:
        """Number of training strings ``N``."""
        return self._native.num_strings

    @property
    def length(self) -> int:
        """Tokens per training string ``d``."""
        return self._native.length

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index (text, suffix array, LCP, lookup tables)."""
        return self._native.memory_bytes

    @property
    def suffix_array(self) -> np.ndarray:
        """Read-only zero-copy view (int32, or int64 beyond 2**31-1 positions).

        Entries are positions ``p`` in the concatenated text of length ``N*(d+1)``:
        string ``p // (d+1)``, offset ``p % (d+1)``; offset ``d`` is a string's
        separator (those ``N`` suffixes sort first).
        """
        return self._native.suffix_array

    @property
    def lcp(self) -> np.ndarray:
        """Read-only zero-copy view: ``lcp[i]`` = common prefix length of suffixes
        ``suffix_array[i-1]`` and ``suffix_array[i]`` within their strings (``lcp[0] = 0``);
        uint8 when ``d < 256``, else uint16/uint32."""
        return self._native.lcp

    def lookup(self, samples: Any) -> tuple[np.ndarray, np.ndarray]:
        """For each sample (row of a 2-D array): the smallest index of an equal training
        string, -1 if none, and the number of training strings equal to it (int64).
        Samples must have the training strings' length ``d``: a string of another
        length cannot be a copy, and asking is a mistake worth hearing about."""
        q = query_tokens(samples, "samples")
        if q.shape[1] != self.length:
            raise ValueError(
                f"samples: strings have length {q.shape[1]}, the training strings {self.length}"
            )
        return self._native.lookup(q)

    def longest_match(self, samples: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each sample: the length of its longest substring that occurs in a training
        string, and one occurrence (training string, offset); -1, -1 when the length is 0.
        Samples may have any length."""
        return self._native.longest_match(query_tokens(samples, "samples"))

    def count(self, patterns: Any) -> np.ndarray:
        """Occurrences of each pattern in the training strings (int64).

        ``patterns`` is a 2-D array (one pattern per row) or a sequence of 1-D arrays of
        any lengths. The empty pattern occurs ``N*(d+1)`` times (every position and
        string end); patterns longer than ``d`` occur 0 times.
        """
        if isinstance(patterns, np.ndarray) and patterns.ndim == 2:
            flat = query_tokens(patterns, "patterns").reshape(-1)
            offsets = np.arange(patterns.shape[0] + 1, dtype=np.int64) * patterns.shape[1]
        elif isinstance(patterns, np.ndarray) or not isinstance(patterns, Sequence):
            raise TypeError("patterns: expected a 2-D array or a sequence of 1-D arrays")
        else:
            flat, offsets = _concatenate(patterns)
        return self._native.count(flat, offsets)

    def kgram_counts(self, max_k: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Every distinct k-gram with its count for k = 1..max_k, from the LCP intervals
        (kgrams uint32 of shape (K, k), counts int64)."""
        return dict(enumerate(self._native.kgram_counts(integer("max_k", max_k, lo=1)), start=1))

    def strings(self) -> np.ndarray:
        """The training strings ``(N, d)``, decoded from the index (uint32 copy)."""
        return self._native.strings()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` (atomically: temporary file, fsync, rename)."""
        self._native.save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrainingIndex:
        """Read an index written by :meth:`save`. The file is checked (format tag,
        version, sizes against the file length, checksum, contents): a truncated or
        foreign file raises ValueError."""
        return cls._from_native(_rhmfast.TrainingIndex.load(os.fspath(path)))

    def __repr__(self) -> str:
        return f"TrainingIndex(num_strings={self.num_strings}, length={self.length})"


def _concatenate(patterns: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Flat tokens and offsets of a sequence of 1-D patterns."""
    offsets = np.zeros(len(patterns) + 1, dtype=np.int64)
    if not patterns:
        return np.zeros(0, dtype=np.int64), offsets
    try:  # fast path: one concatenate of 1-D integer arrays or lists
        flat = np.concatenate(patterns)
        np.cumsum(np.fromiter(map(len, patterns), dtype=np.int64, count=len(patterns)), out=offsets[1:])
        if flat.ndim == 1 and flat.dtype.kind in "iu" and offsets[-1] == flat.size:
            return query_tokens(flat, "patterns", ndim=1), offsets
    except (ValueError, TypeError):
        pass
    # slow path: validate each pattern for a precise error (or mixed dtypes / empty ones)
    parts = [query_tokens(p, f"patterns[{i}]", ndim=1) for i, p in enumerate(patterns)]
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    flat = np.concatenate([p.astype(np.int64, copy=False) for p in parts])
    return flat, offsets


@overload
def memorized(samples: Any, train_or_index: Any, *, return_index: Literal[False] = ...) -> np.ndarray: ...
@overload
def memorized(
    samples: Any, train_or_index: Any, *, return_index: Literal[True]
) -> tuple[np.ndarray, np.ndarray]: ...
def memorized(
    samples: Any, train_or_index: Any, *, return_index: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Boolean mask of the samples that are exact copies of a training string.

    ``train_or_index`` is a :class:`TrainingIndex` or raw training data (indexed on the
    fly). With ``return_index=True`` also returns ``which`` (int64): the smallest index of
    the copied training string, -1 for none.

    >>> import numpy as np
    >>> train = np.array([[1, 2, 3], [3, 2, 1]])
    >>> memorized(np.array([[3, 2, 1], [1, 1, 1]]), train, return_index=True)
    (array([ True, False]), array([ 1, -1]))
    """
    index = train_or_index if isinstance(train_or_index, TrainingIndex) else TrainingIndex(train_or_index)
    which, _ = index.lookup(samples)
    mask = which >= 0
    return (mask, which) if return_index else mask


__all__ = ["TrainingIndex", "memorized"]
