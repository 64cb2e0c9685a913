"""The reference denoisers through the real sampler and ELBO code: the masked ELBO of
an exact posterior is tight, one-token-per-step sampling draws exactly from the prior,
and the sampler's chance probabilities match its output frequencies."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from rhmfast import RHM, zipf  # noqa: E402
from rhmfast.diffusion.elbo import elbo_nll  # noqa: E402
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess  # noqa: E402
from rhmfast.diffusion.reference import (  # noqa: E402
    EmpiricalDenoiser,
    GrammarDenoiser,
    MixtureDenoiser,
    sampling_probability,
)
from rhmfast.diffusion.sampling import sample_d3pm, sample_masked  # noqa: E402

G = RHM(4, 2, 2, 2, 3, seed=3, rule_probs=zipf(2, 1.0))  # 2 * 2**7 = 256 strings of 8
ALL = G.unrank(list(range(G.num_strings))).astype(np.int64)
P_ALL = np.exp(G.log_prob(ALL))
TRAIN = ALL[np.random.default_rng(0).choice(len(ALL), 20, replace=False)]


def test_masked_elbo_of_exact_posteriors_is_tight():
    x = ALL[:6]
    # the estimator's spread at 4096 draws is 0.01-0.07 nats per string (measured)
    nll = elbo_nll(GrammarDenoiser(G), MaskedProcess(4), x, draws=4096, seed=0)
    np.testing.assert_allclose(nll, -G.log_prob(x), atol=0.15)
    assert abs(np.mean(nll + G.log_prob(x))) < 0.05
    nll = elbo_nll(EmpiricalDenoiser(TRAIN, v=4), MaskedProcess(4), TRAIN[:6], draws=4096, seed=0)
    np.testing.assert_allclose(nll, np.log(20), atol=0.15)


def _counts(x: np.ndarray) -> np.ndarray:
    return np.array([(x == s).all(1).sum() for s in ALL])


def test_one_token_per_step_sampling_draws_from_the_prior():
    n = 6000
    x, _ = sample_masked(GrammarDenoiser(G), MaskedProcess(4), num=n, d=8, seed=1, reveal="one")
    obs = _counts(x)
    assert obs.sum() == n  # every sample is a grammar string
    exp = n * P_ALL
    big = exp >= 5  # chi-square over the cells with enough mass, the rest pooled
    f_obs = np.append(obs[big], obs[~big].sum())
    f_exp = np.append(exp[big], exp[~big].sum())
    assert scipy_stats.chisquare(f_obs, f_exp).pvalue > 1e-3
    # the memorizer: training strings only, in proportion to the weights
    w = np.arange(1, 21, dtype=float)
    x, _ = sample_masked(EmpiricalDenoiser(TRAIN, w, v=4), MaskedProcess(4), num=4000, d=8, seed=2, reveal="one")
    got = np.array([(x == s).all(1).sum() for s in TRAIN])
    assert got.sum() == 4000
    assert scipy_stats.chisquare(got, 4000 * w / w.sum()).pvalue > 1e-3


def test_mixture_samples_copies_at_rate_lam():
    lam = 0.3
    x, _ = sample_masked(MixtureDenoiser(G, TRAIN, lam), MaskedProcess(4), num=4000, d=8, seed=3, reveal="one")
    in_train = np.array([(TRAIN == s).all(1).any() for s in x])
    chance = P_ALL[[int(np.flatnonzero((ALL == t).all(1))[0]) for t in TRAIN]].sum()
    expected = lam + (1 - lam) * chance
    assert abs(in_train.mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / 4000)


def test_sampling_probability_matches_the_ancestral_samplers_frequencies():
    # two steps: the sampler reveals several tokens at once and is not exact
    n = 8000
    model = GrammarDenoiser(G)
    x, _ = sample_masked(model, MaskedProcess(4), num=n, d=8, seed=4, steps=2)
    obs = _counts(x)
    top = np.argsort(-P_ALL)[:8]
    p, se = sampling_probability(model, ALL[top], steps=2, draws=400, seed=0)
    freq = obs[top] / n
    tol = 4 * np.sqrt(p * (1 - p) / n + se**2)
    assert (np.abs(freq - p) < tol).all(), (freq, p, tol)
    assert not np.allclose(p, P_ALL[top], rtol=0.05)  # the sampler's chance is not p(x)
    # one token per step: exact, the standard error is rounding
    p1, se1 = sampling_probability(model, ALL[top], reveal="one", draws=8, seed=0)
    np.testing.assert_allclose(p1, P_ALL[top], rtol=1e-9)
    assert (se1 < 1e-12).all()


def test_d3pm_sampling_with_the_exact_uniform_posterior_is_mostly_valid():
    proc = D3PMProcess(4, steps=50)
    x, _ = sample_d3pm(GrammarDenoiser(G, proc), proc, num=200, d=8, seed=0)
    assert G.check(x).valid.mean() > 0.98
    # and its ELBO is close to tight (the gap is the 50-step discretization)
    nll = elbo_nll(GrammarDenoiser(G, proc), proc, ALL[:4], draws=512, seed=0)
    assert (nll >= -G.log_prob(ALL[:4]) - 0.3).all() and (nll <= -G.log_prob(ALL[:4]) + 1.0).all()


def test_bad_input():
    with pytest.raises(ValueError, match="pass process=D3PMProcess"):
        GrammarDenoiser(G)(torch.zeros((1, 8), dtype=torch.long), torch.ones(1))
    with pytest.raises(ValueError, match="process: v = 5"):
        GrammarDenoiser(G, MaskedProcess(5))
    with pytest.raises(TypeError, match="process"):
        GrammarDenoiser(G, "masked")
    with pytest.raises(ValueError, match="reveal"):
        sample_masked(GrammarDenoiser(G), MaskedProcess(4), num=1, d=8, seed=0, reveal="two")
    with pytest.raises(ValueError, match="reveal='one' takes d = 8"):
        sampling_probability(GrammarDenoiser(G), ALL[:1], steps=3, reveal="one")
    with pytest.raises(ValueError, match="x: tokens must be in"):
        sampling_probability(GrammarDenoiser(G), ALL[:1] + 9)
    with pytest.raises(TypeError, match="model"):
        sampling_probability(lambda x, t: x, ALL[:1])
