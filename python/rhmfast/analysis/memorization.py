"""Memorization over training time, per checkpoint and per training sample.

Two per-sample clocks, both read from the run directory:

* **first copy step**: the first checkpoint at which some generated sample equals the
  training string;
* **first likelihood step**: the first checkpoint at which the model's NLL bound on the
  string falls below the string's true ``-log p(x)`` (the model finds it likelier than
  the grammar does). A model that learned the grammar exactly never crosses (its bound
  is at least the true NLL), so crossing is memorization, not generalization; the
  held-out strings give the false-positive rate of this criterion.

And the generalization baseline of docs/SCIENCE.md: a model that learned the grammar and
memorized nothing reproduces training string ``x`` with probability ``p(x)`` per draw,
``B * p(x)`` times per checkpoint of ``B`` draws on average. A partly trained model
generates valid strings only a fraction ``f`` of the time, so the baseline grants it
``f * B`` grammar draws (:func:`chance_draws`): charging the full ``B`` would make a model
with 30% valid output look like it copies less than chance. Every raw rate here has its
baseline beside it.

The held-out strings are the control group: drawn from the same distribution, never
trained on. Whatever the clocks find for them (a model over-producing common strings
generates prototypical held-out strings "beyond chance" too) is generalization or slop,
not memorization; only the excess of training over held-out strings is memorization.

Samples never memorized get step ``+inf`` (censored; they rank last, tied).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rhmfast.analysis.rundir import Run
from rhmfast.analysis.stats import quantile_bins

__all__ = [
    "first_step",
    "heldout_bins",
    "first_copy_step",
    "first_excess_copy_step",
    "first_nll_step",
    "poisson_sf",
    "chance_draws",
    "chance_copy_fraction",
    "chance_among_valid",
    "baseline_reproduced",
    "memorization_curves",
    "memorization_time",
    "per_sample_table",
    "QuintileTable",
    "quintile_table",
    "quintile_curves",
]


def first_step(steps: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """For each column of ``hits`` (``(T, N)`` bools, one row per checkpoint), the step of
    its first True row, ``+inf`` when none.

    >>> first_step(np.array([10, 20, 40]), np.array([[0, 0], [1, 0], [1, 0]], bool))
    array([20., inf])
    """
    steps = np.asarray(steps)
    hits = np.asarray(hits, bool)
    if hits.ndim != 2 or hits.shape[0] != steps.shape[0]:
        raise ValueError(f"hits must have shape (len(steps)={steps.shape[0]}, N), got {hits.shape}")
    out = np.full(hits.shape[1], np.inf)
    if not steps.shape[0]:  # no checkpoint yet: never
        return out
    any_hit = hits.any(axis=0)
    first = hits.argmax(axis=0)
    out[any_hit] = steps[first[any_hit]]
    return out


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
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}")
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


def _require_logp(logp: np.ndarray, what: str) -> np.ndarray:
    if np.isnan(logp).any():
        raise ValueError(f"{what}: exact grammar log-probabilities are NaN (data not from a grammar)")
    return logp


def first_copy_step(run: Run) -> np.ndarray:
    """``(P,)`` first checkpoint step at which each training string was generated verbatim."""
    return first_step(run.steps, run.copy_counts > 0)


def poisson_sf(count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``P(N >= count)`` for ``N ~ Poisson(mean)``, elementwise (exact sum of the pmf;
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


def chance_draws(run: Run) -> np.ndarray:
    """``(T,)`` grammar draws the no-memorization baseline is granted per checkpoint:
    ``B_t * f_t``, the model's valid samples (``f_t`` its valid fraction). The baseline
    model generates invalid strings as often as the model does and, when valid, follows
    the grammar and memorized nothing. Copies count as valid draws here, which grants
    chance more than its share once the model copies: the descriptive clocks and tables
    that read it are conservative; the calibrated statistics and
    :func:`memorization_curves` use :func:`chance_among_valid` instead."""
    f = np.nan_to_num(run.valid_fraction.astype(np.float64), nan=0.0)
    return run.num_samples.astype(np.float64) * f


def first_excess_copy_step(run: Run, *, alpha: float = 0.01, heldout: bool = False) -> np.ndarray:
    """``(P,)`` first checkpoint at which a training string has been generated more often
    than a model that memorized nothing plausibly would: its cumulative copies ``C``
    satisfy ``P(Poisson(p(x) * grammar draws so far) >= C) < alpha``, the draws from
    :func:`chance_draws`.

    A string of tiny ``p(x)`` is memorized at its first copy; a prototypical one needs
    more copies than chance gives it, so this clock is conservative for prototypes.
    ``heldout=True`` runs the same test on the held-out strings (``(H,)``): the rate at
    which strings never trained on pass it is the clock's false-positive rate, which
    over-production of common strings raises.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if heldout:
        logp = _require_logp(run.heldout_logp, "first_excess_copy_step(heldout=True)")
        counts = run.heldout_copy_counts
    else:
        logp = _require_logp(run.train_logp, "first_excess_copy_step")
        counts = run.copy_counts
    cum = np.cumsum(counts, axis=0)
    lam = np.cumsum(chance_draws(run))[:, None] * np.exp(logp)[None, :]
    hits = (cum > 0) & (poisson_sf(cum, lam) < alpha)
    return first_step(run.steps, hits)


