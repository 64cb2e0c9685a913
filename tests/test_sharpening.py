"""The sharpened grammar's fit (rhmfast.stats.sharpening) against a brute-force
likelihood, and the over-producing null runs and chance count built on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rhmfast.grammar import RHM, zipf
from rhmfast.stats.sharpening import SHARPEN_RANGE, fit_sharpening, sharpened_grammar


def _loglik(g: RHM, x: np.ndarray, beta: float, exclude: np.ndarray | None = None) -> float:
    """The obviously correct log-likelihood: the sharpened grammar's own log-probabilities
    of the strings that parse, conditioned on missing ``exclude``."""
    h = sharpened_grammar(g, beta)
    logq = h.log_prob(x)
    out = float(logq[np.isfinite(logq)].sum())
    if exclude is not None:
        out -= np.isfinite(logq).sum() * np.log1p(-float(np.exp(h.log_prob(exclude)).sum()))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), a=st.floats(0.2, 2.0), true_beta=st.floats(0.3, 4.0), num=st.integers(5, 400),
       num_excluded=st.integers(0, 12))
def test_fit_is_the_maximum_of_the_brute_force_likelihood(seed, a, true_beta, num, num_excluded):
    g = RHM(4, 3, 3, 2, 2, seed=seed % 7, rule_probs=zipf(3, a))
    h = sharpened_grammar(g, true_beta)
    # a training set holding the likeliest strings (up to 12 of 81), up to half the mass
    # (1 - Q loses its digits as Q nears 1; training sets hold far less)
    every = np.asarray(g.unrank(np.arange(g.num_strings)))
    order = np.argsort(-h.log_prob(every))
    mass = np.cumsum(np.exp(h.log_prob(every[order])))
    num_excluded = min(num_excluded, int((mass <= 0.5).sum()))
    exclude = every[order[:num_excluded]] if num_excluded else None
    x = h.sample(num * 4, seed=seed)
    if exclude is not None:
        x = x[~(x[:, None, :] == exclude[None]).all(-1).any(1)]
    x = np.concatenate([x[:num], (x[:3] + 1) % g.v])  # and a few strings that may not parse
    beta = fit_sharpening(g, x, exclude=exclude)
    if not g.check(x).valid.any():
        assert np.isnan(beta)
        return
    assert SHARPEN_RANGE[0] <= beta <= SHARPEN_RANGE[1]
    best = _loglik(g, x, beta, exclude)
    # no exponent on a fine grid (nor next to the fit) is likelier
    grid = np.exp(np.linspace(np.log(SHARPEN_RANGE[0]), np.log(SHARPEN_RANGE[1]), 241))
    others = [_loglik(g, x, float(b), exclude) for b in grid] + [
        _loglik(g, x, min(beta * 1.01, 16.0), exclude), _loglik(g, x, max(beta / 1.01, 1 / 16), exclude)]
    assert best >= max(others) - 1e-7 * max(1.0, abs(best))


def test_fit_recovers_the_exponent_and_ignores_strings_that_do_not_parse():
    g = RHM(6, 6, 4, 2, 3, seed=1, rule_probs=zipf(4, 1.0))
    for beta in (0.5, 1.0, 1.5, 3.0):
        x = sharpened_grammar(g, beta).sample(20_000, seed=int(10 * beta))
        broken = x.copy()
        broken[:, 0] = (broken[:, 0] + 1) % g.v
        broken = broken[~g.check(broken).valid]  # those that no longer parse
        fit = fit_sharpening(g, x)
        assert abs(fit - beta) < 0.05 * beta, (beta, fit)
        assert len(broken) > 1000 and fit_sharpening(g, np.concatenate([x, broken])) == fit
    assert np.isnan(fit_sharpening(g, np.full((3, g.d), -1 % g.v)[:0]))


def test_fit_edge_cases_impossible_strings_duplicates_and_a_set_holding_nearly_all_mass():
    g = RHM(4, 3, 3, 2, 2, seed=0, rule_probs=zipf(3, 3.0))
    every = np.asarray(g.unrank(np.arange(g.num_strings)))
    likeliest = every[np.argsort(-g.log_prob(every))]
    x = g.sample(300, seed=1)
    x = x[~(x[:, None, :] == likeliest[None, :4]).all(-1).any(1)]
    # the 4 likeliest strings hold nearly all the mass at large beta: no crash, a finite fit
    beta = fit_sharpening(g, x, exclude=likeliest[:4])
    assert SHARPEN_RANGE[0] <= beta <= SHARPEN_RANGE[1]
    # a string's mass counts once however often the excluded set repeats it
    assert fit_sharpening(g, x, exclude=np.concatenate([likeliest[:4]] * 3)) == beta
    # a rule of probability 0: strings that use it are impossible under every exponent
    probs = [np.array(p, np.float64) for p in g.rule_probs]
    probs[1][:, -1] = 0.0
    probs[1] /= probs[1].sum(1, keepdims=True)
    h = RHM.from_rules(g.rules, v=g.v, rule_probs=probs, root_prior=g.root_prior)
    possible = np.isfinite(h.log_prob(every))
    assert (~possible).any()
    y = h.sample(500, seed=2)
    assert fit_sharpening(h, np.concatenate([y, every[~possible]])) == fit_sharpening(h, y)


def test_sharpened_grammar_refuses_exponents_outside_the_range():
    g = RHM(4, 2, 2, 2, 2, seed=0, rule_probs=zipf(2, 1.0))
    for bad in (0.0, -1.0, 100.0, float("nan")):
        with pytest.raises(ValueError, match="sharpen"):
            sharpened_grammar(g, bad)


torch = pytest.importorskip("torch")


def test_over_producing_null_runs_over_produce_as_the_observed_run_does(tmp_path):
    """A run whose grammar draws come from rules sharpened to 2: its fitted exponent is
    about 2, its over-producing null runs draw at that exponent (checked by refitting
    them), and its plain null runs at 1."""
    from rhmfast.analysis import load_run
    from rhmfast.analysis.memorization import fitted_sharpening
    from rhmfast.diffusion import TrainConfig
    from rhmfast.knownanswers.memorizer import Memorizer
    from rhmfast.knownanswers.nulls import null_runs
    from rhmfast.knownanswers.simulate import simulate_run

    cfg = TrainConfig(v=6, n=6, m=4, s=2, L=3, zipf_a=1.0, num_train=32, num_heldout=32, steps=64,
                      first_checkpoint=16, checkpoints_per_octave=1, eval_samples=1024, elbo_draws=0,
                      sampling_reveal="one", device="cpu", progress=False, run_dir=str(tmp_path / "observed"))
    obs = load_run(simulate_run(cfg, Memorizer(lam=[(0, 0.0), (64, 0.3)], sharpen=2.0)))
    beta = fitted_sharpening(obs)
    assert abs(beta - 2.0) < 0.1, beta
    over = load_run(null_runs(obs, tmp_path / "over", num=1, over_production=True)[0])
    plain = load_run(null_runs(obs, tmp_path / "plain", num=1)[0])
    assert abs(fitted_sharpening(over) - beta) < 0.1
    assert abs(fitted_sharpening(plain) - 1.0) < 0.05
    truth = json.loads((over.path / "simulation.json").read_text())
    np.testing.assert_allclose(truth["sharpen"], beta)
    # lam solved at the sharpened grammar's mass on the training set (larger than the
    # grammar's: more chance copies, less memorized mass for the same copies)
    from rhmfast.knownanswers.nulls import lam_for_copy_fraction
    from rhmfast.trainset import build_data

    data, copied = build_data(cfg), obs.copy_counts.sum(1) / obs.num_samples
    ones = np.ones(obs.num_train)
    sharp = lam_for_copy_fraction(cfg, data, ones, copied, obs.valid_fraction, sharpening=beta)
    plain = lam_for_copy_fraction(cfg, data, ones, copied, obs.valid_fraction)
    np.testing.assert_allclose(truth["lam"], sharp)
    assert (sharp <= plain + 1e-12).all() and (sharp < plain - 1e-3).any(), (sharp, plain)
    frac = [r.copy_counts.sum(1) / r.num_samples for r in (obs, over)]
    assert np.abs(frac[0] - frac[1]).max() < 0.06, frac
