"""TrainingIndex against pure-Python references (sorting all suffixes, sets of tuples,
brute-force substring search)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhmfast import TrainingIndex, memorized


@st.composite
def token_sets(draw, max_rows=25, max_d=8):
    rows = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_d))
    v = draw(st.integers(1, 5))
    x = np.array(draw(st.lists(st.integers(0, v - 1), min_size=rows * d, max_size=rows * d)))
    x = x.reshape(rows, d)
    # token values: small (shifted codes), u16 range, or spread over [0, 2**32) (dense codes)
    scale = draw(st.sampled_from([1, 1, 9000, (2**32 - 1) // 4]))
    dtype = draw(st.sampled_from([np.uint8, np.int64, np.uint32, np.int16, np.uint64]))
    x = x * scale
    if np.iinfo(dtype).max < x.max():
        dtype = np.int64
    return x.astype(dtype)


def suffixes(x: np.ndarray) -> list[tuple[int, ...]]:
    d = x.shape[1]
    return [tuple(int(t) for t in x[p // (d + 1), p % (d + 1) :]) for p in range(x.shape[0] * (d + 1))]


def brute_count(x: np.ndarray, p) -> int:
    p = tuple(int(t) for t in p)
    d = x.shape[1]
    if len(p) == 0:
        return x.shape[0] * (d + 1)
    return sum(tuple(r[i : i + len(p)]) == p for r in x.tolist() for i in range(d - len(p) + 1))


@settings(deadline=None, max_examples=12)
@given(
    rows=st.integers(1500, 4000),
    d=st.integers(1, 40),
    v=st.integers(1, 255),
    distinct=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
)
def test_large_suffix_array_orders_suffixes_with_exact_lcp(rows, d, v, distinct, seed):
    # > 2**15 positions (several radix buckets of the chunk sort), many repeated strings
    # (runs sharing several packed chunks), alphabets of 1 to 255 symbols; checked with
    # a vectorized reference: each suffix as a row of codes padded with -1 past its end
    rng = np.random.default_rng(seed)
    x = rng.integers(0, v, size=(distinct, d))[rng.integers(0, distinct, size=rows)]
    index = TrainingIndex(x.astype(np.uint8))
    sa, lcp = index.suffix_array.astype(np.int64), index.lcp.astype(np.int64)
    n = rows * (d + 1)
    assert np.array_equal(np.sort(sa), np.arange(n))
    padded = np.full((rows, 2 * d + 1), -1)
    padded[:, :d] = x
    r, o = sa // (d + 1), sa % (d + 1)
    suf = padded[r[:, None], o[:, None] + np.arange(d + 1)]  # (n, d + 1)
    a, b = suf[:-1], suf[1:]
    differ = a != b
    first = np.where(differ.any(1), differ.argmax(1), d + 1)
    common = np.minimum(first, np.minimum((a >= 0).sum(1), (b >= 0).sum(1)))
    assert lcp[0] == 0 and np.array_equal(lcp[1:], common)
    rows_ = np.arange(n - 1)
    at = np.minimum(first, d)
    ok = (first == d + 1) | (a[rows_, at] < b[rows_, at])
    assert ok.all()  # ascending (equal suffixes allowed)


@settings(deadline=None, max_examples=60)
@given(token_sets())
def test_suffix_array_and_lcp_match_sorted_suffixes(x):
    index = TrainingIndex(x)
    sa, lcp = index.suffix_array, index.lcp
    d = x.shape[1]
    assert index.num_strings == x.shape[0] and index.length == d
    assert sorted(sa.tolist()) == list(range(x.shape[0] * (d + 1)))
    suf = suffixes(x)
    in_order = [suf[p] for p in sa]
    assert in_order == sorted(suf)
    for i in range(1, len(sa)):
        a, b = in_order[i - 1], in_order[i]
        common = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]), min(len(a), len(b)))
        assert lcp[i] == common
    assert lcp[0] == 0


@settings(deadline=None, max_examples=60)
@given(token_sets(), st.data())
def test_lookup_and_memorized_match_a_set_of_tuples(x, data):
    index = TrainingIndex(x)
    first: dict[tuple, int] = {}
    mult: dict[tuple, int] = {}
    for i, r in enumerate(map(tuple, x.tolist())):
        first.setdefault(r, i)
        mult[r] = mult.get(r, 0) + 1
    extra = np.array(
        data.draw(st.lists(st.lists(st.integers(0, 6), min_size=x.shape[1], max_size=x.shape[1]), max_size=6)),
        dtype=np.int64,
    ).reshape(-1, x.shape[1])
    samples = np.concatenate([x.astype(np.int64), extra])
    which, count = index.lookup(samples)
    for s, w, c in zip(map(tuple, samples.tolist()), which, count):
        assert w == first.get(s, -1)
        assert c == mult.get(s, 0)
    mask, which2 = memorized(samples, x, return_index=True)
    assert (mask == (which >= 0)).all() and (which2 == which).all()
    assert (memorized(samples, index) == mask).all()


@settings(deadline=None, max_examples=60)
@given(token_sets(), st.data())
def test_count_matches_brute_force(x, data):
    index = TrainingIndex(x)
    rows = x.tolist()
    pats = []
    for _ in range(8):
        r = data.draw(st.sampled_from(rows))
        a = data.draw(st.integers(0, len(r)))
        b = data.draw(st.integers(a, len(r)))
        pats.append(np.array(r[a:b], dtype=x.dtype))
    pats += [np.array(p) for p in data.draw(st.lists(st.lists(st.integers(0, 5), max_size=10), max_size=5))]
    pats.append(np.array([-1, 3]))
    got = index.count(pats)
    assert got.tolist() == [brute_count(x, p) for p in pats]
    if pats[0].size:
        k = len(pats[0])
        two_d = np.stack([p.astype(np.int64) for p in pats if len(p) == k])
        assert index.count(two_d).tolist() == [brute_count(x, p) for p in two_d]


@settings(deadline=None, max_examples=60)
@given(token_sets(), st.data())
def test_longest_match_matches_brute_force(x, data):
    index = TrainingIndex(x)
    w = data.draw(st.integers(0, 10))
    rows = data.draw(st.integers(0, 6))
    alphabet = sorted(set(x.ravel().tolist())) + [int(x.max()) + 1]
    q = np.array(
        data.draw(st.lists(st.sampled_from(alphabet), min_size=rows * w, max_size=rows * w)), dtype=np.int64
    ).reshape(rows, w)
    length, string, offset = index.longest_match(q)
    for r in range(rows):
        s = q[r].tolist()
        best = max(
            (b - a for a in range(w) for b in range(a + 1, w + 1) if brute_count(x, s[a:b]) > 0), default=0
        )
        assert length[r] == best
        if best == 0:
            assert (string[r], offset[r]) == (-1, -1)
        else:
            hit = x[string[r], offset[r] : offset[r] + best].tolist()
            assert len(hit) == best
            assert any(s[a : a + best] == hit for a in range(w - best + 1))


def test_views_are_zero_copy_read_only_and_keep_the_index_alive():
    x = np.random.default_rng(0).integers(0, 4, size=(50, 8))
    index = TrainingIndex(x)
    sa = index.suffix_array
    assert sa.base is not None and not sa.flags.writeable and not sa.flags.owndata
    assert sa.dtype == np.int32 and index.lcp.dtype == np.uint8
    with pytest.raises(ValueError):
        sa[0] = 1
    expected = sa.copy()
    del index
    assert (sa == expected).all()


def test_same_result_whatever_the_thread_count(tmp_path):
    import subprocess
    import sys

    code = (
        "import numpy as np, rhmfast, sys;"
        "x = np.random.default_rng(1).integers(0, 3, size=(3000, 16));"
        "i = rhmfast.TrainingIndex(x);"
        "q = np.random.default_rng(2).integers(0, 3, size=(500, 16));"
        "s = rhmfast.kgram_counts_all(x, max_k=6);"
        "np.savez(sys.argv[1], sa=i.suffix_array, lcp=i.lcp, lm=np.stack(i.longest_match(q)),"
        " c=i.count(q[:, :5]), k=np.concatenate([c for _, c in s.values()]),"
        " w=np.concatenate([g.ravel() for g, _ in s.values()]))"
    )
    out = []
    for threads in ("1", "2"):
        path = tmp_path / f"t{threads}.npz"
        env = {**__import__("os").environ, "RAYON_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, env=env)
        out.append(np.load(path))
    for key in ("sa", "lcp", "lm", "c", "k", "w"):
        assert (out[0][key] == out[1][key]).all(), key
