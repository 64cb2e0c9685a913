"""``slop``: are common substrings learned first, and then over-produced, before whole
samples are copied?

Two questions, two statistics, each read against null runs fitted to each observed run
(:func:`rhmfast.knownanswers.nulls.null_runs`: they copy as often and are as invalid,
level by level, but their other samples are the exact grammar's through the same
sampler), so the nulls absorb copies, validity and the sampler's own bias.

- **Over-produced** (the verdict's statistic): in the window of partial memorization,
  the common over rare ratio. The common-block ratio of a level is the generated
  frequency of its common blocks (the top ``common_fraction`` of the distinct training
  blocks by exact grammar probability, :func:`rhmfast.analysis.blocks.common_blocks`)
  among the generated blocks the grammar knows, over the grammar's mass on them; the
  rare-block ratio the same for the bottom ``common_fraction``; both averaged over
  levels ``1..L`` and counted over the window's samples that copy no training string
  (copies are memorization). Their quotient is above 1 when common blocks are favoured
  over the other training blocks. A model that copies pieces of its training strings
  over-produces every training block, rare ones far more than common ones relative to
  their grammar mass, so it reads "no" here, while the common-block ratio alone (beside
  it, with each level's and the rare-block ratio) would call it slop. The window of a
  run: from its first checkpoint with at least ``valid_min`` valid samples until,
  excluded, its first with excess copies (beyond chance) of ``copy_max`` or more; the
  same rule for every run, observed or null. Interval: a two-stage bootstrap over
  seeds, then samples (whole strings: the blocks of one string are not independent).
- **Learned first**: per run, the step (interpolated in log step) at which the common
  blocks' ratio first reaches 1 (their grammar frequency), and the same for the rare
  blocks, over every checkpoint's samples that copy nothing; the statistic is
  ``log(rare step / common step)`` (> 0: common first; a set that never reaches it
  counts at twice the last step), averaged over seeds; interval: seeds resampled.

All statistics are fixed before any run is read.

>>> [spec.name for spec in plan({"seeds": [0, 1], "train": {"L": 4}})]
['seed0', 'seed1']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import Run, memorization_curves, memorization_time, overproduction
from rhmfast.analysis.blocks import GrammarProbs, common_block_counts, common_blocks
from rhmfast.analysis.plots import (
    figure_band,
    figure_block_frequencies,
    figure_null_tests,
    save_figure,
)
from rhmfast.experiments.common import (
    fmt_num,
    fmt_pct,
    grammar_block_probs,
    load_runs,
    not_measurable,
    null_sets_or_why,
    regime_text,
    training_curves_figure,
)
from rhmfast.experiments.rates import fingerprint, null_cell, quoted
from rhmfast.experiments.runner import RunSpec
from rhmfast.report import Report
from rhmfast.stats import NullTest, answer, two_stage_interval, verdict

TITLE = "Partial memorization: are common blocks over-produced before whole samples are copied?"

_COMMON = {"copy_max": 0.05, "valid_min": 0.25, "common_fraction": 0.1, "top_blocks": 10, "alpha": 0.05}
DEFAULTS: dict[str, dict[str, Any]] = {
    # a micro training never reaches 25% valid samples: its window opens at the first
    # checkpoint, so the smoke size still runs the whole analysis
    "micro": {**_COMMON, "seeds": [0], "valid_min": 0.0, "top_blocks": 8, "num_boot": 100, "null_runs": 19},
    # the prototypes preset's regime (the quick CPU base: Zipf a = 1, P = 128, 2600
    # steps), where the study's effects are large enough to see; 99 null run sets
    "quick": {**_COMMON, "seeds": [0, 1, 2], "num_boot": 1000, "null_runs": 99},
    "paper": {**_COMMON, "seeds": [0, 1, 2], "num_boot": 1000, "null_runs": 99},
}
COMMON = "common-block ratio, levels pooled"
RARE = "rare-block ratio, levels pooled"  # the bottom common_fraction of the training blocks
TILT = "common over rare blocks, levels pooled"  # the verdict's over-production statistic
TIMING = "log(rare / common) steps to the grammar frequency"  # learned first: > 0


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    return [
        RunSpec(f"seed{seed}", {"seed": int(seed)}, dict(settings["train"], seed=int(seed), data_seed=int(seed)))
        for seed in settings["seeds"]
    ]


def window(run: Run, *, valid_min: float, copy_max: float) -> tuple[int, int] | None:
    """``(first, last)`` checkpoint indices of the run's window: from its first
    checkpoint with a valid fraction of at least ``valid_min`` up to the last before its
    first later one with excess copies of ``copy_max`` or more (the first is always in:
    a null run that copies as much is never left without a window by noise near the
    threshold; None when no checkpoint is valid enough). A rule fixed in advance,
    applied alike to observed and null runs: no search over checkpoints."""
    curves = memorization_curves(run)
    valid = np.nan_to_num(curves["valid_fraction"], nan=0.0)
    excess = np.nan_to_num(curves["excess_copy_fraction"], nan=np.inf)
    start = np.flatnonzero(valid >= valid_min)
    if not len(start):
        return None
    first = int(start[0])
    stop = np.flatnonzero(excess[first + 1:] >= copy_max)
    return first, (first + int(stop[0]) if len(stop) else len(run.steps) - 1)


class _Counts:
    """One run's window: per sample and level, its common and grammatical blocks."""

    def __init__(self, run: Run, s: int, settings: dict[str, Any], probs: GrammarProbs) -> None:
        L = int(settings["train"]["L"])
        self.levels = list(range(1, L + 1))
        self.window = window(run, valid_min=float(settings["valid_min"]), copy_max=float(settings["copy_max"]))
        cf = float(settings["common_fraction"])
        sets = [common_blocks(run.train, s, lv, probs, common_fraction=cf) for lv in self.levels]
        rare = [common_blocks(run.train, s, lv, probs, common_fraction=cf, rarest=True) for lv in self.levels]
        self.mass = np.array([m for _, m in sets])  # grammar mass on each level's common blocks
        self.rare_mass = np.array([m for _, m in rare])
        self.common = np.zeros((0, len(self.levels)), np.int64)
        self.rare = np.zeros((0, len(self.levels)), np.int64)
        self.known = np.zeros((0, len(self.levels)), np.int64)
        self.sizes = np.zeros(0, np.int64)  # samples counted per checkpoint of the window
        self.clocks: tuple[float, ...] = (np.inf, np.inf)  # steps at which common / rare blocks reach their grammar mass
        self.last = float(run.steps[-1]) if len(run.steps) else 1.0
        if not len(run.steps):
            return
        # every checkpoint's samples that copy nothing (copies are memorization), counted once
        kept = [rec.samples[rec.copy_of < 0] for rec in run.evals()]
        at = np.repeat(np.arange(len(kept)), [len(k) for k in kept])
        x = np.concatenate(kept)
        pairs = [common_block_counts(x, s, lv, c, probs) for lv, (c, _) in zip(self.levels, sets, strict=True)]
        common = np.stack([c for c, _ in pairs], axis=1)
        known = np.stack([k for _, k in pairs], axis=1)
        rare_counts = np.stack([common_block_counts(x, s, lv, c, probs)[0]
                                for lv, (c, _) in zip(self.levels, rare, strict=True)], axis=1)
        steps = run.steps.astype(np.float64)
        curves = [np.array([self._pooled(c[at == t], known[at == t], m) for t in range(len(kept))])
                  for c, m in ((common, self.mass), (rare_counts, self.rare_mass))]
        self.clocks = tuple(memorization_time(steps, np.nan_to_num(r, nan=0.0), 1.0) for r in curves)
        if self.window is not None:
            sel = (at >= self.window[0]) & (at <= self.window[1])
            self.sizes = np.array([len(kept[t]) for t in range(self.window[0], self.window[1] + 1)], np.int64)
            self.common, self.known, self.rare = common[sel], known[sel], rare_counts[sel]

    @staticmethod
    def _pooled(counts: np.ndarray, known: np.ndarray, mass: np.ndarray) -> float:
        """Levels-pooled ratio of generated to grammar frequency of a block set."""
        kk = known.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where((kk > 0) & (mass > 0), counts.sum(0) / kk / mass, np.nan)
        return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")

    def timing(self) -> float:
        """``log(rare clock / common clock)``: > 0 when the common training blocks reach
        their grammar frequency (generated frequency over grammar mass, levels pooled,
        samples that copy nothing) at an earlier checkpoint than the rare ones; a set that
        never does is counted at twice the last step; NaN when neither does."""
        c, r = self.clocks
        if not (np.isfinite(c) or np.isfinite(r)):
            return float("nan")
        cap = 2 * self.last
        return float(np.log(min(r, cap)) - np.log(min(c, cap)))

    def ratios(self, idx: np.ndarray | None = None, *, rare: bool = False) -> np.ndarray:
        """``(levels,)`` common-block ratio (``rare``: rare-block ratio) of each level over
        the samples ``idx``."""
        counts, mass = (self.rare, self.rare_mass) if rare else (self.common, self.mass)
        c = counts if idx is None else counts[idx]
        k = self.known if idx is None else self.known[idx]
        kk = k.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((kk > 0) & (mass > 0), c.sum(0) / kk / mass, np.nan)

    def stats(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The window's statistics (:data:`WINDOW_STATISTICS`) over the samples ``idx``:
        the common over the rare ratio (> 1: common blocks favoured over the other
        training blocks, not only training blocks over-produced; the verdict's), the
        common-block ratio with levels pooled (mean), then each level's, then the
        rare-block ratio pooled."""
        r, rr = self.ratios(idx), self.ratios(idx, rare=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            tilt = np.mean(r) / np.mean(rr) if np.mean(rr) > 0 else np.nan
        return np.concatenate([[tilt, np.mean(r)], r, [np.mean(rr)]])


def _bootstrap(counts: list[_Counts], num_boot: int, seed: int = 0) -> np.ndarray:
    """``(num_boot, K)`` statistics on resamples of seeds, then of samples within each."""
    rng = np.random.default_rng(seed)
    out = np.full((num_boot, len(statistic_names(counts[0].levels)) - 1), np.nan)  # the window's: not the timing
    for b in range(num_boot):
        vals = []
        for i in rng.integers(len(counts), size=len(counts)):
            c = counts[int(i)]
            n = len(c.common)
            vals.append(c.stats(rng.integers(n, size=n)) if n else np.full(out.shape[1], np.nan))
        out[b] = np.mean(vals, axis=0)
    return out


def statistic_names(levels: list[int]) -> list[str]:
    """Names of the statistics ``null_tests`` returns, in order: the window's (the
    verdict's over-production first), then the timing (learned first)."""
    return [TILT, COMMON] + [f"common-block ratio, level {lv}" for lv in levels] + [RARE, TIMING]


def _tests(counts: list[_Counts], null_counts: list[list[_Counts]], settings: dict[str, Any]) -> list[NullTest]:
    value = np.mean([c.stats() for c in counts], axis=0)
    boot = _bootstrap(counts, int(settings["num_boot"]))
    null = np.array([np.mean([c.stats() for c in ns], axis=0) for ns in null_counts])
    tests = []
    names = statistic_names(counts[0].levels)
    for k, name in enumerate(names[:-1]):
        b = boot[:, k][np.isfinite(boot[:, k])]
        interval = (float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975))) if len(b) else (np.nan, np.nan)
        tests.append(NullTest.of(name, float(value[k]), interval, null[:, k], alpha=float(settings["alpha"])))
    # the timing: one clock pair per run, so the interval resamples seeds only
    timing = [c.timing() for c in counts]
    interval = two_stage_interval(timing, lambda t: (), lambda t: t, num_boot=int(settings["num_boot"]))
    null_timing = [_finite_mean([c.timing() for c in ns]) for ns in null_counts]
    tests.append(NullTest.of(names[-1], _finite_mean(timing), interval, null_timing, alpha=float(settings["alpha"])))
    return tests


