"""Exact posteriors (grammar, training set, mixture) against brute-force enumeration of
every string of small grammars, for masked and for uniform noise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhmfast import RHM
from rhmfast.posterior import EmpiricalPrior, GrammarPrior, MixturePrior
from rhmfast.strategies import grammars


def _support(g: RHM) -> tuple[np.ndarray, np.ndarray]:
    x = g.unrank(list(range(g.num_strings))).astype(np.int64)
    return x, np.exp(g.log_prob(x))


def _brute(strings: np.ndarray, probs: np.ndarray, lik: np.ndarray, v: int):
    """Posterior of one noisy string: ``lik (d, v)`` per-position evidence likelihoods."""
    d = strings.shape[1]
    w = probs * lik[np.arange(d), strings].prod(axis=1)
    z = w.sum()
    marg = np.zeros((d, v))
    for i in range(d):
        np.add.at(marg[i], strings[:, i], w)
    if z > 0:
        marg /= marg.sum(1, keepdims=True)
    else:
        marg[:] = 1 / v
    return marg, np.log(z) if z > 0 else -np.inf


def _lik(noisy: np.ndarray, v: int, mask_id: int | None, alpha: float | None) -> np.ndarray:
    d = noisy.shape[0]
    if mask_id is not None:
        lik = np.ones((d, v))
        seen = noisy != mask_id
        lik[seen] = 0
        lik[np.nonzero(seen)[0], noisy[seen]] = 1
        return lik
    lik = np.full((d, v), (1 - alpha) / v)
    lik[np.arange(d), noisy] += alpha
    return lik


small = grammars(max_v=4, max_s=2, max_L=3, max_d=8, max_strings=600)


@settings(max_examples=40, deadline=None)
@given(g=small, data=st.data())
def test_posteriors_match_enumeration(g, data):
    strings, probs = _support(g)
    v, d = g.v, g.d
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    k = data.draw(st.integers(1, min(len(strings), 12)))
    pick = rng.choice(len(strings), size=k, replace=False)
    train = strings[pick]
    weights = data.draw(st.one_of(st.none(), st.lists(st.floats(0.0, 5.0), min_size=k, max_size=k)))
    if weights is not None and sum(weights) == 0:
        weights = None
    w = np.full(k, 1 / k) if weights is None else np.array(weights) / sum(weights)
    lam = data.draw(st.floats(0.0, 1.0))
    # noisy strings: a grammar string with random masks, and a random token string
    base = np.stack([strings[rng.integers(len(strings))], rng.integers(0, v, d)])
    masked = np.where(rng.random((2, d)) < data.draw(st.floats(0.0, 1.0)), v, base)
    alpha = data.draw(st.floats(0.0, 1.0))
    priors = {
        "grammar": (GrammarPrior(g), strings, probs),
        "train": (EmpiricalPrior(train, v, weights), train, w),
        "mixture": (
            MixturePrior(g, train, lam, weights),
            np.concatenate([strings, train]),
            np.concatenate([(1 - lam) * probs, lam * w]),
        ),
    }
    for name, (prior, sup, pr) in priors.items():
        for kw, noisy in (({"mask_id": v}, masked), ({"alpha_bar": alpha}, base)):
            post = prior.posterior(noisy, **kw)
            for r in range(2):
                lik = _lik(noisy[r], v, kw.get("mask_id"), kw.get("alpha_bar"))
                marg, lz = _brute(sup, pr, lik, v)
                np.testing.assert_allclose(post.marginals[r], marg, atol=1e-9, err_msg=name)
                if np.isfinite(lz):
                    assert post.log_evidence[r] == pytest.approx(lz, abs=1e-9), name
                else:
                    assert post.log_evidence[r] == -np.inf, name


def test_deep_trees_do_not_underflow():
    g = RHM(3, 2, 2, 2, 10, seed=0)  # d = 1024: probabilities far below float64's range
    x = g.sample(2, seed=0).astype(np.int64)
    post = GrammarPrior(g).posterior(x, mask_id=3)
    assert np.allclose(post.log_evidence, g.log_prob(x))
    assert np.isfinite(post.marginals).all()


G = RHM(4, 2, 2, 2, 3, seed=1)
T = G.sample(10, seed=0, unique=True)
X = G.sample(3, seed=1).astype(np.int64)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: GrammarPrior("g"), TypeError, "expected an rhmfast.RHM"),
        (lambda: GrammarPrior(G).posterior(X[:, :4], mask_id=4), ValueError, "length 4, the prior's d = 8"),
        (lambda: GrammarPrior(G).posterior(X), ValueError, "exactly one of mask_id"),
        (lambda: GrammarPrior(G).posterior(X, mask_id=4, alpha_bar=0.5), ValueError, "exactly one"),
        (lambda: GrammarPrior(G).posterior(X + 5, mask_id=4), ValueError, "neither in"),
        (lambda: GrammarPrior(G).posterior(X.astype(float), mask_id=4), TypeError, "integer tokens"),
        (lambda: GrammarPrior(G).posterior(X, alpha_bar=1.5), ValueError, "alpha_bar"),
        (lambda: GrammarPrior(G).posterior(X, alpha_bar=np.nan), ValueError, "alpha_bar"),
        (lambda: GrammarPrior(G).posterior(X, alpha_bar=[0.5, 0.5]), ValueError, "alpha_bar"),
        (lambda: GrammarPrior(G).posterior(X, mask_id=True), TypeError, "mask_id"),
        (lambda: EmpiricalPrior(T, 4, weights=-np.ones(10)), ValueError, "weights"),
        (lambda: EmpiricalPrior(T, 4, weights=np.zeros(10)), ValueError, "weights sum to 0"),
        (lambda: EmpiricalPrior(T, 4, weights=np.ones(9)), ValueError, "9 weights for 10"),
        (lambda: EmpiricalPrior(T, 4, weights=np.full(10, np.nan)), ValueError, "weights"),
        (lambda: EmpiricalPrior(T, 2), ValueError, r"not in \[0, v=2\)"),
        (lambda: MixturePrior(G, T, 1.5), ValueError, "lam = 1.5"),
        (lambda: MixturePrior(G, T, np.nan), ValueError, "lam = nan"),
        (lambda: MixturePrior(G, T, "0.5"), TypeError, "lam"),
        (lambda: MixturePrior(G, T[:, :4], 0.5), ValueError, "length 4, the grammar's d = 8"),
        (lambda: MixturePrior(RHM(3, 2, 2, 2, 3, seed=0), T, 0.5), ValueError, r"v=3"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_noise_free_uniform_evidence_is_exact_evidence():
    # alpha_bar = 1: every token seen as it is (a term 0 * log 0 must not become NaN)
    for prior in (GrammarPrior(G), EmpiricalPrior(T, 4), MixturePrior(G, T, 0.5)):
        post = prior.posterior(T[:2].astype(np.int64), alpha_bar=1.0)
        assert np.isfinite(post.log_evidence).all()
        np.testing.assert_allclose(post.marginals.max(-1), 1.0)
