"""Token-array validation shared by the grammar, index and counting facades (numpy only).

>>> training_tokens([[0, 1], [2, 3]], "x").dtype
dtype('uint8')
"""

from __future__ import annotations

from typing import Any

import numpy as np

# dtypes the native module reads without a copy
NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.int64))


def as_array(x: Any, name: str, ndim: int) -> np.ndarray:
    """``x`` as an integer numpy array of ``ndim`` dimensions, or a clear error."""
    try:
        a = np.asarray(x)
    except ValueError as e:  # ragged nested sequences
        raise ValueError(f"{name}: rows have different lengths (ragged input): {e}") from None
    if a.dtype == object:
        raise ValueError(f"{name}: rows have different lengths or are not integers (object array)")
    if a.dtype.kind not in "iu":
        if a.size == 0 and a.dtype.kind == "f":
            a = a.astype(np.int64)  # np.asarray([[]]) is float64
        else:
            raise TypeError(f"{name}: expected integer tokens, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    return a


def training_tokens(x: Any, name: str) -> np.ndarray:
    """A non-empty 2-D token set with values in [0, 2**32), in the narrowest unsigned dtype."""
    a = as_array(x, name, 2)
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name}: empty set (shape {a.shape}); need at least one string of one token")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= 2**32:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name}: token {bad} is outside [0, 2**32)")
    if hi < 2**8:
        dt: type[np.unsignedinteger[Any]] = np.uint8
    elif hi < 2**16:
        dt = np.uint16
    else:
        dt = np.uint32
    if a.dtype in NATIVE_DTYPES and a.dtype.itemsize <= np.dtype(dt).itemsize:
        return np.ascontiguousarray(a)
    return np.ascontiguousarray(a, dtype=dt)


def query_tokens(x: Any, name: str, ndim: int = 2, *, width: int | None = None) -> np.ndarray:
    """Tokens of any integer values, checked natively against the alphabet (outside the
    training alphabet they match nothing; outside a grammar's ``[0, v)`` they are an
    error), in a dtype the native module reads without a copy. ``width``: the required
    row length of a 2-D array."""
    a = as_array(x, name, ndim)
    if width is not None and a.shape[-1] != width:
        raise ValueError(f"{name}: strings have length {a.shape[-1]}, expected {width}")
    if a.dtype in NATIVE_DTYPES:
        return np.ascontiguousarray(a)
    if a.dtype == np.uint64:
        # values >= 2**63 wrap to negatives, which (like every value >= 2**32) match nothing
        return np.ascontiguousarray(a).view(np.int64)
    return np.ascontiguousarray(a, dtype=np.int64)
