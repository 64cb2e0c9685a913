"""Statistics whose null is centred, and tests that read them against null runs.

Every verdict of the experiments is one of these statistics, its two-stage bootstrap
interval (seeds, then strings within each seed) and the same statistic on null runs
fitted to the observed ones (:func:`rhmfast.analysis.null_runs`: the same copy and
validity curves, every string memorized at the same rate). :class:`NullTest` turns the
three into "yes", "no, the opposite" or "no effect detected" with a Monte Carlo p-value
whose false-positive rate is at most ``alpha`` when the null runs are exchangeable with
the observed ones.

>>> import numpy as np
>>> t = NullTest.of("D", 0.9, (0.5, 1.3), np.linspace(-0.3, 0.3, 19), alpha=0.05)
>>> t.decision, round(t.p, 3)
(1, 0.05)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from rhmfast.analysis.memorization import heldout_bins
from rhmfast.analysis.rundir import Run
from rhmfast.analysis.stats import quantile_bins, spearman

__all__ = [
    "NullTest",
    "copy_point",
    "matched_control",
    "excess_copies",
    "quintile_contrast",
    "equal_power_clock",
    "two_stage_bootstrap",
]


@dataclasses.dataclass(frozen=True)
class NullTest:
    """A statistic against its null runs.

    Attributes:
        name: what the statistic is.
        value: its value on the observed runs.
        interval: 95% two-stage bootstrap interval of ``value``.
        null: the statistic on each null run set.
        alpha: the test's level.
        p: two-sided Monte Carlo p-value, ``(1 + #{|null - c| >= |value - c|}) / (K + 1)``
            with ``c`` the median of the null values and the observed one.
    """

    name: str
    value: float
    interval: tuple[float, float]
    null: np.ndarray
    alpha: float
    p: float

    @classmethod
    def of(cls, name: str, value: float, interval: tuple[float, float], null: Sequence[float] | np.ndarray,
           *, alpha: float = 0.05) -> NullTest:
        arr = np.asarray(null, np.float64)
        arr = arr[np.isfinite(arr)]
        if not np.isfinite(value) or not len(arr):
            return cls(name, float(value), interval, arr, alpha, float("nan"))
        # centred on the median of all K + 1 values, the observed one included: the K + 1
        # distances are then exchangeable under the null, so P(p <= alpha) <= alpha exactly
        # (a centre from the null values alone rejects 6.8% at alpha = 0.05 with K = 19)
        c = float(np.median(np.append(arr, value)))
        beyond = int((np.abs(arr - c) >= abs(value - c) - 1e-12).sum())
        return cls(name, float(value), (float(interval[0]), float(interval[1])), arr, alpha,
                   (1 + beyond) / (len(arr) + 1))

    @property
    def centre(self) -> float:
        return float(np.median(self.null)) if len(self.null) else float("nan")

    @property
    def decision(self) -> int:
        """+1 (effect above the null), -1 (below) or 0 (no effect detected)."""
        if not np.isfinite(self.p) or self.p > self.alpha:
            return 0
        return 1 if self.value > float(np.median(np.append(self.null, self.value))) else -1

    @property
    def null_band(self) -> tuple[float, float]:
        """Central 95% of the statistic on null runs."""
        if not len(self.null):
            return (float("nan"), float("nan"))
        lo, hi = np.quantile(self.null, [0.025, 0.975])
        return float(lo), float(hi)

    @property
    def detectable(self) -> float:
        """About the smallest distance from the null median the test could have detected
        at ``alpha`` (inf when too few null runs allow a p-value that small)."""
        k = len(self.null)
        allowed = int(np.floor(self.alpha * (k + 1) + 1e-9)) - 1  # null values allowed at or beyond
        if allowed < 0 or not k:
            return float("inf")
        dev = np.sort(np.abs(self.null - self.centre))[::-1]
        return float(dev[allowed]) if allowed < k else 0.0

    @property
    def false_positive_rate(self) -> float:
        """Rate at which the test rejects on the null runs themselves, each against the
        others (leave one out): the measured false-positive rate of this verdict."""
        k = len(self.null)
        if k < 3:
            return float("nan")
        hits = 0
        for i in range(k):
            rest = np.delete(self.null, i)
            if NullTest.of(self.name, float(self.null[i]), (0.0, 0.0), rest, alpha=self.alpha).decision:
                hits += 1
        return hits / k

    def summary(self, digits: int = 2) -> str:
        """``value [low, high]; null c [lo, hi] (K runs), p = ...``."""
        f = f"{{:+.{digits}f}}"
        lo, hi = self.null_band
        return (f"{self.name} = {f.format(self.value)} [{f.format(self.interval[0])}, {f.format(self.interval[1])}]; "
                f"null {f.format(self.centre)} [{f.format(lo)}, {f.format(hi)}] over {len(self.null)} null run sets, "
                f"p = {self.p:.2g}")

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "interval": list(self.interval), "null": self.null.tolist(),
                "null_band": list(self.null_band), "p": self.p, "alpha": self.alpha, "decision": self.decision,
                "detectable": self.detectable, "false_positive_rate": self.false_positive_rate}


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


def two_stage_bootstrap(
    runs: Sequence[Run], stat: Callable[[Run, np.ndarray, np.ndarray], float], *, num_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% interval of ``mean over runs of stat(run, strings, heldout)`` by resampling
    runs (seeds), then training and held-out strings within each resampled run."""
    rng = np.random.default_rng(seed)
    out = np.empty(num_boot)
    n = len(runs)
    for b in range(num_boot):
        vals = []
        for i in rng.integers(n, size=n):
            r = runs[int(i)]
            tr = rng.integers(r.num_train, size=r.num_train)
            ho = rng.integers(r.num_heldout, size=r.num_heldout) if r.num_heldout else np.zeros(0, np.int64)
            vals.append(stat(r, tr, ho))
        out[b] = np.mean(vals)
    out = out[np.isfinite(out)]
    if not len(out):
        return (float("nan"), float("nan"))
    lo, hi = np.quantile(out, [0.025, 0.975])
    return float(lo), float(hi)
