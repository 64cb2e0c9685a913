"""Scalar argument checks shared by the facades: booleans are not numbers, and a
value that does not fit is a ValueError naming the parameter and the interval, never
an OverflowError from the binding (:func:`integer`: integers; :func:`number`: finite
reals)."""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

# the largest count or size the native module takes (a 64-bit signed index)
MAX_SIZE = 2**63 - 1


def show_int(x: int) -> str:
    """``x`` for a message: in full when short, else its size (``str`` of an integer
    with thousands of digits is refused by Python). Same wording as the core's messages.

    >>> show_int(-3), show_int(2**200)
    ('-3', 'a 201-bit number (about 61 decimal digits)')
    """
    bits = abs(x).bit_length()
    if bits <= 128:
        return str(x)
    digits = int((bits - 1) * math.log10(2)) + 1
    sign = "negative " if x < 0 else ""
    return f"a {sign}{bits}-bit number (about {digits} decimal digits)"


def integer(name: str, value: Any, *, lo: int | None = 0, hi: int | None = MAX_SIZE) -> int:
    """``value`` as a Python int in ``[lo, hi]`` (``None``: unbounded), or a TypeError /
    ValueError naming ``name``.

    >>> integer("k", np.int32(3))
    3
    >>> integer("k", True)
    Traceback (most recent call last):
    TypeError: k: expected an integer, got a bool
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got a bool")
    try:
        x = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}") from None
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else show_int(hi)}]"
        raise ValueError(f"{name} = {show_int(x)} must be in {bounds}")
    return x


def number(name: str, value: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False) -> float:
    """``value`` (a real number: int, float or numpy scalar, not a bool) as a finite
    float in the interval from ``lo`` to ``hi`` (``None``: unbounded; ``lo_open`` /
    ``hi_open``: the bound itself excluded), or a TypeError / ValueError naming ``name``.

    >>> number("alpha", np.float32(0.5), lo=0, hi=1, lo_open=True, hi_open=True)
    0.5
    >>> number("strength", 0, lo=0, lo_open=True)
    Traceback (most recent call last):
    ValueError: strength = 0 must be in (0, inf)
    >>> number("lam", "1")
    Traceback (most recent call last):
    TypeError: lam: expected a number, got str
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a number, got a bool")
    if not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond the float range
        x = math.inf if value > 0 else -math.inf
    low = -math.inf if lo is None else lo
    high = math.inf if hi is None else hi
    if (
        not math.isfinite(x)
        or x < low or (lo_open and x == low)
        or x > high or (hi_open and x == high)
    ):
        left = "(-inf" if lo is None else f"{'(' if lo_open else '['}{lo}"
        right = "inf)" if hi is None else f"{hi}{')' if hi_open else ']'}"
        shown = show_int(int(value)) if isinstance(value, (int, np.integer)) else str(x)
        raise ValueError(f"{name} = {shown} must be in {left}, {right}")
    return x
