"""The chance count: how often a model that memorized nothing generates a training string.

A model that learned the grammar and memorized nothing still generates a training
string ``x`` now and then: each of its valid samples is a draw of its sampler, which
outputs ``x`` with probability ``p(x)`` (the grammar's probability when one token is
revealed per sampling step; the exact grammar denoiser pushed through the run's own
sampler otherwise). Its *grammar draws* are therefore its valid samples, and a share
``S`` of them (``S = sum p(x)`` over the training set, the sampler's mass on it) are
chance copies. An observed run's grammar draws are its valid samples that copy
nothing divided by ``1 - S``: a memorized copy is not a grammar draw, and counting all
valid samples would credit memorization to chance.

Every chance count in rhmfast (the experiments' clocks and excess copies, the
memorization curves, the audit's per-set and per-quintile chance, the
``memorization_report`` summary) is :func:`chance_copies` of :func:`grammar_draws`.

>>> # 100 samples, 60 valid, 10 of them copies; the sampler's mass on the training set 0.2
>>> float(grammar_draws(60 - 10, 0.2))
62.5
>>> chance_copies(50, np.array([0.15, 0.05])).tolist()   # S = 0.15 + 0.05
[9.375, 3.125]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["training_mass", "grammar_draws", "chance_copies", "memorized_fraction", "poisson_sf"]


def _mass(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (a probability mass in [0, 1]), not {type(value).__name__}")
    value = float(value)
    if not (np.isnan(value) or -1e-12 <= value <= 1.0 + 1e-9):
        raise ValueError(f"{name} = {value}: must be a probability mass in [0, 1] (or NaN: unknown)")
    return min(max(value, 0.0), 1.0)


def training_mass(logp: Any) -> float:
    """``S = sum exp(logp)``: the grammar's mass on a set of distinct strings (the share
    of a perfect generalizer's samples that copy one of them).

    >>> round(training_mass(np.log([0.1, 0.2])), 6)
    0.3
    """
    return float(np.exp(np.asarray(logp, np.float64)).sum())


def grammar_draws(valid_other: Any, train_mass: Any) -> np.ndarray:
    """Grammar draws of a model that memorized nothing and has the observed model's
    valid samples that copy nothing (``valid_other``, counts or fractions; any shape):
    ``valid_other / (1 - S)``. NaN where ``S`` is 1 (every grammar draw a copy) or NaN.

    >>> grammar_draws(np.array([45.0, 90.0]), 0.1).tolist()
    [50.0, 100.0]
    """
    s = _mass("train_mass", train_mass)
    other = np.asarray(valid_other, np.float64)
    if (other < 0).any():
        raise ValueError("valid_other: valid samples that copy nothing cannot be negative")
    if not s < 1.0:
        return np.full(other.shape, np.nan)
    return other / (1.0 - s)


def chance_copies(valid_other: Any, p: Any, train_mass: Any = None) -> np.ndarray:
    """Expected chance copies: ``grammar_draws(valid_other, S)[..., None] * p``, shape
    ``valid_other.shape + p.shape``. ``p``: each string's probability under the sampler
    (or a summed mass per group of strings); ``S`` (``train_mass``) defaults to
    ``p.sum()``, the sampler's mass on the training set when ``p`` covers it.

    >>> chance_copies(np.array([45.0]), np.array([0.1]), 0.1).tolist()
    [[5.0]]
    """
    prob = np.asarray(p, np.float64)
    if (prob < 0).any() or np.isnan(prob).any():
        raise ValueError("p: probabilities must be >= 0 and not NaN")
    s = float(prob.sum()) if train_mass is None else train_mass
    draws = grammar_draws(valid_other, s)
    return np.multiply.outer(draws, prob)


def memorized_fraction(copy_fraction: Any, other_fraction: Any, train_mass: Any) -> np.ndarray:
    """The memorized mass ``lam`` of a model whose samples are copies at ``copy_fraction``
    and valid non-copies at ``other_fraction``: copies beyond chance,
    ``c - o S / (1 - S)``. For a mixture that memorizes ``lam`` and generalizes the rest
    with validity ``f``, ``c = lam + (1 - lam) f S`` and ``o = (1 - lam) f (1 - S)``, so
    this is exactly ``lam``.

    >>> lam, f, S = 0.3, 0.8, 0.1
    >>> c, o = lam + (1 - lam) * f * S, (1 - lam) * f * (1 - S)
    >>> round(float(memorized_fraction(c, o, S)), 12)
    0.3
    """
    s = _mass("train_mass", train_mass)
    return np.asarray(copy_fraction, np.float64) - chance_copies(other_fraction, s, s)


def poisson_sf(count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``P(N >= count)`` for ``N ~ Poisson(mean)``, elementwise: how surprising ``count``
    copies are against a chance count ``mean`` (exact sum of the pmf;
    accurate to about 1e-12 absolute, enough to compare with a significance level).

    >>> poisson_sf(np.array([0, 1, 2]), np.array([1.0, 1.0, 0.0])).round(4).tolist()
    [1.0, 0.6321, 0.0]
    """
    count = np.asarray(count, np.int64)
    mean = np.asarray(mean, np.float64)
    count, mean = np.broadcast_arrays(count, mean)
    if (mean < 0).any() or np.isnan(mean).any():
        raise ValueError("mean must be >= 0 and not NaN")
    # beyond mean + 12 sd + 30 the tail is far below any significance level of interest
    cap = np.ceil(mean + 12 * np.sqrt(mean) + 30).astype(np.int64)
    c = np.minimum(np.maximum(count, 0), cap)
    kmax = int(c.max(initial=0))
    cdf = np.zeros(c.shape)
    with np.errstate(divide="ignore"):
        log_mean = np.log(mean)
    log_fact = 0.0
    for k in range(kmax):
        if k:
            log_fact += np.log(k)
        log_pmf = -mean + (k * log_mean if k else 0.0) - log_fact
        cdf += np.where(c > k, np.exp(log_pmf), 0.0)
    return np.clip(1.0 - cdf, 0.0, 1.0)
