"""rhmfast.analysis on synthetic run directories with known answers, and against slow
pure-Python references (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rundirs import write_run

from rhmfast import analysis as an
from rhmfast import counting
from rhmfast import stats as rs
from rhmfast.analysis import blocks
from rhmfast.analysis import descriptive as desc
from rhmfast.analysis import memorization as mem
from rhmfast.stats import chance

# ---------------------------------------------------------------- a designed run


def _designed_run(tmp_path):
    """P=4 training strings of d=4 over v=2; 3 checkpoints (16, 64, 256) of B=4 draws.

    string 0 copied at 16, 64 (twice), 256; string 1 copied first at 64; string 2 at 256;
    string 3 never. NLL crosses -logp for string 0 at 64, string 2 at 256, never else.
    """
    train = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 1]], np.uint8)
    heldout = np.array([[1, 0, 0, 0], [1, 1, 0, 0]], np.uint8)
    logp = np.log(np.array([0.2, 0.1, 0.05, 0.01]))
    hlogp = np.log(np.array([0.1, 0.1]))
    true_nll = -logp
    evals = [
        dict(step=16, copy_of=[0, -1, -1, -1], train_nll=true_nll + 1, heldout_nll=-hlogp + 1),
        dict(step=64, copy_of=[0, 0, 1, -1], train_nll=true_nll + [-0.5, 0.5, 0.5, 0.5],
             heldout_nll=-hlogp + [-0.1, 0.3]),
        dict(step=256, copy_of=[0, 2, -1, -1], train_nll=true_nll + [-1, 0.1, -0.2, 2],
             heldout_nll=-hlogp + [0.2, 0.3]),
    ]
    write_run(tmp_path / "run", train=train, heldout=heldout, train_logp=logp,
              heldout_logp=hlogp, evals=evals, config_toml='run_dir = "x"\nsteps = 256\n', num_levels=2)
    return an.load_run(tmp_path / "run"), logp


def test_load_run_reads_contract(tmp_path):
    run, _ = _designed_run(tmp_path)
    assert run.steps.tolist() == [16, 64, 256]
    assert run.num_train == 4 and run.num_heldout == 2 and run.d == 4
    assert run.config == {"run_dir": "x", "steps": 256}
    assert [m["step"] for m in run.metrics] == [16, 64, 256]
    assert run.copy_counts.tolist() == [[1, 0, 0, 0], [2, 1, 0, 0], [1, 0, 1, 0]]
    assert run.num_samples.tolist() == [4, 4, 4]
    assert run.valid_levels_fraction.shape == (3, 2)
    rec = run.eval(64)
    assert rec.samples.tolist()[2] == [0, 0, 0, 1]


def test_first_steps_known(tmp_path):
    run, _ = _designed_run(tmp_path)
    assert desc.first_copy_step(run).tolist() == [16, 64, 256, math.inf]
    assert desc.first_nll_step(run).tolist() == [64, math.inf, 256, math.inf]
    assert desc.first_nll_step(run, margin=0.6).tolist() == [256, math.inf, math.inf, math.inf]


def test_first_excess_copy_step_known(tmp_path):
    run, logp = _designed_run(tmp_path)
    # every valid sample is a copy: no valid sample copies nothing, so a model that memorized
    # nothing gets no grammar draws (copies are not grammar draws) and any copy beats chance
    np.testing.assert_allclose(mem.grammar_draws(run), [0, 0, 0])
    for alpha in (0.5, 0.05, 1e-6):
        assert desc.first_excess_copy_step(run, alpha=alpha).tolist() == desc.first_copy_step(run).tolist()
    with pytest.raises(ValueError, match="alpha"):
        desc.first_excess_copy_step(run, alpha=0)


@settings(deadline=None, max_examples=80)
@given(st.integers(0, 60), st.floats(0, 40))
def test_poisson_sf_matches_scipy(count, mean):
    from scipy import stats

    got = float(chance.poisson_sf(np.array([count]), np.array([mean]))[0])
    expect = 1.0 if count == 0 else float(stats.poisson.sf(count - 1, mean))
    assert got == pytest.approx(expect, abs=1e-9)


def test_memorization_curves_known(tmp_path):
    run, logp = _designed_run(tmp_path)
    c = an.memorization_curves(run)
    np.testing.assert_allclose(c["copy_fraction"], [0.25, 0.75, 0.5])
    np.testing.assert_allclose(c["valid_fraction"], [0.25, 0.75, 0.5])
    # every valid sample is a copy: a model that memorized nothing with no valid
    # non-copies has no chance copies (copies are not grammar draws)
    np.testing.assert_allclose(c["chance_copy_fraction"], 0.0)
    np.testing.assert_allclose(c["excess_copy_fraction"], [0.25, 0.75, 0.5])
    np.testing.assert_allclose(c["heldout_copy_fraction"], 0)
    np.testing.assert_allclose(c["heldout_chance_fraction"], 0.0)
    np.testing.assert_allclose(c["distinct_copies"], [1, 2, 2])
    np.testing.assert_allclose(c["reproduced_fraction"], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(c["nll_crossed_fraction"], [0, 0.25, 0.5])
    np.testing.assert_allclose(c["heldout_crossed_fraction"], [0, 0.5, 0])
    np.testing.assert_allclose(c["baseline_reproduced_fraction"], 0.0)  # no grammar draws


def test_quintile_table_known(tmp_path):
    run, logp = _designed_run(tmp_path)
    # 4 bins of one string each, bin order = logp order (string 3 lowest)
    qt = desc.quintile_table(run, logp, heldout_score=run.heldout_logp, num_bins=4)
    assert qt.count.tolist() == [1, 1, 1, 1]
    assert qt.reproduced.tolist() == [0, 1, 1, 1]  # strings 3, 2, 1, 0
    assert qt.copies_per_sample.tolist() == [0, 1, 1, 4]
    # no valid sample copies nothing: no grammar draws, no chance copies (see the held-out test)
    np.testing.assert_allclose(qt.expected_copies_per_sample, 0.0)
    np.testing.assert_allclose(qt.excess_copies_per_sample, [0, 1, 1, 4])
    assert qt.nll_crossed.tolist() == [0, 1, 0, 1]
    assert qt.median_first_copy.tolist() == [math.inf, 256, 64, 16]
    assert qt.beyond_chance.tolist() == [0, 1, 1, 1]  # against no chance, every copied string
    np.testing.assert_allclose(qt.baseline_reproduced, 0.0)
    np.testing.assert_allclose(qt.baseline_reproduced_full, 1 - (1 - np.exp(logp[::-1])) ** 12)
    # held-out strings have logp log(0.1): they fall in the bin holding string 1 only
    assert np.isnan(qt.heldout_nll_crossed[[0, 1, 3]]).all()
    assert qt.heldout_nll_crossed[2] == 0.5
    assert qt.heldout_reproduced[2] == 0 and qt.heldout_beyond_chance[2] == 0


def test_heldout_control_known(tmp_path):
    """Generated held-out strings are counted and pass the same beyond-chance test."""
    train = np.array([[0, 0], [0, 1]], np.uint8)
    heldout = np.array([[1, 0], [1, 1], [1, 0]], np.uint8)  # a repeated row counts once, first index
    logp, hlogp = np.log([0.3, 0.01]), np.log([0.3, 0.01, 0.3])
    s1 = np.array([[1, 1], [1, 1], [0, 0], [1, 0]], np.uint8)
    s2 = np.array([[1, 1], [0, 1], [1, 0], [1, 0]], np.uint8)
    evals = [
        dict(step=10, copy_of=[-1, -1, 0, -1], samples=s1, valid=[True] * 4,
             train_nll=-logp, heldout_nll=-hlogp),
        dict(step=20, copy_of=[-1, 1, -1, -1], samples=s2, valid=[True, True, True, False],
             train_nll=-logp, heldout_nll=-hlogp),
    ]
    write_run(tmp_path / "h", train=train, heldout=heldout, train_logp=logp, heldout_logp=hlogp, evals=evals)
    run = an.load_run(tmp_path / "h")
    assert run.heldout_copy_counts.tolist() == [[1, 2, 0], [2, 1, 0]]
    # valid samples that copy nothing: 3, then 2; over 1 - S (S = 0.31) they are the grammar draws
    np.testing.assert_allclose(mem.grammar_draws(run), [3 / 0.69, 2 / 0.69])
    # held-out 1 (p = 0.01): 2 copies in 4.35 draws, P(Poisson(0.0435) >= 2) = 9e-4: beyond chance at 10;
    # held-out 0 (p = 0.3): 1 then 3 copies against 1.30 then 2.17: P = 0.73, 0.36: never
    assert desc.first_excess_copy_step(run, alpha=0.01, heldout=True).tolist() == [math.inf, 10, math.inf]
    c = an.memorization_curves(run)
    np.testing.assert_allclose(c["heldout_copy_fraction"], [0.75, 0.75])
    # valid samples that copy no training string: 3 of 4, then 2 of 4; S = 0.31, so the
    # valid grammar draws are those over 1 - S, each a held-out string with mass 0.61
    other = np.array([0.75, 0.5])
    np.testing.assert_allclose(c["heldout_chance_fraction"], other * 0.61 / 0.69)
    np.testing.assert_allclose(c["chance_copy_fraction"], other * 0.31 / 0.69)
    np.testing.assert_allclose(c["excess_copy_fraction"], 0.25 - other * 0.31 / 0.69)
    qt = desc.quintile_table(run, logp, heldout_score=hlogp, num_bins=2)
    # bin 0 = log(0.01): training string 1 (1 copy, never significant: P(Pois(0.07) >= 1) = 0.068),
    # held-out 1; bin 1 = log(0.3): training string 0, held-out 0 and 2
    assert qt.heldout_reproduced.tolist() == [1.0, 0.5]
    assert qt.heldout_beyond_chance.tolist() == [1.0, 0.0]
    assert qt.beyond_chance.tolist() == [0.0, 0.0]
    qc = desc.quintile_curves(run, logp, heldout_score=hlogp, num_bins=2)
    assert qc["heldout_beyond_chance"].tolist() == [[1, 1], [0, 0]]
    with pytest.raises(ValueError, match="heldout_score"):
        desc.quintile_curves(run, logp, heldout_score=hlogp[:2], num_bins=2)


def test_quintile_curves_known(tmp_path):
    run, logp = _designed_run(tmp_path)
    qc = desc.quintile_curves(run, logp, num_bins=4)
    assert qc["reproduced"].tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 1], [1, 1, 1]]
    assert qc["nll_crossed"].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 1]]
    assert qc["baseline"].shape == (4, 3)
    np.testing.assert_allclose(qc["baseline"], 0.0)  # every valid sample a copy: no grammar draws


# ---------------------------------------------------------------- random runs vs reference


@st.composite
def _random_run(draw):
    p = draw(st.integers(1, 6))
    t = draw(st.integers(1, 5))
    b = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    steps = sorted(rng.choice(np.arange(1, 10_000), size=t, replace=False).tolist())
    logp = np.log(rng.uniform(0.001, 1.0 / p, size=p))
    evals = []
    for s in steps:
        copy_of = rng.integers(-1, p, size=b)
        valid = (copy_of >= 0) | (rng.random(b) < 0.5)  # a copy is valid; other samples may be
        evals.append(dict(step=s, copy_of=copy_of, valid=valid,
                          train_nll=-logp + rng.normal(size=p), heldout_nll=rng.uniform(1, 3, size=2)))
    return p, steps, logp, evals


@settings(deadline=None, max_examples=40)
@given(spec=_random_run())
def test_first_steps_and_curves_match_reference(tmp_path_factory, spec):
    p, steps, logp, evals = spec
    train = np.arange(p * 2, dtype=np.uint16).reshape(p, 2)
    path = tmp_path_factory.mktemp("r")
    write_run(path, train=train, heldout=np.array([[100, 101], [102, 103]], np.uint16), train_logp=logp,
              heldout_logp=np.log([0.1, 0.2]), evals=evals)
    run = an.load_run(path)
    ref_copy, ref_nll = [], []
    for i in range(p):
        ref_copy.append(next((e["step"] for e in evals if i in set(e["copy_of"].tolist())), math.inf))
        ref_nll.append(next((e["step"] for e in evals if e["train_nll"][i] < -logp[i]), math.inf))
    assert desc.first_copy_step(run).tolist() == ref_copy
    assert desc.first_nll_step(run).tolist() == ref_nll
    c = an.memorization_curves(run)
    seen: set[int] = set()
    draws = 0.0
    mass = sum(math.exp(lp) for lp in logp)
    for t, e in enumerate(evals):
        hits = [int(j) for j in e["copy_of"] if j >= 0]
        seen |= set(hits)
        # the baseline's grammar draws: the valid samples that copy nothing, over 1 - S
        draws += (int(e["valid"].sum()) - len(hits)) / (1 - mass)
        assert c["copy_fraction"][t] == pytest.approx(len(hits) / len(e["copy_of"]))
        assert c["reproduced_fraction"][t] == pytest.approx(len(seen) / p)
        base = sum(1 - (1 - math.exp(lp)) ** draws for lp in logp) / p
        assert c["baseline_reproduced_fraction"][t] == pytest.approx(base)


# ---------------------------------------------------------------- stats


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=2, max_size=30))
def test_spearman_matches_scipy(pairs):
    from scipy import stats

    x = np.array([a for a, _ in pairs], float)
    y = np.array([b for _, b in pairs], float)
    np.testing.assert_allclose(rs.rankdata(x), rs.rankdata(x))
    ours = rs.spearman(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_rankdata_inf_ranks_last_and_nan_refused():
    assert rs.rankdata(np.array([np.inf, 1.0, np.inf])).tolist() == [2.5, 1.0, 2.5]
    with pytest.raises(ValueError, match="NaN"):
        rs.rankdata(np.array([1.0, np.nan]))


def test_spearman_ci_groups_and_determinism():
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=100) for _ in range(3)]
    ys = [-x + 0.5 * rng.normal(size=100) for x in xs]
    a = rs.spearman_ci(xs, ys, seed=7, num_boot=300)
    b = rs.spearman_ci(xs, ys, seed=7, num_boot=300)
    assert a == b
    assert a.rho == pytest.approx(np.mean([rs.spearman(x, y) for x, y in zip(xs, ys, strict=True)]))
    assert a.low < a.rho < a.high < 0
    assert a.n == 300 and len(a.per_group) == 3
    # independent noise: the interval covers 0
    z = rs.spearman_ci([rng.normal(size=200)], [rng.normal(size=200)], seed=1)
    assert z.low < 0 < z.high
    # a constant group is left out, not averaged in as NaN
    c = rs.spearman_ci([xs[0], np.ones(5)], [ys[0], np.arange(5.0)], seed=1, num_boot=50)
    assert c.per_group == (rs.spearman(xs[0], ys[0]),)
    with pytest.raises(ValueError, match="level"):
        rs.spearman_ci(xs, ys, level=1.5)


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=50), st.integers(1, 7))
def test_quantile_bins_equal_counts_and_monotone(values, q):
    x = np.array(values)
    bins = rs.quantile_bins(x, q)
    counts = np.bincount(bins, minlength=q)
    assert counts.max() - counts.min() <= 1 or x.size < q
    order = np.argsort(x, kind="stable")
    assert np.all(np.diff(bins[order]) >= 0)


def test_memorization_time_interpolates_in_log_steps():
    steps = np.array([10.0, 100.0, 1000.0])
    assert an.memorization_time(steps, np.array([0.0, 0.2, 0.6]), 0.4) == pytest.approx(10**2.5)
    assert an.memorization_time(steps, np.array([0.5, 0.6, 0.7]), 0.4) == 10.0
    assert an.memorization_time(steps, np.array([0.0, 0.1, 0.2]), 0.4) == math.inf
    with pytest.raises(ValueError, match="positive"):
        an.memorization_time(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 0.5)


# ---------------------------------------------------------------- blocks


def _ref_blocks(x, s, level):
    d = len(x)
    k = d // s**level
    return [tuple(x[j * k:(j + 1) * k]) for j in range(s**level)]


@st.composite
def _string_sets(draw):
    s = draw(st.integers(2, 3))
    L = draw(st.integers(1, 3 if s == 2 else 2))
    v = draw(st.integers(2, 3))
    n = draw(st.integers(1, 12))
    rows = draw(st.lists(st.lists(st.integers(0, v - 1), min_size=s**L, max_size=s**L),
                         min_size=n, max_size=n))
    return s, L, np.array(rows, np.int64)


@settings(deadline=None, max_examples=60)
@given(_string_sets())
def test_block_log_frequency_matches_counter(spec):
    from collections import Counter

    s, L, x = spec
    got = rs.block_log_frequency(x, s)
    for level in range(1, L + 1):
        per_pos = [Counter(_ref_blocks(r.tolist(), s, level)[j] for r in x) for j in range(s**level)]
        for i, r in enumerate(x):
            blocks = _ref_blocks(r.tolist(), s, level)
            expect = np.mean([math.log(per_pos[j][b] / len(x)) for j, b in enumerate(blocks)])
            assert got[i, level - 1] == pytest.approx(expect)
    # a held-out string is scored as if added to the reference set
    ref = rs.block_log_frequency(x[:1], s, reference=x[1:])
    np.testing.assert_allclose(ref, got[:1])
    # the prototypicality score averages the levels
    np.testing.assert_allclose(rs.prototypicality_score(x, s), got.mean(axis=1))


@settings(deadline=None, max_examples=60)
@given(_string_sets(), _string_sets(), st.floats(0.05, 1.0))
def test_overproduction_matches_counter(spec_t, spec_g, frac):
    from collections import Counter

    s, L, train = spec_t
    gen = np.resize(spec_g[2], (spec_g[2].shape[0], train.shape[1]))
    gen = gen % (train.max() + 1)
    for level in range(0, L + 1):
        tab = an.overproduction(gen, train, s, level, common_fraction=frac)
        cg = Counter(b for r in gen.tolist() for b in _ref_blocks(r, s, level))
        ct = Counter(b for r in train.tolist() for b in _ref_blocks(r, s, level))
        ng, nt = sum(cg.values()), sum(ct.values())
        assert len(tab.blocks) == len(set(cg) | set(ct))
        for b, g, t in zip(tab.blocks.tolist(), tab.generated, tab.train, strict=True):
            assert g == pytest.approx(cg[tuple(b)] / ng)
            assert t == pytest.approx(ct[tuple(b)] / nt)
        assert np.all(np.diff(tab.generated) <= 0)
        assert tab.novel_fraction == pytest.approx(sum(c for b, c in cg.items() if b not in ct) / ng)
        tv = sum(max(0.0, cg[b] / ng - ct[b] / nt) for b in set(cg) | set(ct))
        assert tab.excess_mass == pytest.approx(tv)
        # common blocks: top fraction of distinct training blocks by training frequency
        ranked = sorted(ct, key=lambda b: -ct[b])
        n_common = max(1, round(frac * len(ranked)))
        # ties at the cut make the set ambiguous; check the ratio only without ties there
        if n_common == len(ranked) or ct[ranked[n_common - 1]] != ct[ranked[n_common]]:
            common = ranked[:n_common]
            expect = sum(cg[b] for b in common) / ng / (sum(ct[b] for b in common) / nt)
            assert tab.common_ratio == pytest.approx(expect)
            # among generated blocks seen in training (the reference's support)
            known = sum(c for b, c in cg.items() if b in ct)
            if known:
                expect_known = sum(cg[b] for b in common) / known / (sum(ct[b] for b in common) / nt)
                assert tab.common_ratio_known == pytest.approx(expect_known)
            else:
                assert math.isnan(tab.common_ratio_known)


def test_overproduction_against_grammar_probs():
    train = np.array([[0, 1], [1, 0]])
    gen = np.array([[0, 1], [0, 1], [0, 1], [1, 1]])
    probs = {(0, 1): 0.5, (1, 0): 0.25, (1, 1): 0.25}

    def grammar(blocks, level):
        assert level == 0
        return np.array([probs[tuple(b)] for b in blocks.tolist()])

    tab = an.overproduction(gen, train, 2, 0, grammar_probs=grammar, common_fraction=0.5)
    assert tab.blocks.tolist()[0] == [0, 1]
    assert tab.ratio[0] == pytest.approx(0.75 / 0.5)
    assert tab.common_ratio == pytest.approx(1.5)
    # every generated block is grammatical here: no dilution
    assert tab.common_ratio_known == pytest.approx(1.5)
    assert tab.novel_fraction == pytest.approx(0.25)
    # an ungrammatical generated block dilutes the raw ratio, not the renormalized one
    probs[(0, 0)] = 0.0
    diluted = an.overproduction(np.array([[0, 1], [0, 0]]), train, 2, 0, grammar_probs=grammar, common_fraction=0.5)
    assert diluted.common_ratio == pytest.approx(0.5 / 0.5)
    assert diluted.common_ratio_known == pytest.approx(1.0 / 0.5)
    assert tab.top(1)[0] == {"block": [0, 1], "generated": 0.75, "train": 0.5, "grammar": 0.5, "ratio": 1.5}
    with pytest.raises(ValueError, match="grammar_probs returned shape"):
        an.overproduction(gen, train, 2, 0, grammar_probs=lambda b, lv: np.ones(1))


def test_partial_memorization_window_checks_shapes():
    steps, ratio, excess = np.array([1, 2, 4, 8]), np.array([1.0, 1.5, 1.4, 1.6]), np.array([0.0, 0.0, 0.01, 0.5])
    assert blocks.partial_memorization_window(steps, ratio, excess) == (2.0, 4.0)
    with pytest.raises(ValueError, match="excess_copy_fraction must have the shape"):
        blocks.partial_memorization_window(steps, ratio, excess[:3])


def test_partial_memorization_window_longest_run():
    steps = np.array([1, 2, 4, 8, 16, 32])
    ratio = np.array([1.2, 0.9, 1.3, 1.4, 1.5, 2.0])
    copies = np.array([0.0, 0.0, 0.0, 0.01, 0.02, 0.5])
    assert blocks.partial_memorization_window(steps, ratio, copies) == (4.0, 16.0)
    assert blocks.partial_memorization_window(steps, ratio * 0, copies) is None


def test_block_errors_name_parameters():
    with pytest.raises(ValueError, match="not a power of s=2"):
        counting.blocks_at(np.zeros((2, 6), int), 2, 1)
    with pytest.raises(ValueError, match="level must lie in"):
        counting.blocks_at(np.zeros((2, 4), int), 2, 3)
    with pytest.raises(ValueError, match="common_fraction"):
        an.overproduction(np.zeros((1, 2)), np.zeros((1, 2)), 2, 0, common_fraction=0)


# ---------------------------------------------------------------- bad run directories


def test_bad_run_directories(tmp_path):
    with pytest.raises(ValueError, match="not a run directory"):
        an.load_run(tmp_path / "missing")
    with pytest.raises(ValueError, match="no data.npz"):
        an.load_run(tmp_path)
    (tmp_path / "data.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable .npz"):
        an.load_run(tmp_path)
    np.savez(tmp_path / "data.npz", train=np.array([[object()]], dtype=object))
    with pytest.raises(ValueError, match="not a readable .npz"):
        an.load_run(tmp_path)
    np.savez(tmp_path / "data.npz", train=np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match=r"'train': expected a 2-D array, got shape \(4,\)"):
        an.load_run(tmp_path)
    np.savez(tmp_path / "data.npz", train=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'train': expected integer tokens, got dtype float64"):
        an.load_run(tmp_path)
    np.savez(tmp_path / "data.npz", train=np.zeros((2, 2), np.uint8), train_logp=np.zeros(3))
    with pytest.raises(ValueError, match=r"'train_logp' must have shape \(2,\)"):
        an.load_run(tmp_path)


def test_bad_eval_files(tmp_path):
    run, _ = _designed_run(tmp_path)
    path = run.path / "eval" / "step_00000064.npz"
    z = dict(np.load(path))
    z["copy_of"] = np.array([0, 9, -1, -1])
    np.savez(path, **z)
    with pytest.raises(ValueError, match=r"'copy_of' values must lie in \[-1, 4\)"):
        _ = an.load_run(run.path).copy_counts
    z["copy_of"] = np.array([0, 0, -1, -1])
    z["train_nll"] = np.zeros(3)
    np.savez(path, **z)
    with pytest.raises(ValueError, match=r"'train_nll' must have shape \(4,\)"):
        an.load_run(run.path).eval(64)
    with pytest.raises(ValueError, match="no evaluation"):
        an.load_run(run.path).eval(65)


def test_torn_metrics_line_skipped(tmp_path):
    run, _ = _designed_run(tmp_path)
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "tra')
    assert len(an.load_run(run.path).metrics) == 3
    (run.path / "metrics.jsonl").write_text('{"kind": "tra\n{"kind": "eval"}\n')
    with pytest.raises(ValueError, match="line 1: is not JSON"):
        _ = an.load_run(run.path).metrics


def test_find_runs(tmp_path):
    _designed_run(tmp_path)
    assert an.find_runs(tmp_path) == [tmp_path / "run"]


# ---------------------------------------------------------------- docs and plots


def test_plots_have_log_step_axis(tmp_path):
    from rhmfast.analysis import plots

    fig = plots.figure_quintile_curves(np.array([16.0, 32.0]), np.zeros((5, 2)), np.ones((5, 2)),
                                       ylabel="fraction", title="t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == plots.STEP_LABEL
    png, svg = plots.save_figure(fig, tmp_path / "q")
    assert png.read_bytes()[:4] == b"\x89PNG" and "<svg" in svg.read_text()


@pytest.mark.parametrize("lo, hi", [(250, 1600), (120, 2600), (16, 20000), (1000, 1300)])
def test_step_axis_labels_are_compact_and_never_overlap(lo, hi):
    from rhmfast.analysis import plots

    steps = np.unique(np.geomspace(lo, hi, 12).round())
    fig = plots.figure_lines(steps, {"copies": np.linspace(0, 1, len(steps))},
                             ylabel="fraction", title="t")
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    x0, x1 = ax.get_xlim()
    labels = [t for t in ax.xaxis.get_ticklabels(minor=False) + ax.xaxis.get_ticklabels(minor=True)
              if t.get_text() and x0 <= t.get_position()[0] <= x1]
    assert len(labels) >= 2, [t.get_text() for t in labels]
    for t in labels:
        assert t.get_text() == plots.step_tick_label(t.get_position()[0])
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))
    plots.pyplot().close(fig)


def test_block_frequencies_agree_with_the_native_block_counts():
    import rhmfast

    g = rhmfast.RHM(4, 2, 2, 2, 3, seed=1, rule_probs={1: rhmfast.zipf(2, 1.0)})
    train = g.sample(40, seed=2)
    gen = g.sample(30, seed=3)
    for level in range(0, 4):
        tab = an.overproduction(gen, train, 2, level, grammar_probs=lambda b, lv: g.block_probs(b, lv))
        blocks, counts = rhmfast.block_counts(train, 2, level, positional=False)
        native = {tuple(b): c / counts.sum() for b, c in zip(blocks.tolist(), counts.tolist(), strict=True)}
        ours = {tuple(b): t for b, t in zip(tab.blocks.tolist(), tab.train.tolist(), strict=True) if t > 0}
        assert ours.keys() == native.keys()
        for b, f in native.items():
            assert ours[b] == pytest.approx(f)
        # exact grammar probabilities of the generated blocks sum to at most 1 per level
        assert 0 < tab.grammar.sum() <= 1 + 1e-9
    # positional counts: the mean log count of a string's blocks, level by level
    positions, blocks, counts = rhmfast.block_counts(train, 2, 2, positional=True)
    lookup = {(int(p), tuple(b)): int(c) for p, b, c in zip(positions, blocks.tolist(), counts, strict=True)}
    k = 2  # level-2 blocks of d = 8 tokens have 2 tokens
    expect = [np.mean([math.log(lookup[(j, tuple(r[j * k:(j + 1) * k]))] / len(train)) for j in range(4)])
              for r in train.tolist()]
    np.testing.assert_allclose(rs.block_log_frequency(train, 2)[:, 1], expect)


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=40), st.lists(st.floats(-6, 6), max_size=40),
       st.integers(1, 6))
def test_heldout_bins_put_each_string_in_exactly_one_bin(train, held, q):
    score, other = np.array(train), np.array(held)
    bins = rs.quantile_bins(score, q)
    hb = mem.heldout_bins(score, bins, other, q)
    assert hb.shape == other.shape and ((0 <= hb) & (hb < q)).all()
    assert np.all(np.diff(hb[np.argsort(other, kind="stable")]) >= 0)  # monotone in the score
    # a held-out string strictly inside one bin's training range lands in that bin
    for b in range(q):
        sel = score[bins == b]
        if sel.size:
            inside = (other > sel.min()) & (other < sel.max())
            assert (hb[inside] == b).all()
    # the training strings themselves land in their own bins when no tie straddles two bins
    if len(np.unique(score)) == score.size:
        assert (mem.heldout_bins(score, bins, score, q) == bins).all()


def test_spearman_ci_interval_holds_the_spread_between_seeds():
    rng = np.random.default_rng(5)
    xs = [rng.normal(size=200) for _ in range(3)]
    # two seeds strongly negative, one strongly positive: the mean is about -0.3, and
    # resampling the seeds (not only the strings within them) spreads the interval
    ys = [-xs[0], -xs[1], xs[2]]
    ys = [y + 0.2 * rng.normal(size=200) for y in ys]
    r = rs.spearman_ci(xs, ys, seed=0, num_boot=400)
    assert r.rho == pytest.approx(np.mean(r.per_group)) and -0.4 < r.rho < -0.2
    assert r.low < -0.8 and r.high > 0.2
    # one seed: the within-seed bootstrap alone, a tight interval
    one = rs.spearman_ci(xs[:1], ys[:1], seed=0, num_boot=400)
    assert one.high - one.low < 0.1


def test_per_sample_table_known(tmp_path):
    run, logp = _designed_run(tmp_path)
    t = desc.per_sample_table(run)
    assert t["index"].tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(t["copies"], run.copy_counts.sum(axis=0))
    np.testing.assert_array_equal(t["first_copy_step"], desc.first_copy_step(run))
    np.testing.assert_array_equal(t["first_nll_step"], desc.first_nll_step(run))
    np.testing.assert_allclose(t["expected_copies"], mem.grammar_draws(run).sum() * np.exp(logp))
    np.testing.assert_allclose(t["expected_copies_full"], run.num_samples.sum() * np.exp(logp))
    assert (t["expected_copies"] <= t["expected_copies_full"]).all()


def test_clocks_of_a_run_without_checkpoints_say_never(tmp_path):
    train = np.array([[0, 1], [1, 0]], np.uint8)
    np.savez(tmp_path / "data.npz", train=train, heldout=train[:1],
             train_logp=np.log([0.25, 0.25]), heldout_logp=np.log([0.25]))
    run = an.load_run(tmp_path)
    assert desc.first_step(run.steps, np.zeros((0, 2), bool)).tolist() == [math.inf, math.inf]
    t = desc.per_sample_table(run)
    for key in ("first_copy_step", "first_excess_copy_step", "first_nll_step"):
        assert t[key].tolist() == [math.inf, math.inf], key
    assert t["copies"].tolist() == [0, 0] and t["expected_copies"].tolist() == [0.0, 0.0]


def test_block_frequency_figure_is_log_log_with_labels(tmp_path):
    from rhmfast.analysis import plots

    train = np.array([[0, 1, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])
    gen = np.array([[0, 1, 0, 1]] * 3 + [[1, 1, 1, 1]])
    probs = {1: lambda b, lv: np.full(len(b), 0.25), 2: lambda b, lv: np.full(len(b), 0.5)}
    tabs = [an.overproduction(gen, train, 2, lv, grammar_probs=probs[lv]) for lv in (1, 2)]
    fig = plots.figure_block_frequencies(tabs, title="t")
    assert len(fig.axes) == 2
    for ax, lv in zip(fig.axes, (1, 2), strict=True):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert ax.get_xlabel() == "grammar probability (log scale)" and ax.get_title() == f"level {lv}"
    assert fig.axes[0].get_ylabel()
    png, svg = plots.save_figure(fig, tmp_path / "b")
    assert png.read_bytes()[:4] == b"\x89PNG" and "<svg" in svg.read_text()


@settings(deadline=None, max_examples=30)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=6))
def test_spearman_permutation_p_matches_enumeration(pairs):
    import itertools

    x = np.array([float(a) for a, _ in pairs])
    y = np.array([float(b) for _, b in pairs])
    rho = rs.spearman(x, y)
    p = rs.spearman_permutation_p(x, y)
    if np.isnan(rho):
        assert np.isnan(p)
        return
    # reference: every ordering of y through the plain spearman function
    rhos = [rs.spearman(x, y[list(perm)]) for perm in itertools.permutations(range(len(y)))]
    expect = np.mean([r <= rho + 1e-12 if rho < 0 else r >= rho - 1e-12 for r in rhos])
    assert p == pytest.approx(expect)
    assert 0 < p <= 1


def test_spearman_permutation_p_known_and_limits():
    assert rs.spearman_permutation_p(np.arange(4.0), -np.arange(4.0)) == pytest.approx(1 / 24)
    assert rs.spearman_permutation_p(np.arange(4.0), np.arange(4.0)) == pytest.approx(1 / 24)
    assert np.isnan(rs.spearman_permutation_p(np.arange(9.0), np.arange(9.0)))  # too many to enumerate


def test_overproduction_figure_has_log_step_axes_and_the_window(tmp_path):
    from rhmfast.analysis import plots

    steps = np.array([100.0, 200.0, 400.0, 800.0])
    fig = plots.figure_overproduction(steps, {"level 1": np.array([1.0, 1.3, 1.2, 1.0])},
                                      np.array([0.0, 0.01, 0.2, 0.5]), np.full(4, 0.01),
                                      ratio_min=1.1, reference="exact grammar probability", window=(200.0, 400.0))
    top, bottom = fig.axes
    assert top.get_xscale() == bottom.get_xscale() == "log"
    assert bottom.get_xlabel() == plots.STEP_LABEL
    assert top.get_ylabel() == "common-block ratio" and bottom.get_ylabel() == "fraction of generated samples"
    # the window is shaded on both panels, the threshold and no-over-production lines drawn
    assert all(len(ax.patches) == 1 for ax in (top, bottom))
    assert {round(float(line.get_ydata()[0]), 3) for line in top.lines[1:]} == {1.0, 1.1}
    png, svg = plots.save_figure(fig, tmp_path / "o")
    assert png.read_bytes()[:4] == b"\x89PNG" and "<svg" in svg.read_text()


def test_new_helpers_reject_bad_input(tmp_path):
    run, _ = _designed_run(tmp_path)
    with pytest.raises(ValueError, match="alpha must lie in"):
        desc.per_sample_table(run, alpha=1.5)
    with pytest.raises(ValueError, match=r"num_bins = 0 must be in \[1, "):
        mem.heldout_bins(np.zeros(3), np.zeros(3, int), np.zeros(2), 0)
    with pytest.raises(ValueError, match="equal length"):
        mem.heldout_bins(np.zeros(3), np.zeros(2, int), np.zeros(2), 2)
    with pytest.raises(ValueError, match="NaN"):
        mem.heldout_bins(np.zeros(3), np.zeros(3, int), np.array([np.nan]), 2)
    with pytest.raises(ValueError, match="equal length"):
        rs.spearman_permutation_p(np.arange(3.0), np.arange(4.0))


def test_chance_count():
    # 0.45 valid non-copies with S = 0.1: 0.5 valid grammar draws, 0.05 chance copies
    np.testing.assert_allclose(chance.chance_copies(np.array([0.45]), 0.1, 0.1), [0.05])
    # held-out mass 0.2 beside a training mass 0.1: 0.5 * 0.2
    np.testing.assert_allclose(chance.chance_copies(np.array([0.45]), 0.2, 0.1), [0.1])
    assert np.isnan(chance.grammar_draws(np.array([0.0, 0.3]), 1.0)).all()  # S = 1: undefined
    # a mixture that memorizes lam at validity f: its copies beyond chance are lam
    lam, f, S = 0.2, 0.6, 0.3
    c, o = lam + (f - lam) * S, (f - lam) * (1 - S)
    assert float(chance.memorized_fraction(c, o, S)) == pytest.approx(lam)


def test_chance_count_names_bad_masses():
    with pytest.raises(ValueError, match="mass = 1.5"):
        chance.grammar_draws(np.array([0.1]), 1.5)
    with pytest.raises(TypeError, match="train_mass must be a number"):
        chance.chance_copies(np.array([0.1]), 0.1, "0.2")
    with pytest.raises(ValueError, match="cannot be negative"):
        chance.grammar_draws(np.array([-1.0]), 0.1)
    with pytest.raises(ValueError, match="p: probabilities"):
        chance.chance_copies(np.array([1.0]), np.array([-0.1]))
