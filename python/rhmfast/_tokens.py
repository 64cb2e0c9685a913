"""Token-array validation (numpy only): the one check of a set of strings,
:func:`check_tokens` (integer dtype, ``(N, d)``, ``d`` as required, every token in
``[0, v)``), used by the grammar, index and counting facades, the metrics, the data-set
builder, the run-directory reader and the string-file reader, each with its own label
(a parameter's name, or a file and key).

>>> training_tokens([[0, 1], [2, 3]], "x").dtype
dtype('uint8')
>>> check_tokens([[0, 1], [2, 5]], "x", v=4)
Traceback (most recent call last):
ValueError: x: row 1: token 5 (position 1) is outside the alphabet [0, v=4)
"""

from __future__ import annotations

from typing import Any

import numpy as np

# dtypes the native module reads without a copy
NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.int64))


def as_array(x: Any, name: str, ndim: int, *, type_error: type[Exception] = TypeError) -> np.ndarray:
    """``x`` as an integer numpy array of ``ndim`` dimensions, or a clear error
    (``type_error`` for values that are not integers)."""
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
            raise type_error(f"{name}: expected integer tokens, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {a.shape}")
    return a


def check_tokens(
    x: Any,
    label: str,
    *,
    v: int | None = None,
    d: int | None = None,
    unit: str = "row",
    first: int = 0,
    type_error: type[Exception] = TypeError,
) -> np.ndarray:
    """``x`` as an ``(N, d)`` integer array of strings of at least one token, each of
    ``d`` tokens when ``d`` is given, every token in ``[0, v)`` (``v`` None: ``>= 0``);
    else a ValueError starting with ``label`` (a parameter's name, or a file and key)
    that names the first offending string (``unit`` and its number, counted from
    ``first``: ``"line", 1`` for a text file), the position and the bound. Tokens that
    are not integers are a ``type_error`` (TypeError for an argument, ValueError for a
    file's contents). ``x`` is returned as it is (no copy)."""
    return _checked(x, label, v, d, unit, first, type_error)[0]


def _checked(
    x: Any, label: str, v: int | None, d: int | None, unit: str, first: int, type_error: type[Exception]
) -> tuple[np.ndarray, int]:
    """:func:`check_tokens`, and the largest token (-1 for no strings)."""
    a = as_array(x, label, 2, type_error=type_error)
    if a.shape[1] == 0:
        raise ValueError(f"{label}: empty strings (shape {a.shape}); need at least one token each")
    if d is not None and a.shape[1] != d:
        where = f"{unit} {first}: " if a.shape[0] else "strings of "
        raise ValueError(f"{label}: {where}{a.shape[1]} tokens, expected d = {d}")
    if not a.size:
        return a, -1
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or (v is not None and hi >= v):
        # compared with v only where v <= hi, so v fits the array's dtype
        bad = a < 0 if v is None or hi < v else (a < 0) | (a >= v)
        r, c = (int(i) for i in np.argwhere(bad)[0])
        where = f"{label}: {unit} {r + first}: token {int(a[r, c])} (position {c})"
        if v is None:
            raise ValueError(f"{where} is negative")
        raise ValueError(f"{where} is outside the alphabet [0, v={v})")
    return a, hi


def training_tokens(x: Any, name: str) -> np.ndarray:
    """A non-empty 2-D token set with values in [0, 2**32), in the narrowest unsigned dtype."""
    a, hi = _checked(x, name, 2**32, None, "row", 0, TypeError)
    if a.shape[0] == 0:
        raise ValueError(f"{name}: empty set (shape {a.shape}); need at least one string of one token")
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
