"""Memorization over training time, per checkpoint, each measure beside its baseline.

The baseline is the chance count of :mod:`rhmfast.stats.chance`: a model that learned
the grammar and memorized nothing, whose grammar draws are the run's valid samples that
copy nothing divided by ``1 - S`` (``S = sum p(x)``, the grammar's mass on the training
set). A partly trained model generates valid strings only part of the time, so charging
chance with all ``B`` samples would make a model with 30% valid output look like it
copies less than chance; charging it with the copies too would credit memorization to
chance.
"""

from __future__ import annotations

import numpy as np

from rhmfast._args import integer
from rhmfast.analysis.rundir import Run
from rhmfast.grammar import RHM
from rhmfast.stats.chance import chance_copies, training_mass
from rhmfast.stats.chance import grammar_draws as _draws
from rhmfast.stats.sharpening import fit_sharpening, sharpened_grammar

__all__ = [
    "heldout_bins",
    "grammar_draws",
    "chance_counts",
    "fitted_sharpening",
    "sharpened_probability",
    "baseline_reproduced",
    "memorization_curves",
    "memorization_time",
]


def heldout_bins(score: np.ndarray, bins: np.ndarray, other: np.ndarray, num_bins: int) -> np.ndarray:
    """Bin of each ``other`` score (held-out strings) under the training strings' bins:
    bin ``q`` takes the scores above bin ``q-1``'s maximum and up to its own, the first
    bin everything below, the last everything above, so each string lands in exactly
    one bin (an empty bin gets none).

    >>> heldout_bins(np.array([1.0, 2, 3, 4]), np.array([0, 0, 1, 1]), np.array([0.0, 2, 2.5, 9]), 2)
    array([0, 0, 1, 1])
    """
    score = np.asarray(score, np.float64)
    bins = np.asarray(bins)
    num_bins = integer("num_bins", num_bins, lo=1)
    if score.ndim != 1 or bins.shape != score.shape:
        raise ValueError(f"score and bins must be 1-D of equal length, got {score.shape} and {bins.shape}")
    if np.isnan(score).any() or np.isnan(np.asarray(other, np.float64)).any():
        raise ValueError("score and other must not contain NaN")
    edges = np.full(num_bins - 1, -np.inf)
    for q in range(num_bins - 1):
        sel = bins <= q
        if sel.any():
            edges[q] = score[sel].max()
    return np.searchsorted(edges, np.asarray(other, np.float64), side="left")


def _train_mass(run: Run) -> float:
    return training_mass(run.train_logp) if not np.isnan(run.train_logp).any() else float("nan")


def grammar_draws(run: Run) -> np.ndarray:
    """``(T,)`` grammar draws of a model that memorized nothing at the run's validity
    (:func:`rhmfast.stats.chance.grammar_draws` of :attr:`Run.valid_other`, ``S`` the
    grammar's mass on the training set). NaN without grammar probabilities."""
    return _draws(run.valid_other, _train_mass(run))


def chance_counts(run: Run, p: np.ndarray | None = None) -> np.ndarray:
    """``(T, P)`` expected chance copies of each training string per checkpoint
    (:func:`rhmfast.stats.chance.chance_copies`): ``p`` is each string's probability
    under the run's sampler (default ``p(x)``, exact when one token is revealed per
    step), ``S = p.sum()``. Zeros without grammar probabilities."""
    if p is None:
        if np.isnan(run.train_logp).any():
            return np.zeros((len(run.steps), run.num_train))
        p = np.exp(run.train_logp)
    return chance_copies(run.valid_other, p)


def fitted_sharpening(run: Run) -> float:
    """The exponent of the sharpened grammar that best describes the run's valid samples
    that copy nothing (its grammar draws that missed the training set), over every checkpoint
    (:func:`rhmfast.stats.sharpening.fit_sharpening`): how much the model over-produces
    common rules (> 1) where it does not copy. One exponent per run: per checkpoint, its
    sampling noise moved the chance counts more than the drift it would follow (trained
    quick runs drift within 0.86-1.06). 1 where the run has no ``grammar.json`` or no such
    sample (nothing to fit)."""
    path = run.path / "grammar.json"
    if not path.exists():
        return 1.0
    kept = [rec.samples[rec.valid & (rec.copy_of < 0)] for rec in run.evals()]
    x = np.concatenate(kept) if kept else np.zeros((0, run.d), np.int64)
    return fit_sharpening(RHM.load(path), x, exclude=run.train) if len(x) else 1.0


def sharpened_probability(run: Run, beta: float) -> np.ndarray:
    """``(P,)`` each training string's probability under the grammar sharpened to
    ``beta`` (exact; one derivation per string), for the chance count of a model that
    over-produces as the run does (:func:`fitted_sharpening`) and memorized nothing.
    Zeros where the run has no ``grammar.json``."""
    path = run.path / "grammar.json"
    if not path.exists():
        return np.zeros(run.num_train)
    return np.exp(sharpened_grammar(RHM.load(path), beta).log_prob(run.train))