def first_nll_step(run: Run, *, margin: float = 0.0) -> np.ndarray:
    """``(P,)`` first checkpoint step at which ``train_nll < -train_logp - margin``."""
    logp = _require_logp(run.train_logp, "first_nll_step")
    return first_step(run.steps, run.train_nll < (-logp - margin)[None, :])


def chance_copy_fraction(train_logp: np.ndarray) -> float:
    """Probability that one sample of the true grammar equals some training string:
    ``sum_x p(x)`` over the (distinct) training strings.

    >>> round(chance_copy_fraction(np.log([0.1, 0.2])), 6)
    0.3
    """
    return float(np.exp(np.asarray(train_logp, np.float64)).sum())


def chance_among_valid(other: np.ndarray, mass: float, train_mass: float | None = None) -> np.ndarray:
    """Chance copies (as a fraction of the samples) of a model whose valid samples that
    copy no training string are a fraction ``other``: its valid grammar samples are
    ``other / (1 - S)`` (``S = train_mass``, the grammar's mass on the training set; a
    fraction ``S`` of them copy a training string by chance), so it copies strings of
    grammar mass ``mass`` at ``other * mass / (1 - S)`` (``train_mass`` defaults to
    ``mass``: chance copies of the training set itself). Copies do not count as valid
    grammar draws, which would credit memorization to chance.

    >>> round(float(chance_among_valid(0.45, 0.1)), 6)  # 0.5 valid grammar samples
    0.05
    """
    for name, value in (("mass", mass), ("train_mass", train_mass)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.floating))):
            raise TypeError(f"{name} must be a number (a grammar mass in [0, 1]), not {type(value).__name__}")
        if value is not None and not (np.isnan(value) or 0.0 <= value <= 1.0):
            raise ValueError(f"{name} = {value}: must be a grammar mass in [0, 1] (or NaN: unknown)")
    s = mass if train_mass is None else train_mass
    other = np.asarray(other, np.float64)
    if not s < 1.0:  # every grammar sample a training string (or unknown): undefined
        return np.full(other.shape, np.nan)
    return other * mass / (1.0 - s)


