"""Descriptive per-string clocks and per-quintile tables of one run (numpy only).

Two per-sample clocks, both read from the run directory:

* **first copy step**: the first checkpoint at which some generated sample equals the
  training string;
* **first likelihood step**: the first checkpoint at which the model's NLL bound on the
  string falls below the string's true ``-log p(x)`` (the model finds it likelier than
  the grammar does). A model that learned the grammar exactly never crosses (its bound
  is at least the true NLL), so crossing is memorization, not generalization; the
  held-out strings give the false-positive rate of this criterion.

Beside them, the chance count of :mod:`rhmfast.stats.chance` (a model that memorized
nothing, with the run's valid samples that copy nothing as its grammar draws). These
are descriptive: the per-string significance clock needs more copies of a likely
string than of a rare one, so it is biased toward "rare first"; the verdicts use the
calibrated statistics of :mod:`rhmfast.analysis.excess` and :mod:`rhmfast.analysis.sweeps`.

The held-out strings are the control group: drawn from the same distribution, never
trained on. Whatever the clocks find for them (a model over-producing common strings
generates prototypical held-out strings "beyond chance" too) is generalization or slop,
not memorization; only the excess of training over held-out strings is memorization.

Samples never memorized get step ``+inf`` (censored; they rank last, tied).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rhmfast.analysis.memorization import baseline_reproduced, grammar_draws, heldout_bins
from rhmfast.analysis.rundir import Run
from rhmfast.stats.chance import poisson_sf
from rhmfast.stats.ranks import quantile_bins

__all__ = [
    "first_step",
    "first_copy_step",
    "first_excess_copy_step",
    "first_nll_step",
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


def _require_logp(logp: np.ndarray, what: str) -> np.ndarray:
    if np.isnan(logp).any():
        raise ValueError(f"{what}: exact grammar log-probabilities are NaN (data not from a grammar)")
    return logp


def first_copy_step(run: Run) -> np.ndarray:
    """``(P,)`` first checkpoint step at which each training string was generated verbatim."""
    return first_step(run.steps, run.copy_counts > 0)


def first_excess_copy_step(run: Run, *, alpha: float = 0.01, heldout: bool = False) -> np.ndarray:
    """``(P,)`` first checkpoint at which a training string has been generated more often
    than a model that memorized nothing plausibly would: its cumulative copies ``C``
    satisfy ``P(Poisson(p(x) * grammar draws so far) >= C) < alpha``, the draws from
    :func:`~rhmfast.analysis.memorization.grammar_draws`.

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
    lam = np.cumsum(grammar_draws(run))[:, None] * np.exp(logp)[None, :]
    hits = (cum > 0) & (poisson_sf(cum, lam) < alpha)
    return first_step(run.steps, hits)


def first_nll_step(run: Run, *, margin: float = 0.0) -> np.ndarray:
    """``(P,)`` first checkpoint step at which ``train_nll < -train_logp - margin``."""
    logp = _require_logp(run.train_logp, "first_nll_step")
    return first_step(run.steps, run.train_nll < (-logp - margin)[None, :])


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
        "expected_copies": float(grammar_draws(run).sum()) * np.exp(logp) if have_logp else nan,
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
    baseline_reproduced: np.ndarray  # the same for the no-memorization model (grammar_draws)
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
    b = grammar_draws(run)
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
    base = baseline_reproduced(run.train_logp, grammar_draws(run)) if have_logp else np.full((t, run.num_train), np.nan)
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
