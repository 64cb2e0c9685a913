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

from rhmfast.analysis.memorization import chance_among_valid, heldout_bins
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
    "CopyCounts",
    "SweepClocks",
    "within_group_rho",
    "label_permutation_null",
    "sweep_answer",
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
        """Rate at which this test, with its ``K`` null values, rejects on the null runs
        themselves: each null value in the observed one's place, its p-value
        ``(1 + #{others at or beyond}) / (K + 1)`` against the other ``K - 1`` (the
        verdict's denominator: a reference set one short of ``K`` would never reject at
        ``K = 19``). About ``alpha`` for distinct values (1/19 at ``K = 19``); lower where
        the statistic ties (a discrete clock), which this measures on the run's own nulls."""
        k = len(self.null)
        if k < 3:
            return float("nan")
        dev = np.abs(self.null - float(np.median(self.null)))
        # others at or beyond each value: all at or beyond it, less itself
        beyond = k - np.searchsorted(np.sort(dev), dev - 1e-12, side="left") - 1
        return float(((1 + beyond) / (k + 1) <= self.alpha).mean())

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



# ---- sweeps: does the memorization time move with a swept parameter?


def _memorized(copy_frac: np.ndarray, other_frac: np.ndarray, chance_mass: float) -> np.ndarray:
    # copies c = lam + (1 - lam) f S and valid non-copies o = (1 - lam) f (1 - S) for a
    # model that memorized lam and generalizes the rest with validity f (chance copies
    # among its valid samples); chance q = o S / (1 - S) = (1 - lam) f S, so c - q = lam
    # (dividing by 1 - q would bias lam up by a factor ~ 1 + S, which grows with S)
    return copy_frac - chance_among_valid(other_frac, chance_mass)


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
    def of(cls, run: Run, chance: np.ndarray) -> CopyCounts:
        """From a run and its ``(T, P)`` chance copies per string
        (:func:`rhmfast.experiments.common.sampler_chance`: valid non-copies times each
        string's probability under the run's sampler), whose ratio is ``chance_mass``."""
        b = run.num_samples.astype(np.float64)
        copies = run.copy_counts.sum(1).astype(np.float64)
        other = np.maximum(np.rint(run.valid_fraction * b) - copies, 0)
        chance = np.asarray(chance, np.float64)
        if other.sum() > 0 and chance.size:
            mass = float(chance.sum() / other.sum())
        else:
            mass = float(np.exp(run.train_logp).sum()) if np.isfinite(run.train_logp).all() else 0.0
        return cls(run.steps.astype(np.float64), b, copies, other, min(mass, 0.5))

    def memorized_mass(self) -> np.ndarray:
        """``(T,)`` estimate of the memorized mass ``lam(t)`` (the weight of the training
        set in the model's mixture): ``c - q``, ``c`` the copy fraction and ``q`` the
        chance copy fraction of a model that memorized nothing at the run's validity
        (valid non-copies times ``chance_mass / (1 - chance_mass)``)."""
        b = np.maximum(self.samples, 1)
        return _memorized(self.copies / b, self.valid_other / b, self.chance_mass)

    def clock(self, threshold: float) -> float:
        """First step (interpolated in log step) at which the memorized mass reaches
        ``threshold``; inf: never."""
        from rhmfast.analysis.memorization import memorization_time

        return memorization_time(self.steps, self.memorized_mass(), threshold) if len(self.steps) else np.inf

    def resampled_clocks(self, threshold: float, num: int, rng: np.random.Generator) -> np.ndarray:
        """``(num,)`` clocks of bootstrap replicates: each checkpoint's samples redrawn
        (multinomial over copy / valid non-copy / invalid, at the observed fractions)."""
        from rhmfast.analysis.memorization import memorization_time

        masses = np.zeros((num, len(self.steps)))
        for t, b in enumerate(self.samples.astype(np.int64)):
            if b <= 0:
                continue
            p = np.array([self.copies[t], self.valid_other[t], max(b - self.copies[t] - self.valid_other[t], 0.0)])
            draws = rng.multinomial(b, p / p.sum(), size=num)
            masses[:, t] = _memorized(draws[:, 0] / b, draws[:, 1] / b, self.chance_mass)
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
    import itertools
    import math

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

    def test(self, name: str, *, alpha: float = 0.05, num_perm: int = 1999, seed: int = 0) -> NullTest:
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
        return NullTest.of(name, value, self.interval(within_group_rho), null, alpha=alpha)


def sweep_answer(test: NullTest, *, below: str, above: str) -> str:
    """The answer a sweep's test gives: ``below`` (rho below its null), ``above``, "no
    effect detected" with the smallest detectable rho (or why none is), or "not
    measurable" when too few runs reached the clock.

    >>> sweep_answer(NullTest.of("rho", -1.0, (-1, -1), np.linspace(-0.5, 0.5, 99)), below="yes", above="no")
    'yes'
    """
    if not np.isfinite(test.value):
        return "not measurable (in every seed fewer than two runs reached the memorized mass; raise [train] steps)"
    if test.decision < 0:
        return below
    if test.decision > 0:
        return above
    if not np.isfinite(test.detectable):
        return f"no effect detected (too few permutations to reach p <= {test.alpha:g}: add seeds or values)"
    return f"no effect detected (detectable: |rho| {test.detectable:.2g} from the null median at p <= {test.alpha:g})"
