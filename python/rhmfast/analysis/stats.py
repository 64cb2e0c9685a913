"""Rank correlation with bootstrap confidence intervals, and quantile bins (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["rankdata", "spearman", "spearman_permutation_p", "SpearmanCI", "spearman_ci", "quantile_bins"]

PERMUTATION_MAX_N = 8  # 8! = 40,320 orderings, enumerated exactly


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (``+inf`` ranks last, tied).

    >>> rankdata(np.array([3.0, 1.0, 3.0, np.inf]))
    array([2.5, 1. , 2.5, 4. ])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    if np.isnan(x).any():
        raise ValueError("x must not contain NaN (use +inf for 'never')")
    n = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], n]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(n)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation (Pearson on average ranks); NaN when either is constant.

    >>> spearman(np.array([1, 2, 3, 4]), np.array([10, 9, 8, 1]))
    -1.0
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if x.size < 2:
        return float("nan")
    rx = rankdata(x) - (x.size + 1) / 2.0
    ry = rankdata(y) - (y.size + 1) / 2.0
    den = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if den == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / den, -1.0, 1.0))


def spearman_permutation_p(x: np.ndarray, y: np.ndarray) -> float:
    """Exact one-sided permutation p-value of Spearman's rho for a few points (a sweep
    of exponents or sizes): the fraction of the orderings of ``y`` whose rho is at
    least as extreme as the observed one in its direction. NaN when rho is undefined
    or there are more than ``PERMUTATION_MAX_N`` points.

    >>> round(spearman_permutation_p(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])), 4)
    0.1667
    """
    import itertools

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    rho = spearman(x, y)
    if np.isnan(rho) or x.size > PERMUTATION_MAX_N:
        return float("nan")
    rx = rankdata(x) - (x.size + 1) / 2.0
    ry = rankdata(y) - (y.size + 1) / 2.0
    perms = np.array(list(itertools.permutations(range(x.size))))
    rhos = (ry[perms] @ rx) / np.sqrt((rx * rx).sum() * (ry * ry).sum())
    eps = 1e-12  # the observed ordering itself counts, whatever the rounding
    hits = rhos <= rho + eps if rho < 0 else rhos >= rho - eps
    return float(hits.mean())


@dataclass(frozen=True)
class SpearmanCI:
    """A Spearman correlation (mean over groups) with its bootstrap interval."""

    rho: float
    low: float
    high: float
    per_group: tuple[float, ...]
    n: int
    level: float

    def __str__(self) -> str:
        return f"rho = {self.rho:+.2f} [{self.low:+.2f}, {self.high:+.2f}] (n = {self.n})"


def spearman_ci(
    xs: Sequence[np.ndarray],
    ys: Sequence[np.ndarray],
    *,
    num_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> SpearmanCI:
    """Mean over groups (seeds) of the within-group Spearman rho, with a two-stage
    percentile bootstrap interval: each replicate resamples the groups, then the items
    within each drawn group, so the interval holds the spread between seeds as well as
    the sampling noise within them.

    Groups are kept apart because memorization times of different seeds are not on
    the same clock; groups whose rho is undefined (a constant column) are left out.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=200)
    >>> r = spearman_ci([x], [-x + 0.1 * rng.normal(size=200)], seed=1)
    >>> r.rho < -0.9 and r.low <= r.rho <= r.high
    True
    """
    if len(xs) != len(ys) or not len(xs):
        raise ValueError("xs and ys must be non-empty sequences of equal length (one per group)")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if num_boot < 1:
        raise ValueError(f"num_boot must be >= 1, got {num_boot}")
    pairs = []
    for x, y in zip(xs, ys, strict=True):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"each group needs 1-D x, y of equal length, got {x.shape}, {y.shape}")
        if not np.isnan(spearman(x, y)):
            pairs.append((x, y))
    n = int(sum(x.size for x, _ in pairs))
    if not pairs:
        nan = float("nan")
        return SpearmanCI(nan, nan, nan, (), n, level)
    per_group = tuple(spearman(x, y) for x, y in pairs)
    rng = np.random.default_rng(seed)
    boot = np.empty(num_boot)
    for b in range(num_boot):
        vals = []
        for g in rng.integers(0, len(pairs), len(pairs)):
            x, y = pairs[g]
            idx = rng.integers(0, x.size, x.size)
            vals.append(spearman(x[idx], y[idx]))
        boot[b] = np.nanmean(vals) if not np.all(np.isnan(vals)) else np.nan
    boot = boot[~np.isnan(boot)]
    alpha = (1 - level) / 2
    low, high = (np.quantile(boot, [alpha, 1 - alpha]) if boot.size else (np.nan, np.nan))
    return SpearmanCI(float(np.mean(per_group)), float(low), float(high), per_group, n, level)


def quantile_bins(score: np.ndarray, num_bins: int = 5) -> np.ndarray:
    """Bin index ``0..num_bins-1`` of each item by rank of ``score`` (0 = lowest score).

    Equal-count bins by rank (ties broken by position), so every bin is populated even
    when the score has many ties.

    >>> quantile_bins(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), 5)
    array([4, 0, 2, 1, 3])
    """
    score = np.asarray(score, np.float64)
    if score.ndim != 1:
        raise ValueError(f"score must be 1-D, got shape {score.shape}")
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    n = score.size
    order = np.argsort(score, kind="stable")
    bins = np.empty(n, np.int64)
    bins[order] = (np.arange(n) * num_bins) // max(n, 1)
    return bins
