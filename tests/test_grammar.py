"""The grammar core against the pure-Python reference (tests/reference_rhm.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_rhm import RefRHM
from scipy.stats import chisquare

import rhmfast
from rhmfast import RHM, zipf
from rhmfast.strategies import corrupted_strings, grammars, strings, valid_strings

SETTINGS = settings(deadline=None, max_examples=60)


def with_strings(strategy):
    return grammars().flatmap(lambda g: strategy(g).map(lambda x: (g, x)))


def assert_parse_matches_reference(g, x):
    ref = RefRHM(g)
    p = g.parse(x)
    c = g.check(x)
    assert p.valid.dtype == bool and p.valid_levels.shape == (len(x), g.L)
    for i, row in enumerate(x.tolist()):
        valid_levels, root, symbols, rules, logp = ref.parse(row)
        assert p.valid_levels[i].tolist() == valid_levels
        assert c.valid_levels[i].tolist() == valid_levels
        assert p.valid[i] == valid_levels[0] == c.valid[i]
        assert p.root[i] == root == c.root[i]
        for level in range(g.L):
            assert p.symbols[level][i].tolist() == symbols[level]
            assert p.rules[level][i].tolist() == rules[level]
        if math.isinf(logp):
            assert p.log_prob[i] == -math.inf and c.log_prob[i] == -math.inf
        else:
            assert p.log_prob[i] == pytest.approx(logp, rel=1e-12, abs=1e-12)
    np.testing.assert_array_equal(g.log_prob(x), p.log_prob)


@SETTINGS
@given(with_strings(strings))
def test_parse_random_strings_matches_reference(gx):
    assert_parse_matches_reference(*gx)


@SETTINGS
@given(with_strings(corrupted_strings))
def test_parse_corrupted_strings_matches_reference(gx):
    g, x = gx
    assert_parse_matches_reference(g, x)
    # Column l implies column l+1.
    vl = g.parse(x).valid_levels
    assert (vl[:, :-1] <= vl[:, 1:]).all()


@SETTINGS
@given(with_strings(valid_strings))
def test_valid_strings_parse_and_rank_round_trips(gx):
    g, x = gx
    assert_parse_matches_reference(g, x)
    ref = RefRHM(g)
    idx = g.rank(x)
    assert idx == [ref.rank(row) for row in x.tolist()]
    np.testing.assert_array_equal(g.unrank(idx), x)


@SETTINGS
@given(grammars(), st.integers(1, 50), st.integers(0, 2**64 - 1))
def test_samples_parse_and_parse_inverts_sampling(g, num, seed):
    x, tree = g.sample(num, seed=seed, return_tree=True)
    assert x.shape == (num, g.d) and x.dtype == g.dtype
    p = g.parse(x)
    assert p.valid.all() and p.valid_levels.all()
    for level in range(g.L):
        np.testing.assert_array_equal(p.symbols[level], tree.symbols[level])
        np.testing.assert_array_equal(p.rules[level], tree.rules[level])
    # log_prob is the product of the chosen rules' probabilities and the root prior.
    probs, prior = g.rule_probs, g.root_prior
    want = np.log(prior[tree.symbols[0][:, 0]])
    for level in range(g.L):
        want = want + np.log(probs[level][tree.symbols[level], tree.rules[level]]).sum(axis=1)
    np.testing.assert_allclose(p.log_prob, want, rtol=1e-12)
    np.testing.assert_array_equal(g.sample(num, seed=seed), x)


@settings(deadline=None, max_examples=40)
@given(grammars(max_strings=3000))
def test_unrank_agrees_with_reference_enumeration(g):
    ref = RefRHM(g)
    table = ref.enumerate()
    assert len(table) == g.num_strings
    x, tree = g.unrank(list(range(g.num_strings)), return_tree=True)
    assert [tuple(r) for r in x.tolist()] == [t for t, _ in table]
    assert g.rank(x) == list(range(g.num_strings))
    np.testing.assert_allclose(np.exp(g.log_prob(x)), [p for _, p in table], rtol=1e-12)
    assert sum(p for _, p in table) == pytest.approx(1.0)
    # Every string is distinct (bijection with derivations).
    assert len({r.tobytes() for r in x}) == g.num_strings


def test_study_grammar_basics():
    g = RHM(6, 6, 4, 2, 4, seed=0)
    assert (g.v, g.n, g.m, g.s, g.L, g.d) == (6, 6, 4, 2, 4, 16)
    assert g.num_strings == 6 * 4**15
    rules = g.rules
    assert [r.shape for r in rules] == [(6, 4, 2)] + [(6, 4, 2)] * 3
    for r in rules:
        tuples = {tuple(t) for t in r.reshape(-1, 2).tolist()}
        assert len(tuples) == 24 and r.min() >= 0 and r.max() < 6
    assert all(
        np.array_equal(a, b) for a, b in zip(rules, RHM(6, 6, 4, 2, 4, seed=0).rules, strict=True)
    )
    assert not all(
        np.array_equal(a, b) for a, b in zip(rules, RHM(6, 6, 4, 2, 4, seed=1).rules, strict=True)
    )
    assert g == RHM(6, 6, 4, 2, 4, seed=0) and g != RHM(6, 6, 4, 2, 4, seed=1)
    assert "v=6" in repr(g)


def test_big_grammars_use_exact_big_indices():
    g = RHM(7, 3, 5, 2, 6, seed=3)
    assert g.num_strings == 3 * 5**63 and g.num_strings > 2**64
    x = g.sample(200, seed=0)
    idx = g.rank(x)
    assert all(0 <= i < g.num_strings for i in idx) and max(idx) > 2**64
    np.testing.assert_array_equal(g.unrank(idx), x)
    last = g.unrank(g.num_strings - 1, return_tree=True)[1]
    assert all((r == 4).all() for r in last.rules)
    assert g.rank(g.unrank([0, g.num_strings - 1])) == [0, g.num_strings - 1]
    u = g.sample(300, seed=1, unique=True)
    assert len({r.tobytes() for r in u}) == 300 and g.check(u).valid.all()


def test_dtype_is_smallest_holding_v():
    assert RHM(256, 2, 2, 2, 2, seed=0).sample(2, seed=0).dtype == np.uint8
    assert RHM(257, 2, 2, 2, 2, seed=0).sample(2, seed=0).dtype == np.uint16
    g = RHM(65537, 2, 2, 2, 2, seed=0)
    x = g.sample(3, seed=0)
    assert x.dtype == np.uint32 and g.check(x).valid.all()


def test_parse_accepts_any_integer_dtype():
    g = RHM(6, 6, 4, 2, 3, seed=0)
    x = g.sample(20, seed=0)
    want = g.log_prob(x)
    for dt in (np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32, np.uint64):
        np.testing.assert_array_equal(g.log_prob(x.astype(dt)), want)
    np.testing.assert_array_equal(g.log_prob(x.tolist()), want)
    np.testing.assert_array_equal(g.log_prob(np.asfortranarray(x)), want)
    assert g.log_prob(np.zeros((0, 8), np.uint8)).shape == (0,)


def test_unique_uniform_is_exact_without_replacement():
    g = RHM(3, 2, 2, 2, 2, seed=0)  # 16 strings
    everything = g.sample(16, seed=5, unique=True)
    assert sorted(g.rank(everything)) == list(range(16))
    with pytest.raises(ValueError, match="num"):
        g.sample(17, seed=0, unique=True)
    # Each string is equally likely to be in a unique sample of 4.
    counts = np.zeros(16)
    for seed in range(2000):
        counts[g.rank(g.sample(4, seed=seed, unique=True))] += 1
    assert chisquare(counts).pvalue > 1e-3


def test_unique_nonuniform_rejects_repeats():
    g = RHM(3, 2, 2, 2, 2, seed=0, rule_probs=zipf(2, 2.0), root_prior=[0.9, 0.1])
    x = g.sample(16, seed=1, unique=True)
    assert sorted(g.rank(x)) == list(range(16))
    y = g.sample(10, seed=2, unique=True, return_tree=True)
    assert len({r.tobytes() for r in y[0]}) == 10
    np.testing.assert_array_equal(g.parse(y[0]).rules[1], y[1].rules[1])
    np.testing.assert_array_equal(g.sample(10, seed=2, unique=True), y[0])
    zero = RHM(3, 2, 2, 2, 2, seed=0, rule_probs=[np.array([1.0, 0.0]), None])
    assert zero.sample(8, seed=0, unique=True).shape == (8, 4)
    with pytest.raises(ValueError, match="positive probability"):
        zero.sample(9, seed=0, unique=True)


def test_rule_and_root_frequencies_match_probabilities():
    probs = {
        0: zipf(4, 1.0),
        2: zipf(4, 0.5),
        3: np.random.default_rng(0).dirichlet(np.ones(4), size=6),
    }
    prior = np.array([0.3, 0.2, 0.2, 0.1, 0.1, 0.1])
    g = RHM(6, 6, 4, 2, 4, seed=0, rule_probs=probs, root_prior=prior)
    x, tree = g.sample(60000, seed=11, return_tree=True)
    roots = np.bincount(tree.symbols[0][:, 0], minlength=6)
    assert chisquare(roots, prior * roots.sum()).pvalue > 1e-3
    for level in range(g.L):
        syms = tree.symbols[level].ravel()
        js = tree.rules[level].ravel()
        table = g.rule_probs[level]
        for a in np.unique(syms)[:3]:
            counts = np.bincount(js[syms == a], minlength=4)
            assert chisquare(counts, table[a] * counts.sum()).pvalue > 1e-3


def test_same_seed_same_arrays_whatever_the_thread_count():
    code = (
        "import hashlib, rhmfast\n"
        "g = rhmfast.RHM(6, 6, 4, 2, 4, seed=0, rule_probs=rhmfast.zipf(4, 1.0))\n"
        "x = g.sample(20000, seed=3)\n"
        "u = g.sample(3000, seed=3, unique=True)\n"
        "print(hashlib.sha256(x.tobytes() + u.tobytes()).hexdigest())\n"
    )
    outs = set()
    for threads in ("1", "2", "3"):
        env = dict(os.environ, RAYON_NUM_THREADS=threads)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(out.stdout)
    assert len(outs) == 1


def test_rule_probs_forms():
    shared = zipf(4, 1.0)
    a = RHM(6, 6, 4, 2, 3, seed=0, rule_probs=[shared, shared, shared])
    b = RHM(6, 6, 4, 2, 3, seed=0, rule_probs={0: shared, 1: shared, 2: np.tile(shared, (6, 1))})
    c = RHM(6, 6, 4, 2, 3, seed=0, rule_probs=shared)
    assert a == b == c
    d = RHM(6, 6, 4, 2, 3, seed=0, rule_probs={1: shared})
    np.testing.assert_allclose(d.rule_probs[0], 0.25)
    np.testing.assert_allclose(d.rule_probs[1], np.tile(shared, (6, 1)))
    assert not d.is_uniform and RHM(6, 6, 4, 2, 3, seed=0).is_uniform
    np.testing.assert_allclose(zipf(3, 0.0), np.array([1, 1 / 2, 1 / 3]) / (11 / 6))


def test_from_rules_and_save_load_round_trip(tmp_path):
    g = RHM(5, 3, 3, 2, 3, seed=4, rule_probs={1: zipf(3, 1.0)}, root_prior=[0.5, 0.25, 0.25])
    h = RHM.from_rules(g.rules, rule_probs=g.rule_probs, root_prior=g.root_prior)
    assert h == g
    x = g.sample(100, seed=0)
    np.testing.assert_array_equal(h.log_prob(x), g.log_prob(x))
    for suffix in (".json", ".npz"):
        path = tmp_path / f"g{suffix}"
        g.save(path)
        k = RHM.load(path)
        assert k == g
        np.testing.assert_array_equal(k.sample(50, seed=1), g.sample(50, seed=1))
    # rules made elsewhere: plain nested lists, L = 1 with v inferred or given.
    one = RHM.from_rules([[[[0, 1], [1, 0]]]])
    assert (one.v, one.n, one.m, one.s, one.L) == (2, 1, 2, 2, 1)
    assert RHM.from_rules([[[[0, 1], [1, 0]]]], v=5).v == 5


def test_copy_and_pickle_rebuild_from_tables():
    import copy
    import pickle

    g = RHM(5, 3, 3, 2, 3, seed=2, rule_probs={2: zipf(3, 1.0)}, root_prior=[0.2, 0.3, 0.5])
    for h in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert h == g and h is not g
        np.testing.assert_array_equal(h.sample(30, seed=4), g.sample(30, seed=4))


def test_module_level_sample():
    x = rhmfast.sample(100, seed=0, unique=True, zipf_a=1.0)
    g = RHM(6, 6, 4, 2, 4, seed=0, rule_probs=zipf(4, 1.0))
    assert x.shape == (100, 16) and g.check(x).valid.all()
    np.testing.assert_array_equal(x, g.sample(100, seed=0, unique=True))


def test_large_grammar_d1024_v65536():
    g = RHM(65536, 16, 4, 2, 10, seed=0)
    x = g.sample(64, seed=0)
    assert x.shape == (64, 1024) and x.dtype == np.uint16
    c = g.check(x)
    assert c.valid.all()
    np.testing.assert_allclose(c.log_prob, np.log(1 / 16) + 1023 * np.log(1 / 4))
    y = x.copy()
    y[:, 0] = (y[:, 0].astype(np.int64) + 1) % 65536
    assert not g.check(y).valid.any()
    # The first pair is no longer a rule (at these fixed seeds), the other pairs are.
    assert not g.check(y).valid_levels[:, -1].any()
    assert (g.parse(y).symbols[-1][:, 1:] >= 0).all()
    np.testing.assert_array_equal(g.unrank(g.rank(x)), x)


@settings(deadline=None, max_examples=20)
@given(
    st.sampled_from(
        [(1500, 5, 3, 2, 2), (102, 4, 3, 3, 2), (2**17 + 1, 3, 2, 4, 1), (70000, 2, 4, 2, 1)]
    ),
    st.integers(0, 2**32),
    st.data(),
)
def test_large_alphabets_use_hashed_tables_and_match_reference(params, seed, data):
    # v**s > 2**20: parsing goes through the open-addressing tables (exact packed
    # keys, or hashed keys verified against the rules when s*bits(v) > 64).
    v, n, m, s, L = params
    g = RHM(v, n, m, s, L, seed=seed, rule_probs={L - 1: zipf(m, 1.0)})
    x = data.draw(corrupted_strings(g) if data.draw(st.booleans()) else valid_strings(g))
    assert_parse_matches_reference(g, x)
    sampled = g.sample(20, seed=seed)
    assert g.check(sampled).valid.all()
    np.testing.assert_array_equal(g.unrank(g.rank(sampled)), sampled)


@pytest.mark.parametrize(
    ("params", "probs", "prior"),
    [
        ((3, 2, 2, 2, 2), {0: [0.8, 0.2], 1: zipf(2, 1.0)}, [0.3, 0.7]),
        ((3, 2, 2, 2, 3), {1: zipf(2, 0.5), 2: zipf(2, 2.0)}, None),
        ((4, 3, 3, 2, 2), {1: zipf(3, 1.0)}, [0.5, 0.3, 0.2]),
        ((4, 2, 2, 3, 2), None, None),
        ((5, 3, 3, 2, 1), {0: zipf(3, 1.0)}, None),
    ],
)
def test_sampled_strings_follow_their_exact_probabilities(params, probs, prior):
    # Whole-string frequencies against exp(log_prob) over every string (chi-square),
    # covering the merged top/bottom sampling tables and the rule-by-rule path.
    g = RHM(*params, seed=1, rule_probs=probs, root_prior=prior)
    assert g.num_strings <= 2000
    num = 200_000
    counts = np.bincount(g.rank(g.sample(num, seed=9)), minlength=g.num_strings)
    expected = np.exp(g.log_prob(g.unrank(list(range(g.num_strings))))) * num
    assert abs(expected.sum() - num) < 1e-6 * num
    assert chisquare(counts, expected).pvalue > 1e-4