def baseline_reproduced(train_logp: np.ndarray, num_samples: np.ndarray) -> np.ndarray:
    """``(T, P)`` probability that a grammar model has reproduced each training string at
    least once by checkpoint ``t``, drawing ``num_samples[t]`` grammar samples at each
    (:func:`chance_draws` for a partly trained model): ``1 - (1 - p)**(B_1 + ... + B_t)``.

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
    run's valid samples that copy nothing, :func:`chance_among_valid` with
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
    draws = chance_draws(run)
    valid = draws / np.maximum(b, 1)  # the valid fraction, 0 where nothing was drawn
    other = np.maximum(valid - copy_fraction, 0.0)  # valid samples that copy no training string
    train_mass = chance_copy_fraction(run.train_logp) if have_logp else np.nan
    chance = chance_among_valid(other, train_mass)
    reproduced = np.logical_or.accumulate(counts > 0, axis=0) if t else counts > 0
    held_ok = run.num_heldout and not np.isnan(run.heldout_logp).any()
    out = {
        "step": steps,
        "copy_fraction": copy_fraction,
        "chance_copy_fraction": chance,
        "excess_copy_fraction": copy_fraction - chance,
        "heldout_copy_fraction": run.heldout_copy_counts.sum(axis=1) / np.maximum(b, 1),
        "heldout_chance_fraction": (
            chance_among_valid(other, chance_copy_fraction(run.heldout_logp), train_mass) if held_ok
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


def per_sample_table(run: Run, *, alpha: float = 0.01) -> dict[str, np.ndarray]:
    """One row per training string, each a ``(P,)`` column: ``index`` (row of the
    training set), ``log_p`` (exact, NaN without a grammar), ``copies`` (generated copies
    over all checkpoints), ``expected_copies`` (``sum_t f_t B_t p(x)``, the baseline at
    the model's validity) and ``expected_copies_full`` (``sum_t B_t p(x)``, every draw
    from the grammar), and the clocks ``first_copy_step``, ``first_excess_copy_step``,
    ``first_nll_step`` (``+inf``: never; NaN: needs ``p(x)``); ``alpha`` is the
    significance level of :func:`first_excess_copy_step`."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    p = run.num_train
    logp = run.train_logp.astype(np.float64)
    have_logp = not np.isnan(logp).any()
    nan = np.full(p, np.nan)
    return {
        "index": np.arange(p),
        "log_p": logp,
        "copies": run.copy_counts.sum(axis=0).astype(np.int64),
        "expected_copies": float(chance_draws(run).sum()) * np.exp(logp) if have_logp else nan,
        "expected_copies_full": float(run.num_samples.sum()) * np.exp(logp) if have_logp else nan,
        "first_copy_step": first_copy_step(run),
        "first_excess_copy_step": first_excess_copy_step(run, alpha=alpha) if have_logp else nan,
        "first_nll_step": first_nll_step(run) if have_logp else nan,
    }


@dataclass(frozen=True)
class QuintileTable:
    """Memorization per prototypicality bin (bin 0 = least prototypical), observed
    beside the generalization baseline. All arrays have one entry per bin."""

    score_low: np.ndarray
    score_high: np.ndarray
    count: np.ndarray
    reproduced: np.ndarray  # fraction copied at least once, by the last checkpoint
    baseline_reproduced: np.ndarray  # the same for the no-memorization model (chance_draws)
    baseline_reproduced_full: np.ndarray  # docs/SCIENCE.md's strict baseline: all B draws from the grammar
    heldout_reproduced: np.ndarray  # held-out strings in the same score range: generated at least once
    copies_per_sample: np.ndarray  # mean generated copies per sample, all checkpoints
    expected_copies_per_sample: np.ndarray  # mean of sum_t f_t B_t p(x)
    expected_copies_full: np.ndarray  # mean of sum_t B_t p(x) (strict baseline)
    excess_copies_per_sample: np.ndarray  # observed minus expected
    beyond_chance: np.ndarray  # fraction copied more often than chance allows (first_excess_copy_step)
    heldout_beyond_chance: np.ndarray  # the same test on held-out strings in the score range (control)
    nll_crossed: np.ndarray  # fraction whose likelihood ever overtook the grammar's
    heldout_nll_crossed: np.ndarray  # held-out strings in the same score range
    median_first_copy: np.ndarray
    median_first_nll: np.ndarray
    median_first_beyond_chance: np.ndarray


