"""Hypothesis strategies for property-testing code on RHM data.

Requires ``hypothesis`` (in the ``dev`` extra).

>>> from hypothesis import given, settings
>>> from rhmfast.strategies import grammars, valid_strings
>>> @settings(max_examples=5, deadline=None)
... @given(grammars().flatmap(lambda g: valid_strings(g).map(lambda x: (g, x))))
... def test_valid_strings_parse(gx):
...     g, x = gx
...     assert g.parse(x).valid.all()
>>> test_valid_strings_parse()
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rhmfast.grammar import RHM

__all__ = ["grammars", "strings", "valid_strings", "corrupted_strings"]


def _probs(draw: Any, rows: int, m: int, kind: str) -> np.ndarray | None:
    if kind == "uniform":
        return None
    if kind == "zipf":
        a = draw(st.floats(0.0, 3.0))
        w = np.arange(1, m + 1, dtype=np.float64) ** -(1.0 + a)
        return w / w.sum()
    w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=rows * m, max_size=rows * m)))
    w = w.reshape(rows, m)
    return w / w.sum(axis=1, keepdims=True)


@st.composite
def grammars(
    draw: Any,
    *,
    max_v: int = 6,
    max_s: int = 3,
    max_L: int = 3,
    max_d: int = 32,
    max_strings: int | None = None,
    rule_probs: bool = True,
) -> RHM:
    """Small random grammars (uniform, Zipf or arbitrary positive rule tables per
    level, random root prior), with ``d <= max_d`` and, if given,
    ``num_strings <= max_strings``."""
    s = draw(st.integers(2, max_s))
    L = draw(st.integers(1, max_L))
    while L > 1 and s**L > max_d:
        L -= 1
    v = draw(st.integers(2, max_v))
    K = (s**L - 1) // (s - 1)
    m_max = min(4, v ** (s - 1) if L >= 2 else v**s)
    if max_strings is not None:
        while m_max > 1 and m_max**K > max_strings:
            m_max -= 1
    m = draw(st.integers(1, m_max))
    n_max = min(6, v**s // m)
    if max_strings is not None:
        n_max = max(1, min(n_max, max_strings // m**K))
    n = draw(st.integers(1, n_max))
    seed = draw(st.integers(0, 2**32 - 1))
    probs = None
    prior = None
    if rule_probs:
        kinds = [draw(st.sampled_from(["uniform", "zipf", "table"])) for _ in range(L)]
        probs = [_probs(draw, n if lv == 0 else v, m, k) for lv, k in enumerate(kinds)]
        if draw(st.booleans()):
            w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n)))
            prior = w / w.sum()
    return RHM(v, n, m, s, L, seed=seed, rule_probs=probs, root_prior=prior)


def strings(g: RHM, *, max_num: int = 8) -> st.SearchStrategy[np.ndarray]:
    """Arbitrary ``(N, d)`` token arrays of ``g.dtype`` over ``[0, v)`` (mostly not valid)."""
    return st.integers(1, max_num).flatmap(
        lambda num: hnp.arrays(g.dtype, (num, g.d), elements=st.integers(0, g.v - 1))
    )


def valid_strings(g: RHM, *, max_num: int = 8) -> st.SearchStrategy[np.ndarray]:
    """``(N, d)`` strings of the grammar (uniform over all strings, by rank)."""
    return st.lists(st.integers(0, g.num_strings - 1), min_size=1, max_size=max_num).map(
        g.unrank
    )


def corrupted_strings(g: RHM, *, max_num: int = 8) -> st.SearchStrategy[np.ndarray]:
    """Valid strings with one to three tokens replaced: they fail at some levels
    and parse at others, which exercises per-level validity."""

    @st.composite
    def build(draw: Any) -> np.ndarray:
        x = draw(valid_strings(g, max_num=max_num)).copy()
        for row in x:
            for _ in range(draw(st.integers(1, 3))):
                row[draw(st.integers(0, g.d - 1))] = draw(st.integers(0, g.v - 1))
        return x

    return build()