def baseline_reproduced(train_logp: np.ndarray, num_samples: np.ndarray) -> np.ndarray:
    """``(T, P)`` probability that a grammar model has reproduced each training string at
    least once by checkpoint ``t``, drawing ``num_samples[t]`` grammar samples at each
    (:func:`grammar_draws` for a partly trained model): ``1 - (1 - p)**(B_1 + ... + B_t)``.

    >>> baseline_reproduced(np.log([0.5]), np.array([1, 1]))[:, 0]
    array([0.5 , 0.75])
    """
    logp = np.asarray(train_logp, np.float64)
    total = np.cumsum(np.asarray(num_samples, np.float64))
    p = np.exp(logp)
    with np.errstate(divide="ignore"):
        log_miss = np.log1p(-np.minimum(p, 1.0))
    return -np.expm1(total[:, None] * log_miss[None, :])


def memorization_curves(run: Run) -> dict[str, np.ndarray]:
    """Per-checkpoint memorization measures, each beside its baseline.

    Keys (arrays of length T = number of checkpoints):
    ``step``; ``copy_fraction`` (generated samples that copy a training string) and
    ``chance_copy_fraction`` (the same for a model that memorized nothing and has the
    run's valid samples that copy nothing, :mod:`rhmfast.stats.chance` with
    ``S = sum p(x)``: exact for a sampler that reveals one token per step),
    ``excess_copy_fraction`` (their difference: the memorized mass);
    ``heldout_copy_fraction`` and ``heldout_chance_fraction`` (the same for held-out
    strings, the control); ``distinct_copies``;
    ``reproduced_fraction`` (training strings copied at least once so far) and
    ``baseline_reproduced_fraction``; ``nll_crossed_fraction`` (training strings the
    model currently finds likelier than the grammar) and ``heldout_crossed_fraction``
    (the same for held-out strings: the criterion's false-positive rate);
    ``valid_fraction``; ``train_nll_mean``, ``heldout_nll_mean``,
    ``train_true_nll_mean`` (mean ``-log p`` of the training strings).
    """
    steps = run.steps.astype(np.float64)
    counts = run.copy_counts
    b = run.num_samples.astype(np.float64)
    t = len(steps)
    have_logp = not np.isnan(run.train_logp).any()
    copy_fraction = counts.sum(axis=1) / np.maximum(b, 1)
    train_mass = _train_mass(run)
    other = run.valid_other / np.maximum(b, 1)  # valid samples that copy no training string
    draws = _draws(run.valid_other, train_mass) if have_logp else np.zeros(t)
    chance = chance_copies(other, train_mass, train_mass) if have_logp else np.full(t, np.nan)
    reproduced = np.logical_or.accumulate(counts > 0, axis=0) if t else counts > 0
    held_ok = run.num_heldout and not np.isnan(run.heldout_logp).any()
    out = {
        "step": steps,
        "copy_fraction": copy_fraction,
        "chance_copy_fraction": chance,
        "excess_copy_fraction": copy_fraction - chance,
        "heldout_copy_fraction": run.heldout_copy_counts.sum(axis=1) / np.maximum(b, 1),
        "heldout_chance_fraction": (
            chance_copies(other, training_mass(run.heldout_logp), train_mass) if held_ok and have_logp
            else np.full(t, np.nan)
        ),
        "distinct_copies": (counts > 0).sum(axis=1).astype(np.float64),
        "reproduced_fraction": reproduced.mean(axis=1) if t else np.zeros(0),
        "valid_fraction": run.valid_fraction,
        "train_nll_mean": run.train_nll.mean(axis=1) if t else np.zeros(0),
        "heldout_nll_mean": (
            run.heldout_nll.mean(axis=1) if t and run.num_heldout else np.full(t, np.nan)
        ),
    }
    if have_logp:
        out["baseline_reproduced_fraction"] = baseline_reproduced(run.train_logp, draws).mean(axis=1)
        out["nll_crossed_fraction"] = (run.train_nll < -run.train_logp[None, :]).mean(axis=1)
        out["train_true_nll_mean"] = np.full(t, -run.train_logp.mean())
    else:
        nan = np.full(t, np.nan)
        out["baseline_reproduced_fraction"] = nan
        out["nll_crossed_fraction"] = nan
        out["train_true_nll_mean"] = nan
    if run.num_heldout and not np.isnan(run.heldout_logp).any():
        out["heldout_crossed_fraction"] = (run.heldout_nll < -run.heldout_logp[None, :]).mean(axis=1)
    else:
        out["heldout_crossed_fraction"] = np.full(t, np.nan)
    return out


def memorization_time(steps: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """First step at which ``values`` reaches ``threshold``, interpolated linearly in
    log(step) between the two checkpoints around the crossing; ``+inf`` if never.

    >>> memorization_time(np.array([10, 100]), np.array([0.0, 1.0]), 0.5)
    31.6...
    """
    steps = np.asarray(steps, np.float64)
    values = np.asarray(values, np.float64)
    if steps.shape != values.shape or steps.ndim != 1:
        raise ValueError(f"steps and values must be 1-D of equal length, got {steps.shape}, {values.shape}")
    if np.any(steps <= 0):
        raise ValueError("steps must be positive (log-spaced checkpoints)")
    above = np.flatnonzero(values >= threshold)
    if not above.size:
        return float("inf")
    i = int(above[0])
    if i == 0:
        return float(steps[0])
    v0, v1 = values[i - 1], values[i]
    if not np.isfinite(v0) or v1 == v0:
        return float(steps[i])
    frac = (threshold - v0) / (v1 - v0)
    l0, l1 = np.log(steps[i - 1]), np.log(steps[i])
    return float(np.exp(l0 + frac * (l1 - l0)))