def quintile_table(
    run: Run,
    score: np.ndarray,
    *,
    heldout_score: np.ndarray | None = None,
    num_bins: int = 5,
) -> QuintileTable:
    """Memorization per equal-count bin of ``score`` (a prototypicality score of each
    training string, higher = more prototypical), each figure beside its baseline.

    ``heldout_score`` (the same score for the held-out strings) puts held-out strings
    in the same score ranges: the control group, for the false-positive rates of the
    likelihood criterion and of the beyond-chance test, and for how often strings never
    trained on are generated.
    """
    score = np.asarray(score, np.float64)
    if score.shape != (run.num_train,):
        raise ValueError(f"score must have shape ({run.num_train},), got {score.shape}")
    bins = quantile_bins(score, num_bins)
    logp = run.train_logp
    have_logp = not np.isnan(logp).any()
    counts = run.copy_counts
    ever = counts.sum(axis=0)
    b = chance_draws(run)
    total_b = float(b.sum())
    exp_copies = total_b * np.exp(logp) if have_logp else np.full(run.num_train, np.nan)
    base_ever = (
        baseline_reproduced(logp, b)[-1] if have_logp and len(b) else np.full(run.num_train, np.nan)
    )
    b_full = run.num_samples.astype(np.float64)
    exp_full = float(b_full.sum()) * np.exp(logp) if have_logp else np.full(run.num_train, np.nan)
    base_full = (
        baseline_reproduced(logp, b_full)[-1] if have_logp and len(b) else np.full(run.num_train, np.nan)
    )
    crossed: np.ndarray = (
        np.asarray((run.train_nll < -logp[None, :]).any(axis=0)) if have_logp and len(b)
        else np.zeros(run.num_train, bool)
    )
    fc = first_copy_step(run) if len(b) else np.full(run.num_train, np.inf)
    fn = first_nll_step(run) if have_logp and len(b) else np.full(run.num_train, np.inf)
    fx = first_excess_copy_step(run) if have_logp and len(b) else np.full(run.num_train, np.inf)
    h_crossed: np.ndarray | None = None
    if heldout_score is not None and run.num_heldout and len(b) and not np.isnan(run.heldout_logp).any():
        heldout_score = np.asarray(heldout_score, np.float64)
        if heldout_score.shape != (run.num_heldout,):
            raise ValueError(
                f"heldout_score must have shape ({run.num_heldout},), got {heldout_score.shape}"
            )
        h_crossed = np.asarray((run.heldout_nll < -run.heldout_logp[None, :]).any(axis=0))
        h_ever = run.heldout_copy_counts.sum(axis=0) > 0
        h_beyond = np.isfinite(first_excess_copy_step(run, heldout=True))
        h_bins = heldout_bins(score, bins, heldout_score, num_bins)
    rows: dict[str, list[float]] = {k: [] for k in QuintileTable.__dataclass_fields__}
    for q in range(num_bins):
        sel = bins == q
        lo, hi = (float(score[sel].min()), float(score[sel].max())) if sel.any() else (np.nan, np.nan)
        rows["score_low"].append(lo)
        rows["score_high"].append(hi)
        rows["count"].append(float(sel.sum()))
        rows["reproduced"].append(float((ever[sel] > 0).mean()) if sel.any() else np.nan)
        rows["baseline_reproduced"].append(float(base_ever[sel].mean()) if sel.any() else np.nan)
        rows["baseline_reproduced_full"].append(float(base_full[sel].mean()) if sel.any() else np.nan)
        rows["expected_copies_full"].append(float(exp_full[sel].mean()) if sel.any() else np.nan)
        rows["copies_per_sample"].append(float(ever[sel].mean()) if sel.any() else np.nan)
        rows["expected_copies_per_sample"].append(float(exp_copies[sel].mean()) if sel.any() else np.nan)
        rows["excess_copies_per_sample"].append(rows["copies_per_sample"][-1] - rows["expected_copies_per_sample"][-1])
        rows["beyond_chance"].append(float(np.isfinite(fx[sel]).mean()) if sel.any() and have_logp else np.nan)
        rows["median_first_beyond_chance"].append(float(np.median(fx[sel])) if sel.any() else np.nan)
        rows["nll_crossed"].append(float(crossed[sel].mean()) if sel.any() and have_logp else np.nan)
        held = ("heldout_nll_crossed", "heldout_reproduced", "heldout_beyond_chance")
        if h_crossed is not None and heldout_score is not None and sel.any():
            hsel = h_bins == q
            for key, flags in zip(held, (h_crossed, h_ever, h_beyond), strict=True):
                rows[key].append(float(flags[hsel].mean()) if hsel.any() else np.nan)
        else:
            for key in held:
                rows[key].append(np.nan)
        rows["median_first_copy"].append(float(np.median(fc[sel])) if sel.any() else np.nan)
        rows["median_first_nll"].append(float(np.median(fn[sel])) if sel.any() else np.nan)
    return QuintileTable(**{k: np.array(v, np.float64) for k, v in rows.items()})