def _finite_mean(values: list[float]) -> float:
    """Mean over the seeds whose value is defined; NaN when none is."""
    arr = np.asarray(values, np.float64)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def _probs(run: Run) -> GrammarProbs:
    probs = grammar_block_probs(run)
    if probs is None:
        raise ValueError(f"run {str(run.path)!r} has no grammar.json: common blocks need exact block probabilities")
    return probs


def null_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> list[NullTest]:
    """The experiment's statistics on the observed runs (one per seed) against the null
    run sets; the first (levels pooled) is the verdict's, then each level's.
    ``settings``: ``train.s``, ``train.L``, ``valid_min``, ``copy_max``,
    ``common_fraction``, ``num_boot``, ``alpha``."""
    return _counted_tests(runs, nulls, settings)[1]


def _counted_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]
                   ) -> tuple[list[_Counts], list[NullTest]]:
    s = int(settings["train"]["s"])
    probs = _probs(runs[0])  # observed and null runs share their config's grammar
    counts = [_Counts(r, s, settings, probs) for r in runs]
    null_counts = [[_Counts(r, s, settings, probs) for r in ns] for ns in nulls]
    return counts, _tests(counts, null_counts, settings)


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    seeds = [sp.params["seed"] for sp in specs]
    why = ""
    if any(grammar_block_probs(r) is None for r in runs):
        why = "the runs have no grammar.json, so no exact block probabilities"
    elif all(window(r, valid_min=float(settings["valid_min"]), copy_max=float(settings["copy_max"])) is None
             for r in runs):
        why = (f"no run has a window (no checkpoint with {fmt_pct(float(settings['valid_min']))} valid samples; "
               "raise [train] steps)")
    nulls, why = null_sets_or_why(exp_dir, runs, int(settings["null_runs"]), why)
    if why:
        return not_measurable(report, QUESTION, why, seeds)
    counts, tests = _counted_tests(runs, nulls, settings)
    primary, timing = tests[0], tests[-1]
    said = answer(primary, above="yes", below=OPPOSITE, why="no run has a window")
    effect = primary.value / primary.centre if primary.centre > 0 else float("nan")
    first = answer(timing, above="yes", below="no, the opposite (rare training blocks first)",
                   why="in no seed did common or rare blocks reach their grammar frequency")
    key = fingerprint(settings)
    verdict_text = f"{verdict(QUESTION, primary, said)}; x{effect:.3f} the null median" + quoted("slop", key, primary)
    timing_text = verdict(QUESTION_FIRST, timing, first) + quoted("slop", key, timing)
    report.verdict(timing_text)
    report.verdict(verdict_text)
    _report_body(report, settings, runs, seeds, counts, tests)
    top_level, top_step, top_rows = _figures(report, settings, runs, nulls, seeds, counts, tests)
    return {
        "verdict": verdict_text,
        "answer": said,
        "verdict_learned_first": timing_text,
        "answer_learned_first": first,
        "primary": primary.as_dict(),
        "tests": {t.name: t.as_dict() for t in tests},
        "effect_over_null": effect,
        "windows": [[float(r.steps[c.window[0]]), float(r.steps[c.window[1]])] if c.window else None
                    for r, c in zip(runs, counts, strict=True)],
        "seeds": seeds,
        "top_blocks_level": top_level,
        "top_blocks_step": top_step,
        "top_blocks": top_rows,
    }


