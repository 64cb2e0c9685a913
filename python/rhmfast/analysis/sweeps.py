"""Sweeps: does the memorization time move with a swept parameter (numpy only)?

Each run's clock is the first step (interpolated in log step) at which its memorized
mass, its copies beyond the chance count of :mod:`rhmfast.stats.chance`, reaches a
threshold; the statistic is Spearman rho(parameter, clock) within each seed, read
against the parameter's permutations within seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from rhmfast.analysis.excess import clock_rho
from rhmfast.analysis.memorization import memorization_time
from rhmfast.analysis.rundir import Run
from rhmfast.stats.chance import memorized_fraction
from rhmfast.stats.nulltest import NullTest

__all__ = ["CopyCounts", "within_group_rho", "label_permutation_null", "SweepClocks", "UNMEASURABLE"]

# why a sweep's test has no value (for :func:`rhmfast.stats.answer`)
UNMEASURABLE = "in every seed fewer than two runs reached the memorized mass; raise [train] steps"


@dataclasses.dataclass(frozen=True)
class CopyCounts:
    """Per-checkpoint sample counts of one run: all a sweep's clock reads.

    Attributes:
        steps: ``(T,)`` checkpoint steps.
        samples: ``(T,)`` samples drawn at each checkpoint.
        copies: ``(T,)`` samples that copy a training string.
        valid_other: ``(T,)`` valid samples that copy none.
        chance_mass: probability that a valid sample of a model that memorized nothing
            is a training string (``sum p(x)`` over the training set, for the sampler used).

    >>> cc = CopyCounts(np.array([10.0, 20.0]), np.array([100.0, 100.0]), np.array([1.0, 50.0]),
    ...                 np.array([99.0, 50.0]), 0.01)
    >>> [round(float(x), 3) for x in cc.memorized_mass()], round(cc.clock(0.25), 1)
    ([0.0, 0.495], 14.2)
    """

    steps: np.ndarray
    samples: np.ndarray
    copies: np.ndarray
    valid_other: np.ndarray
    chance_mass: float

    @classmethod
    def of(cls, run: Run, p: np.ndarray | None = None) -> CopyCounts:
        """From a run and ``p``, each training string's probability under the run's
        sampler (default ``p(x)``; 0 without grammar probabilities), whose sum is
        ``chance_mass``."""
        if p is None:
            p = np.exp(run.train_logp) if np.isfinite(run.train_logp).all() else np.zeros(run.num_train)
        mass = float(np.sum(p))
        return cls(run.steps.astype(np.float64), run.num_samples.astype(np.float64),
                   run.copy_counts.sum(1).astype(np.float64), run.valid_other, mass)

    def memorized_mass(self) -> np.ndarray:
        """``(T,)`` estimate of the memorized mass ``lam(t)`` (the weight of the training
        set in the model's mixture): ``c - q``, ``c`` the copy fraction and ``q`` the
        chance copy fraction of a model that memorized nothing at the run's validity
        (valid non-copies times ``chance_mass / (1 - chance_mass)``)."""
        b = np.maximum(self.samples, 1)
        return memorized_fraction(self.copies / b, self.valid_other / b, self.chance_mass)

    def clock(self, threshold: float) -> float:
        """First step (interpolated in log step) at which the memorized mass reaches
        ``threshold``; inf: never."""
        return memorization_time(self.steps, self.memorized_mass(), threshold) if len(self.steps) else np.inf

    def resampled_clocks(self, threshold: float, num: int, rng: np.random.Generator) -> np.ndarray:
        """``(num,)`` clocks of bootstrap replicates: each checkpoint's samples redrawn
        (multinomial over copy / valid non-copy / invalid, at the observed fractions)."""
        masses = np.zeros((num, len(self.steps)))
        for t, b in enumerate(self.samples.astype(np.int64)):
            if b <= 0:
                continue
            p = np.array([self.copies[t], self.valid_other[t], max(b - self.copies[t] - self.valid_other[t], 0.0)])
            draws = rng.multinomial(b, p / p.sum(), size=num)
            masses[:, t] = memorized_fraction(draws[:, 0] / b, draws[:, 1] / b, self.chance_mass)
        return np.array([memorization_time(self.steps, m, threshold) if len(self.steps) else np.inf
                         for m in masses])


def within_group_rho(labels: np.ndarray, clocks: np.ndarray, groups: np.ndarray) -> float:
    """Mean over groups (seeds) of Spearman rho(label, clock) within the group
    (:func:`clock_rho`: never = last, tied); groups with fewer than two finite clocks
    are left out (NaN if all are).

    >>> within_group_rho(np.array([1, 2, 3, 1, 2, 3]), np.array([3.0, 2, 1, 5, 6, np.inf]),
    ...                  np.array([0, 0, 0, 1, 1, 1]))
    0.0
    """
    vals = [clock_rho(clocks[groups == g], labels[groups == g]) for g in np.unique(groups)]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def label_permutation_null(labels: np.ndarray, clocks: np.ndarray, groups: np.ndarray, *, num: int = 1999,
                           exact_limit: int = 5000, seed: int = 0) -> np.ndarray:
    """:func:`within_group_rho` under the labels permuted within each group: every
    permutation when there are at most ``exact_limit`` (all groups together), else
    ``num`` drawn with a fixed ``seed``. Under "the label does not move the clock" the
    runs of a group are exchangeable, so the observed value is one draw of this null."""
    ids = list(np.unique(groups))
    sizes = [int((groups == g).sum()) for g in ids]
    total = math.prod(math.factorial(k) for k in sizes)
    per_group: list[np.ndarray] = []
    if total <= exact_limit:
        for g in ids:
            lab, clk = labels[groups == g], clocks[groups == g]
            per_group.append(np.array([clock_rho(clk, lab[list(p)]) for p in itertools.permutations(range(len(lab)))]))
        grids = np.meshgrid(*per_group, indexing="ij")
        stacked = np.stack([x.ravel() for x in grids])  # (groups, permutations)
    else:
        rng = np.random.default_rng(seed)
        stacked = np.empty((len(ids), num))
        for j, g in enumerate(ids):
            lab, clk = labels[groups == g], clocks[groups == g]
            stacked[j] = [clock_rho(clk, lab[rng.permutation(len(lab))]) for _ in range(num)]
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(stacked)
        out = np.where(fin.any(0), np.nansum(np.where(fin, stacked, 0.0), 0) / np.maximum(fin.sum(0), 1), np.nan)
    return out


@dataclasses.dataclass(frozen=True)
class SweepClocks:
    """A sweep's memorization clocks and their bootstrap replicates.

    Attributes:
        labels: ``(R,)`` the swept parameter of each run.
        groups: ``(R,)`` the seed (group) of each run.
        clocks: ``(R,)`` step at which each run's memorized mass reaches the threshold.
        boot_runs: ``(B, R')`` runs of each replicate (seeds resampled, whole groups).
        boot_groups: ``(B, R')`` group of each of those runs (a group drawn twice counts twice).
        boot_clocks: ``(B, R)`` each run's clock with its checkpoints' samples redrawn.
    """

    labels: np.ndarray
    groups: np.ndarray
    clocks: np.ndarray
    boot_runs: list[np.ndarray]
    boot_groups: list[np.ndarray]
    boot_clocks: np.ndarray

    @classmethod
    def of(cls, counts: Sequence[CopyCounts], labels: Sequence[float], groups: Sequence[int], threshold: float, *,
           num_boot: int = 1000, seed: int = 0) -> SweepClocks:
        if not len(counts) or len(counts) != len(labels) or len(counts) != len(groups):
            raise ValueError(f"counts, labels and groups must be non-empty and of equal length, got "
                             f"{len(counts)}, {len(labels)}, {len(groups)}")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold = {threshold}: must lie in (0, 1]")
        rng = np.random.default_rng(seed)
        lab = np.asarray(labels, np.float64)
        grp = np.asarray(groups, np.int64)
        clocks = np.array([c.clock(threshold) for c in counts])
        boot = np.stack([c.resampled_clocks(threshold, num_boot, rng) for c in counts], axis=1)
        ids = np.unique(grp)
        runs, gids = [], []
        for _ in range(num_boot):
            drawn = ids[rng.integers(len(ids), size=len(ids))] if len(ids) > 1 else ids
            runs.append(np.concatenate([np.flatnonzero(grp == g) for g in drawn]))
            gids.append(np.concatenate([np.full(int((grp == g).sum()), k) for k, g in enumerate(drawn)]))
        return cls(lab, grp, clocks, runs, gids, boot)

    def interval(self, stat: Callable[[np.ndarray, np.ndarray, np.ndarray], float]) -> tuple[float, float]:
        """95% bootstrap interval of ``stat(labels, clocks, groups)``."""
        vals = np.array([stat(self.labels[r], self.boot_clocks[b, r], g)
                         for b, (r, g) in enumerate(zip(self.boot_runs, self.boot_groups, strict=True))])
        vals = vals[np.isfinite(vals)]
        if not len(vals):
            return (float("nan"), float("nan"))
        lo, hi = np.quantile(vals, [0.025, 0.975])
        return float(lo), float(hi)

    def test(self, name: str, *, alpha: float = 0.05, num_perm: int = 1999, seed: int = 0,
             swept: str = "labels") -> NullTest:
        """rho(label, clock) within seeds, its bootstrap interval, read against the
        label permutations within seeds (:func:`label_permutation_null`).

        >>> cc = [CopyCounts(np.array([10.0, 20, 40, 80]), np.full(4, 200.0),
        ...                  np.array([0.0, 10, 40, 100]) * (1 - k / 8), np.full(4, 100.0), 0.0)
        ...       for k in range(5)]
        >>> t = SweepClocks.of(cc, [1, 2, 3, 4, 5], [0] * 5, 0.1, num_boot=50).test("rho")
        >>> t.value, t.decision, round(t.p, 3)
        (1.0, 1, 0.025)
        """
        value = within_group_rho(self.labels, self.clocks, self.groups)
        null = label_permutation_null(self.labels, self.clocks, self.groups, num=num_perm, seed=seed)
        return NullTest.of(name, value, self.interval(within_group_rho), null, alpha=alpha,
                           null_name=f"permutations of the {swept} within seeds")