def quintile_curves(
    run: Run, score: np.ndarray, *, heldout_score: np.ndarray | None = None, num_bins: int = 5
) -> dict[str, np.ndarray]:
    """Per bin of ``score`` and checkpoint: ``reproduced`` (fraction copied so far),
    ``baseline`` (the no-memorization chance of the same), ``beyond_chance`` (fraction
    copied more often than chance allows so far, :func:`first_excess_copy_step`),
    ``nll_crossed`` (fraction the model currently finds likelier than the grammar);
    with ``heldout_score``, ``heldout_beyond_chance``: the held-out strings in the bin's
    score range passing the same test (the control); each ``(num_bins, T)``."""
    score = np.asarray(score, np.float64)
    if score.shape != (run.num_train,):
        raise ValueError(f"score must have shape ({run.num_train},), got {score.shape}")
    bins = quantile_bins(score, num_bins)
    t = len(run.steps)
    reproduced: np.ndarray = (
        np.logical_or.accumulate(run.copy_counts > 0, axis=0) if t else np.zeros((0, run.num_train), bool)
    )
    have_logp = not np.isnan(run.train_logp).any()
    base = baseline_reproduced(run.train_logp, chance_draws(run)) if have_logp else np.full((t, run.num_train), np.nan)
    crossed: np.ndarray = (
        np.asarray(run.train_nll < -run.train_logp[None, :]) if have_logp else np.zeros((t, run.num_train), bool)
    )
    beyond = (
        run.steps[:, None] >= first_excess_copy_step(run)[None, :] if have_logp and t
        else np.zeros((t, run.num_train), bool)
    )
    keys = ("reproduced", "baseline", "beyond_chance", "nll_crossed", "heldout_beyond_chance")
    out = {k: np.full((num_bins, t), np.nan) for k in keys}
    h_beyond: np.ndarray | None = None
    if heldout_score is not None and t and run.num_heldout and not np.isnan(run.heldout_logp).any():
        heldout_score = np.asarray(heldout_score, np.float64)
        if heldout_score.shape != (run.num_heldout,):
            raise ValueError(f"heldout_score must have shape ({run.num_heldout},), got {heldout_score.shape}")
        h_beyond = run.steps[:, None] >= first_excess_copy_step(run, heldout=True)[None, :]
        h_bins = heldout_bins(score, bins, heldout_score, num_bins)
    for q in range(num_bins):
        sel = bins == q
        if not sel.any():
            continue
        if h_beyond is not None and heldout_score is not None:
            hsel = h_bins == q
            if hsel.any():
                out["heldout_beyond_chance"][q] = h_beyond[:, hsel].mean(axis=1)
        out["reproduced"][q] = reproduced[:, sel].mean(axis=1)
        out["baseline"][q] = base[:, sel].mean(axis=1)
        out["beyond_chance"][q] = beyond[:, sel].mean(axis=1) if have_logp else np.nan
        out["nll_crossed"][q] = crossed[:, sel].mean(axis=1) if have_logp else np.nan
    out["step"] = run.steps.astype(np.float64)
    return out
