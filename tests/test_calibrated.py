"""The calibrated statistics against slow references, and the Monte Carlo test against
its promise: on exchangeable null values it rejects at most at its level."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rundirs import write_run

from rhmfast.analysis.excess import (
    clock_rho,
    copy_point,
    equal_power_clock,
    excess_copies,
    matched_control,
    quintile_contrast,
)
from rhmfast.analysis.rundir import load_run
from rhmfast.stats import NullTest

floats = st.floats(-100, 100, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(floats, min_size=3, max_size=40), floats)
def test_p_value_counts_null_values_at_least_as_extreme(null, value):
    t = NullTest.of("s", value, (value, value), null, alpha=0.05)
    c = float(np.median(null + [value]))
    beyond = sum(abs(x - c) >= abs(value - c) - 1e-12 for x in null)
    assert t.p == pytest.approx((1 + beyond) / (len(null) + 1))
    assert t.decision == (0 if t.p > 0.05 else (1 if value > c else -1))


def test_monte_carlo_test_rejects_at_its_level_on_exchangeable_values():
    rng = np.random.default_rng(0)
    rejected = 0
    trials = 2000
    for _ in range(trials):
        x = rng.normal(size=20)  # the observed value and 19 null values, exchangeable
        rejected += NullTest.of("s", float(x[0]), (0, 0), x[1:], alpha=0.05).decision != 0
    assert rejected / trials <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / trials)
    # p can fall to 1 / (K + 1): 99 null values resolve p = 0.01
    extreme = NullTest.of("s", 10.0, (0, 0), rng.normal(size=99), alpha=0.05)
    assert extreme.p == pytest.approx(0.01) and extreme.decision == 1
    assert "false_positive_rate" not in extreme.as_dict()  # 1/K by construction: never reported
    assert NullTest.of("s", 5.0, (0, 0), rng.normal(size=10), alpha=0.05).detectable == float("inf")


def _tiny_run(tmp_path, copies, held, train_logp, heldout_logp, steps=(10, 20, 30)):
    """A run whose copy counts per checkpoint are ``copies (T, P)`` (held-out: ``held``)."""
    P, H = copies.shape[1], held.shape[1]
    train = np.array([[i // 8, i % 8, 0] for i in range(P)], np.uint8)
    heldout = np.array([[i // 8, i % 8, 1] for i in range(H)], np.uint8)
    evals = []
    for t, step in enumerate(steps):
        rows = [train[i] for i in range(P) for _ in range(copies[t, i])]
        rows += [heldout[j] for j in range(H) for _ in range(held[t, j])]
        rows += [np.array([7, 7, 7], np.uint8)] * 4  # neither
        samples = np.array(rows, np.uint8)
        copy_of = np.array([i for i in range(P) for _ in range(copies[t, i])] + [-1] * (len(rows) - copies[t].sum()))
        evals.append(dict(step=step, copy_of=copy_of, samples=samples, valid=np.ones(len(rows), bool),
                          train_nll=np.zeros(P), heldout_nll=np.zeros(H)))
    write_run(tmp_path, train=train, heldout=heldout, train_logp=train_logp, heldout_logp=heldout_logp, evals=evals)
    return load_run(tmp_path)


def test_excess_copies_subtract_held_out_strings_of_the_same_log_p(tmp_path):
    rng = np.random.default_rng(1)
    P, H = 20, 30
    copies = rng.integers(0, 4, (3, P))
    held = rng.integers(0, 3, (3, H))
    lp = -rng.uniform(1, 10, P)
    hlp = -rng.uniform(1, 10, H)
    run = _tiny_run(tmp_path, copies, held, lp, hlp)
    assert np.array_equal(run.copy_counts, copies)
    assert np.array_equal(run.heldout_copy_counts, held)
    # slow reference: deciles of the training log p, held-out strings by the same edges
    order = np.argsort(lp, kind="stable")
    bins = np.empty(P, int)
    bins[order] = np.arange(P) * 10 // P
    edges = [lp[bins == b].max() for b in range(9)]
    hb = np.array([sum(h > e for e in edges) for h in hlp])
    tot = held[:2].sum(0)
    want = np.array([tot[hb == bins[i]].mean() if (hb == bins[i]).any() else tot.mean() for i in range(P)])
    np.testing.assert_allclose(matched_control(lp, hlp, tot), want)
    np.testing.assert_allclose(excess_copies(run, 1), copies[:2].sum(0) - want)
    # without log p: the overall held-out mean
    np.testing.assert_allclose(matched_control(np.full(P, np.nan), hlp, tot), tot.mean())


def test_contrast_clock_and_copy_point_against_loops(tmp_path):
    rng = np.random.default_rng(2)
    P = 25
    copies = rng.integers(0, 3, (3, P))
    run = _tiny_run(tmp_path, copies, np.zeros((3, 5), int), -rng.uniform(1, 5, P), -rng.uniform(1, 5, 5))
    score = rng.normal(size=P)
    e = rng.normal(size=P)
    q = np.argsort(np.argsort(score)) * 5 // P
    assert quintile_contrast(e, score) == pytest.approx(e[q == 4].mean() - e[q == 0].mean())
    chance = rng.uniform(0, 1, (3, P))
    clock = equal_power_clock(run, chance, margin=1.5)
    for i in range(P):
        want = np.inf
        for t in range(3):
            if copies[: t + 1, i].sum() - chance[: t + 1, i].sum() >= 1.5:
                want = float(run.steps[t])
                break
        assert clock[i] == want
    frac = copies.sum(1) / run.num_samples
    assert copy_point(run, float(frac[1])) == int(np.flatnonzero(frac >= frac[1])[0])
    assert copy_point(run, 2.0) == 2  # never reached: the last checkpoint
    assert np.isnan(clock_rho(np.full(P, np.inf), score))