QUESTION = "common substrings over-produced (favoured over the other training blocks) in the partial memorization window"
QUESTION_FIRST = "common substrings learned first (reach their grammar frequency before rare ones)"
OPPOSITE = ("no: rare training blocks over-produced more than common ones (pieces of training strings copied, "
            "not common substrings favoured)")


def _report_body(report: Report, settings: dict[str, Any], runs: list[Run], seeds: list[int],
                 counts: list[_Counts], tests: list[NullTest]) -> None:
    cfg = settings["train"]
    s, L = int(cfg["s"]), int(cfg["L"])
    cf, vmin, cmax = float(settings["common_fraction"]), float(settings["valid_min"]), float(settings["copy_max"])
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={s} L={L}, rule exponent zipf_a={cfg['zipf_a']}; "
        f"P={cfg['num_train']} training strings per seed; {cfg.get('model', 'transformer')} "
        f"{cfg.get('process', 'masked')} diffusion, {cfg['steps']} steps; {cfg.get('eval_samples')} samples per "
        f"checkpoint, sampler '{cfg.get('sampling_reveal', 'ancestral')}'; seeds {seeds}; "
        f"{len(tests[0].null)} null run sets."
    )
    report.text(regime_text(runs) + " Copies are left out of every ratio.")
    report.text(
        f"Level-l blocks are the aligned s^(L-l)-token substrings (level {L} = single tokens), positions pooled. "
        f"Common blocks: the top {fmt_pct(cf)} of the distinct training blocks of a level by exact grammar "
        "probability. Common-block ratio: their frequency among the generated blocks the grammar knows, over the "
        "grammar's mass on them (1: as the grammar; > 1: over-produced); the statistic averages levels 1.."
        f"{L} and seeds, counting every sample of the window that is not a copy of a training string. Rare-block "
        f"ratio: the same for the bottom {fmt_pct(cf)} of the training blocks; a model that copies pieces of its "
        "training strings over-produces both, so the common over rare ratio (> 1: the common ones more) tells "
        "a preference for common blocks from partial copies. Window (fixed in advance, the same rule for every "
        f"run): from the first checkpoint with >= {fmt_pct(vmin)} valid samples until, excluded, the first with "
        f"excess copies (beyond chance) >= {fmt_pct(cmax)}. Null runs: known-answer memorizers fitted to each "
        "seed's copy-fraction and per-level validity curves whose other samples are the exact grammar's through "
        "the same sampler (`rhmfast.knownanswers.nulls.null_runs`): over-production beyond memorization is what departs "
        "from them. Interval: 95% bootstrap over seeds, then samples. p: two-sided Monte Carlo p against the null "
        "run sets; false positives: the rate measured on simulated run sets of known answer at these settings "
        "(benches/calibrate.py), per memorizer family; not measured at other settings."
    )
    rows = []
    for r, sd, c in zip(runs, seeds, counts, strict=True):
        if c.window is None:
            rows.append([str(sd), "none", "", "", ""])
            continue
        a, b = c.window
        cur = memorization_curves(r)
        rows.append([str(sd), f"{r.steps[a]}-{r.steps[b]} ({b - a + 1} ckpts)", fmt_pct(cur["valid_fraction"][a]),
                     fmt_pct(cur["excess_copy_fraction"][b]), f"{len(c.common)}"])
    report.heading("Windows")
    report.table(["seed", "steps (checkpoints)", "valid at start", "excess copies at end", "samples"], rows)
    report.heading("Statistics against their null runs")
    rows = []
    for t in tests:
        lo, hi = t.null_band
        rows.append([t.name.replace("common-block ratio, ", ""), f"{t.value:.3f} [{t.interval[0]:.3f}, "
                     f"{t.interval[1]:.3f}]", f"{t.centre:.3f} [{lo:.3f}, {hi:.3f}]", f"{t.p:.2g}",
                     fmt_num(t.detectable), null_cell("slop", fingerprint(settings), t.name)])
    report.table(["common-block ratio", "observed [95% CI]", "null median [95%]", "p", "detectable",
                  "false positives"], rows)
    report.text("Grammar mass on the common blocks, by level: " + ", ".join(
        f"level {lv} {fmt_num(m)}" for lv, m in zip(counts[0].levels, counts[0].mass, strict=True)) + ".")


