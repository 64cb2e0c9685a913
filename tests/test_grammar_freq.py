"""Exact expected frequencies (symbol marginals, aligned blocks, k-grams) against
brute-force enumeration of every string of tiny grammars, and against large samples."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_rhm import RefRHM

from rhmfast import RHM, zipf
from rhmfast.strategies import grammars

TINY = grammars(max_strings=1500, max_v=4)


def brute(g):
    """Every string with its probability and derivation, by enumeration."""
    ref = RefRHM(g)
    rows = []
    for x, p in ref.enumerate():
        _, root, symbols, _, _ = ref.parse(list(x))
        rows.append((x, p, symbols))
    return rows


@settings(deadline=None, max_examples=30)
@given(TINY)
def test_symbol_marginals_match_enumeration(g):
    rows = brute(g)
    for level in range(g.L + 1):
        got = g.symbol_marginals(level)
        syms = g.n if level == 0 else g.v
        want = np.zeros((g.s**level, syms))
        for x, p, symbols in rows:
            nodes = list(x) if level == g.L else symbols[level]
            for i, a in enumerate(nodes):
                want[i, a] += p
        np.testing.assert_allclose(got, want, atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(TINY, st.data())
def test_block_probs_match_enumeration(g, data):
    rows = brute(g)
    level = data.draw(st.integers(0, g.L))
    width = g.s ** (g.L - level)
    npos = g.s**level
    table = defaultdict(float)  # (position, block) -> probability
    for x, p, _ in rows:
        for i in range(npos):
            table[i, x[i * width : (i + 1) * width]] += p
    blocks = data.draw(
        st.lists(st.tuples(*[st.integers(0, g.v - 1)] * width), min_size=1, max_size=6)
    )
    seen = [b for (_, b) in list(table)[:6]]
    blocks = np.array(blocks + seen, dtype=np.int64)
    positions = np.array(
        data.draw(st.lists(st.integers(0, npos - 1), min_size=len(blocks), max_size=len(blocks)))
    )
    got = g.block_probs(blocks, level, positions)
    want = [
        table.get((int(i), tuple(b.tolist())), 0.0) for i, b in zip(positions, blocks, strict=True)
    ]
    np.testing.assert_allclose(got, want, atol=1e-12)
    pooled = g.block_probs(blocks, level)
    want_pooled = [
        sum(table.get((i, tuple(b.tolist())), 0.0) for i in range(npos)) / npos for b in blocks
    ]
    np.testing.assert_allclose(pooled, want_pooled, atol=1e-12)


@settings(deadline=None, max_examples=40)
@given(TINY, st.data())
def test_kgram_probs_match_enumeration(g, data):
    rows = brute(g)
    pats, offs = [], []
    for _ in range(data.draw(st.integers(1, 6))):
        k = data.draw(st.integers(1, g.d))
        offs.append(data.draw(st.integers(0, g.d - k)))
        if data.draw(st.booleans()):  # a k-gram that occurs
            x = rows[data.draw(st.integers(0, len(rows) - 1))][0]
            pats.append(np.array(x[offs[-1] : offs[-1] + k]))
        else:
            pats.append(
                np.array(data.draw(st.lists(st.integers(0, g.v - 1), min_size=k, max_size=k)))
            )
    got = g.kgram_probs(pats, offs)
    want = [
        sum(p for x, p, _ in rows if x[o : o + len(q)] == tuple(q.tolist()))
        for q, o in zip(pats, offs, strict=True)
    ]
    np.testing.assert_allclose(got, want, atol=1e-12)
    pooled = g.kgram_probs(pats)
    want_pooled = [
        np.mean(
            [
                sum(p for x, p, _ in rows if x[o : o + len(q)] == tuple(q.tolist()))
                for o in range(g.d - len(q) + 1)
            ]
        )
        for q in pats
    ]
    np.testing.assert_allclose(pooled, want_pooled, atol=1e-12)
    # Whole strings: the k-gram probability of a full string is its probability.
    x = g.unrank([0])
    np.testing.assert_allclose(g.kgram_probs(x, 0), np.exp(g.log_prob(x)), rtol=1e-12)


def test_probabilities_over_all_kgrams_sum_to_one():
    g = RHM(3, 2, 2, 2, 3, seed=1, rule_probs=zipf(2, 1.0))
    for k, off in [(1, 5), (2, 3), (3, 0), (3, 5)]:
        codes = np.array(np.meshgrid(*[np.arange(3)] * k, indexing="ij")).reshape(k, -1).T
        assert abs(g.kgram_probs(codes, off).sum() - 1.0) < 1e-12
        assert abs(g.kgram_probs(codes).sum() - 1.0) < 1e-12


def _unique_rows(a):
    """np.unique(a, axis=0, return_counts=True) via base-6 codes (much faster)."""
    codes = a @ (6 ** np.arange(a.shape[1] - 1, -1, -1))
    uniq, first, counts = np.unique(codes, return_index=True, return_counts=True)
    return a[first], counts


def test_exact_frequencies_match_a_large_sample():
    g = RHM(6, 6, 4, 2, 4, seed=0, rule_probs={0: zipf(4, 1.0), 3: zipf(4, 2.0)})
    x = g.sample(200_000, seed=7).astype(np.int64)
    num = len(x)
    rng = np.random.default_rng(0)
    for k, off in [(1, 0), (2, 3), (3, 6), (5, 1), (8, 8)]:
        window = x[:, off : off + k]
        uniq, counts = _unique_rows(window)
        top = np.argsort(counts)[-20:]
        p = g.kgram_probs(uniq[top], off)
        freq = counts[top] / num
        sigma = np.sqrt(p * (1 - p) / num)
        assert (np.abs(freq - p) <= 5 * sigma + 1e-12).all(), (k, off)
        # A pattern never seen should have small probability.
        absent = rng.integers(0, 6, size=(50, k))
        seen = {tuple(r) for r in uniq.tolist()}
        pa = g.kgram_probs(absent, off)
        for r, q in zip(absent.tolist(), pa, strict=True):
            if tuple(r) not in seen:
                assert q < 10 / num
    for level in range(g.L + 1):
        width = 2 ** (g.L - level)
        blocks = x.reshape(num * 2**level, width)
        uniq, counts = _unique_rows(blocks)
        top = np.argsort(counts)[-10:]
        p = g.block_probs(uniq[top], level)
        freq = counts[top] / len(blocks)
        sigma = np.sqrt(p / len(blocks))
        assert (np.abs(freq - p) <= 6 * sigma + 1e-12).all(), level
    marg = g.symbol_marginals(g.L)
    emp = np.stack([np.bincount(x[:, i], minlength=6) for i in range(16)]) / num
    assert np.abs(emp - marg).max() < 5 * np.sqrt(0.25 / num)
