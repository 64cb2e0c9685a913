"""The two-stage bootstrap: groups (seeds) resampled, then the items within each drawn
group, so an interval holds the spread between seeds as well as the noise within them.
Every interval over seeds and strings (or samples) comes from :func:`two_stage_interval`;
the sweeps' clocks, one number per run, are bootstrapped by redrawing each checkpoint's
sample counts instead (:class:`rhmfast.analysis.sweeps.SweepClocks`).

>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=200)
>>> r = spearman_ci([x], [-x + 0.1 * rng.normal(size=200)], seed=1)
>>> r.rho < -0.9 and r.low <= r.rho <= r.high
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rhmfast._args import integer
from rhmfast.stats.ranks import spearman

__all__ = ["two_stage_interval", "SpearmanCI", "spearman_ci"]

G = TypeVar("G")


def two_stage_interval(
    groups: Sequence[G],
    sizes: Callable[[G], Sequence[int]],
    stat: Callable[..., float],
    *,
    num_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of ``mean over groups of stat(group, *indices)``: each replicate
    draws ``len(groups)`` groups with replacement, then for each drawn group one index
    array per entry of ``sizes(group)`` (items drawn with replacement, in that order).
    Replicates whose groups all give NaN are dropped; NaN groups are left out of a
    replicate's mean. ``(nan, nan)`` when no replicate is finite.

    >>> xs = [np.arange(10.0), np.arange(10.0) + 5]
    >>> lo, hi = two_stage_interval(xs, lambda x: (len(x),), lambda x, i: float(x[i].mean()), num_boot=200)
    >>> bool(2 < lo < 7 < hi < 12)
    True
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    num_boot = integer("num_boot", num_boot, lo=1)
    n = len(groups)
    if not n:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    out = np.empty(num_boot)
    for b in range(num_boot):
        vals = []
        for i in rng.integers(n, size=n):
            g = groups[int(i)]
            vals.append(stat(g, *(rng.integers(k, size=k) if k else np.zeros(0, np.int64) for k in sizes(g))))
        arr = np.asarray(vals, np.float64)
        out[b] = arr[np.isfinite(arr)].mean() if np.isfinite(arr).any() else np.nan
    out = out[np.isfinite(out)]
    if not len(out):
        return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(out, [alpha, 1 - alpha])
    return float(lo), float(hi)


@dataclass(frozen=True)
class SpearmanCI:
    """A Spearman correlation (mean over groups) with its two-stage bootstrap interval."""

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
    """Mean over groups (seeds) of the within-group Spearman rho, with the
    :func:`two_stage_interval` of it. Groups are kept apart because memorization times of
    different seeds are not on the same clock; groups whose rho is undefined (a constant
    column) are left out."""
    if len(xs) != len(ys) or not len(xs):
        raise ValueError("xs and ys must be non-empty sequences of equal length (one per group)")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
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

    def rho(pair: Any, idx: np.ndarray) -> float:
        return spearman(pair[0][idx], pair[1][idx])

    low, high = two_stage_interval(pairs, lambda p: (p[0].size,), rho, num_boot=num_boot, level=level, seed=seed)
    return SpearmanCI(float(np.mean(per_group)), low, high, per_group, n, level)
