"""Excess copies and equal-power clocks: statistics whose null is centred (numpy only).

Training strings are compared at equal copy fractions (not at equal steps: a faster
memorizer is not a different one), against the held-out strings of matched ``log p``
(generalization, chance and over-production of common strings reach them as much as
training strings of the same probability; only memorization does not) or against the
chance count of :mod:`rhmfast.stats.chance`. Each is read against null runs by
:class:`rhmfast.stats.NullTest`, with the interval of
:func:`rhmfast.stats.two_stage_interval` over :func:`string_sizes`.

>>> quintile_contrast(np.arange(10.0), score=np.arange(10.0))   # top fifth 8.5, bottom 0.5
8.0
"""

from __future__ import annotations

import numpy as np

from rhmfast.analysis.memorization import heldout_bins
from rhmfast.analysis.rundir import Run
from rhmfast.stats.ranks import quantile_bins, spearman

__all__ = [
    "string_sizes",
    "copy_point",
    "matched_control",
    "excess_copies",
    "quintile_contrast",
    "equal_power_clock",
    "clock_rho",
]


def string_sizes(run: Run) -> tuple[int, int]:
    """What the two-stage bootstrap resamples within a run: its training and held-out strings."""
    return (run.num_train, run.num_heldout)


def copy_point(run: Run, fraction: float) -> int:
    """Index of the first checkpoint at which a ``fraction`` of the samples are copies
    (the last checkpoint if none is). Runs are compared at equal copy fractions, not at
    equal steps: a faster memorizer is not a different one."""
    if not len(run.steps):
        raise ValueError(f"run {str(run.path)!r}: no evaluations")
    frac = run.copy_counts.sum(1) / np.maximum(run.num_samples, 1)
    hit = np.flatnonzero(frac >= fraction)
    return int(hit[0]) if len(hit) else len(run.steps) - 1


def matched_control(train_logp: np.ndarray, heldout_logp: np.ndarray, heldout_counts: np.ndarray,
                    num_bins: int = 10) -> np.ndarray:
    """``(P,)`` expected count of each training string had it not been trained on: the
    mean count of the held-out strings in its log p bin (bins: deciles of the training
    strings' log p). Generalization, chance and over-production of common strings
    reach held-out strings as much as training strings of the same probability; only
    memorization does not. Without log p (NaN) or held-out strings: the overall mean."""
    train_logp = np.asarray(train_logp, np.float64)
    counts = np.asarray(heldout_counts, np.float64)
    P = len(train_logp)
    if not len(counts):
        return np.zeros(P)
    overall = float(counts.mean())
    if np.isnan(train_logp).any() or np.isnan(heldout_logp).any() or np.ptp(train_logp) == 0:
        return np.full(P, overall)
    nb = min(num_bins, P)
    bins = quantile_bins(train_logp, nb)
    hbins = heldout_bins(train_logp, bins, heldout_logp, nb)
    out = np.full(P, overall)
    for b in range(nb):
        sel = hbins == b
        if sel.any():
            out[bins == b] = counts[sel].mean()
    return out


def excess_copies(run: Run, upto: int, *, strings: np.ndarray | None = None,
                  heldout: np.ndarray | None = None) -> np.ndarray:
    """``(P,)`` copies of each training string over checkpoints ``0..upto``, minus the
    matched held-out control (:func:`matched_control`). ``strings`` / ``heldout``
    (index arrays) select a resample of either set (the bootstrap's)."""
    tr = np.arange(run.num_train) if strings is None else strings
    ho = np.arange(run.num_heldout) if heldout is None else heldout
    copies = run.copy_counts[: upto + 1].sum(0)[tr].astype(np.float64)
    held = run.heldout_copy_counts[: upto + 1].sum(0)[ho].astype(np.float64)
    return copies - matched_control(run.train_logp[tr], run.heldout_logp[ho], held)


def quintile_contrast(excess: np.ndarray, score: np.ndarray) -> float:
    """Mean ``excess`` of the most prototypical fifth (by ``score``) minus the least's."""
    q = quantile_bins(np.asarray(score, np.float64), 5)
    top, bottom = excess[q == q.max()], excess[q == 0]
    if not len(top) or not len(bottom):
        return float("nan")
    return float(top.mean() - bottom.mean())


def equal_power_clock(run: Run, chance: np.ndarray, *, margin: float = 3.0) -> np.ndarray:
    """``(P,)`` step at which each training string's copies so far first reach its
    chance count so far plus ``margin`` (inf: never). ``chance (T, P)``: expected copies
    per checkpoint of a model that memorized nothing. The same margin for every string,
    unlike a significance test whose threshold grows with the chance count."""
    cum = np.cumsum(run.copy_counts, axis=0) - np.cumsum(chance, axis=0)
    hit = cum >= margin
    first = np.where(hit.any(0), hit.argmax(0), -1)
    return np.where(first >= 0, run.steps[np.maximum(first, 0)].astype(np.float64), np.inf)


def clock_rho(clock: np.ndarray, score: np.ndarray) -> float:
    """Spearman rho of prototypicality against a clock (never = last, tied)."""
    finite = np.isfinite(clock)
    if finite.sum() < 2:
        return float("nan")
    c = np.where(finite, clock, np.nanmax(np.where(finite, clock, np.nan)) * 2 + 1)
    return spearman(np.asarray(score, np.float64), c)