def _figures(report: Report, settings: dict[str, Any], runs: list[Run], nulls: list[list[Run]], seeds: list[int],
             counts: list[_Counts], tests: list[NullTest]) -> tuple[int | None, int | None, list[dict[str, Any]]]:
    s = int(settings["train"]["s"])
    fig = figure_null_tests(tests, title="Common-block ratios in the window against their null runs")
    save_figure(fig, report.root / "figures/null_tests")
    report.figure("figures/null_tests", "Grey: the statistic on each null run set and their central 95%; black: "
                  "observed, with its 95% bootstrap interval.")
    probs = _probs(runs[0])
    steps = runs[0].steps
    if all(np.array_equal(r.steps, steps) for r in runs + [n for ns in nulls for n in ns]):
        # per checkpoint (not the verdict: a figure of where the window sits)
        all_c = {id(r): _Counts(r, s, {**settings, "valid_min": 0.0, "copy_max": 2.0}, probs)
                 for r in runs + [n for ns in nulls for n in ns]}

        def curve(rs: list[Run]) -> np.ndarray:
            out = np.full((len(rs), len(steps)), np.nan)
            for j, r in enumerate(rs):
                c = all_c[id(r)]
                first = c.window[0] if c.window is not None else 0
                ends = np.cumsum(c.sizes)  # each checkpoint's own samples (copies left out)
                for t, (e, n) in enumerate(zip(ends, c.sizes, strict=True)):
                    ratios = c.ratios(np.arange(e - n, e))
                    if n and np.isfinite(ratios).any():
                        out[j, first + t] = float(np.nanmean(ratios))
            seen = np.isfinite(out).any(axis=0)  # a checkpoint of copies only in every run: NaN
            mean = np.full(len(steps), np.nan)
            mean[seen] = np.nanmean(out[:, seen], axis=0)
            return mean

        band = np.quantile(np.stack([curve(ns) for ns in nulls]), [0.025, 0.975], axis=0)
        fig = figure_band(steps, curve(runs), (band[0], band[1]), ylabel="common-block ratio, levels pooled",
                          title="Over-production of common blocks, per checkpoint")
        fig.axes[0].axhline(1.0, color="gray", lw=0.5, ls=":")
        for c, r in zip(counts, runs, strict=True):
            if c.window is not None:
                fig.axes[0].axvspan(float(r.steps[c.window[0]]), float(r.steps[c.window[1]]), color="orange",
                                    alpha=0.1)
        save_figure(fig, report.root / "figures/overproduction")
        report.figure("figures/overproduction", "Common-block ratio at each checkpoint (levels pooled, mean over "
                      "seeds) inside the band of the null runs; shaded: each seed's window.")
    top_rows: list[dict[str, Any]] = []
    top_level = top_step = None
    first = counts[0]
    if first.window is not None:
        top_step = int(runs[0].steps[first.window[1]])
        rec = runs[0].eval(top_step)
        tabs = [overproduction(rec.samples, runs[0].train, s, lv, grammar_probs=probs,
                               common_fraction=float(settings["common_fraction"])) for lv in first.levels]
        top_level = first.levels[0]
        top_rows = tabs[0].top(int(settings["top_blocks"]))
        report.heading(f"Most generated level-{top_level} blocks at step {top_step} (end of seed {seeds[0]}'s window)")
        report.table(["block", "generated", "training", "grammar", "ratio"],
                     [[" ".join(map(str, r["block"])), fmt_pct(r["generated"]), fmt_pct(r["train"]),
                       fmt_pct(r["grammar"]), f"{r['ratio']:.3g}"] for r in top_rows])
        fig = figure_block_frequencies(tabs, title=f"Block frequencies at step {top_step} (seed {seeds[0]})")
        save_figure(fig, report.root / "figures/block_frequencies")
        report.figure("figures/block_frequencies",
                      f"Each level's blocks at step {top_step}, the end of the window: generated (filled) and "
                      "training-set (open) frequency against exact grammar probability; points above the diagonal "
                      "are over-produced.")
    training_curves_figure(report, runs, [f"seed {sd}" for sd in seeds], "figures/copies", "Copies over training")
    return top_level, top_step, top_rows

