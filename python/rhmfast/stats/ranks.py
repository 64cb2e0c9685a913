"""Ranks, Spearman correlation (with an exact permutation p for a few points) and
equal-count quantile bins (numpy only)."""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["rankdata", "spearman", "spearman_permutation_p", "quantile_bins"]

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
