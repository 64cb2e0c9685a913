"""k-gram and block counts against collections.Counter."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhmfast import TrainingIndex, block_counts, kgram_counts, kgram_counts_all
from rhmfast.counting import row_ids


@st.composite
def token_sets(draw, max_rows=20, max_d=12):
    rows = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_d))
    v = draw(st.integers(1, 4))
    x = np.array(draw(st.lists(st.integers(0, v - 1), min_size=rows * d, max_size=rows * d)), dtype=np.int64)
    scale = draw(st.sampled_from([1, 1, 300, 70_000, (2**32 - 1) // 4]))  # u8/u16/u32 codes, wide keys
    dtype = draw(st.sampled_from([np.int64, np.uint32, np.uint64]))
    return (x.reshape(rows, d) * scale).astype(dtype)


def kgram_reference(x: np.ndarray, k: int) -> Counter:
    return Counter(tuple(r[i : i + k]) for r in x.tolist() for i in range(len(r) - k + 1))


def as_counter(kgrams: np.ndarray, counts: np.ndarray) -> Counter:
    return Counter({tuple(g): int(c) for g, c in zip(kgrams.tolist(), counts)})


def assert_sorted_rows(a: np.ndarray) -> None:
    rows = [tuple(r) for r in a.tolist()]
    assert rows == sorted(rows) and len(set(rows)) == len(rows)


@settings(deadline=None, max_examples=80)
@given(token_sets(), st.data())
def test_kgram_counts_match_counter(x, data):
    k = data.draw(st.integers(1, x.shape[1]))
    kgrams, counts = kgram_counts(x, k)
    assert kgrams.shape == (len(counts), k) and kgrams.dtype == x.dtype and counts.dtype == np.int64
    assert as_counter(kgrams, counts) == kgram_reference(x, k)
    assert_sorted_rows(kgrams)


@settings(deadline=None, max_examples=80)
@given(token_sets(), st.data())
def test_kgram_counts_all_matches_counter_for_every_k(x, data):
    max_k = data.draw(st.integers(1, x.shape[1]))
    spectrum = kgram_counts_all(x, max_k=max_k)
    assert list(spectrum) == list(range(1, max_k + 1))
    for k, (kgrams, counts) in spectrum.items():
        assert as_counter(kgrams, counts) == kgram_reference(x, k)
        assert_sorted_rows(kgrams)
    index_spectrum = TrainingIndex(x).kgram_counts(max_k)
    for k, (kgrams, counts) in index_spectrum.items():
        assert as_counter(kgrams, counts) == kgram_reference(x, k)


@settings(deadline=None, max_examples=80)
@given(st.integers(2, 3), st.integers(0, 3), st.integers(1, 12), st.integers(1, 4), st.data())
def test_block_counts_match_counter(s, L, rows, v, data):
    d = s**L
    x = np.array(data.draw(st.lists(st.integers(0, v - 1), min_size=rows * d, max_size=rows * d)))
    x = x.reshape(rows, d) * data.draw(st.sampled_from([1, 2**30]))
    level = data.draw(st.integers(0, L))
    w = s ** (L - level)
    ref = Counter((j, tuple(r[j * w : (j + 1) * w])) for r in x.tolist() for j in range(d // w))
    positions, blocks, counts = block_counts(x, s, level)
    got = Counter({(int(p), tuple(b)): int(c) for p, b, c in zip(positions, blocks.tolist(), counts)})
    assert got == ref
    keys = [(int(p), tuple(b)) for p, b in zip(positions, blocks.tolist())]
    assert keys == sorted(keys)
    pooled_blocks, pooled_counts = block_counts(x, s, level, positional=False)
    pooled = Counter()
    for (_, b), c in ref.items():
        pooled[b] += c
    assert as_counter(pooled_blocks, pooled_counts) == pooled
    assert_sorted_rows(pooled_blocks)


@pytest.mark.parametrize("v", [3, 16, 300])
def test_kgram_counts_all_of_a_large_set_match_counter(v):
    # > 2**15 windows: the bucketed radix sort, many emission chunks, the max_k counts
    # written over the key buffer (thread-count independence: test_index.py)
    rng = np.random.default_rng(v)
    x = rng.integers(0, v, size=(1500, 24)).astype(np.uint16)
    spectrum = kgram_counts_all(x, max_k=6)
    for k, (kgrams, counts) in spectrum.items():
        assert counts.dtype == np.int64 and kgrams.dtype == x.dtype
        assert as_counter(kgrams, counts) == kgram_reference(x, k)
        assert_sorted_rows(kgrams)
    kgrams, counts = kgram_counts(x, 5)
    assert as_counter(kgrams, counts) == kgram_reference(x, 5)


def test_long_windows_use_the_general_paths():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(40, 64))
    for k in (1, 30, 64):
        assert as_counter(*kgram_counts(x, k)) == kgram_reference(x, k)
    spectrum = kgram_counts_all(x)  # 64 * 2 bits > 64: LCP intervals of the suffix array
    for k in (1, 2, 33, 64):
        assert as_counter(*spectrum[k]) == kgram_reference(x, k)
    _, blocks, counts = block_counts(x, 2, 0)
    assert counts.sum() == 40 and blocks.shape[1] == 64


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: kgram_counts(x, 0), ValueError, "k"),
        (lambda x: kgram_counts(x, 9), ValueError, "k"),
        (lambda x: kgram_counts(x, 1.5), TypeError, "k"),
        (lambda x: kgram_counts_all(x, max_k=9), ValueError, "max_k"),
        (lambda x: block_counts(x, 3, 1), ValueError, "power"),
        (lambda x: block_counts(x, 1, 1), ValueError, "s"),
        (lambda x: block_counts(x, 2, 4), ValueError, "level"),
        (lambda x: block_counts(x, 2, -1), ValueError, "level"),
        (lambda x: kgram_counts(x[:0], 1), ValueError, "empty"),
        (lambda x: kgram_counts(-x - 1, 1), ValueError, "outside"),
        (lambda x: kgram_counts([[1, 2], [3]], 1), ValueError, "ragged"),
    ],
)
def test_bad_input(call, exc, match):
    x = np.arange(16).reshape(2, 8) % 3
    with pytest.raises(exc, match=match):
        call(x)


@settings(deadline=None, max_examples=80)
@given(st.integers(0, 40), st.integers(1, 6), st.sampled_from([2, 6, 70_000, 2**40]), st.integers(0, 2**31))
def test_row_ids_match_numpy_unique_rows(n, k, hi, seed):
    """The packed-key fast path and the row path give numpy's distinct rows and ids."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, hi, (n, k)), rng.integers(0, hi, (n // 2 + 1, k))
    uniq, (ia, ib) = row_ids(a, b)
    ref, inv = np.unique(np.concatenate([a, b]).astype(np.int64), axis=0, return_inverse=True)
    np.testing.assert_array_equal(uniq, ref)
    np.testing.assert_array_equal(np.concatenate([ia, ib]), inv.reshape(-1))
