"""``prototypes``: are prototypical training samples memorized first?

One unique training set per seed. The verdict's statistic is a per-string clock of
equal power for every string: the first checkpoint at which a training string's copies
so far reach its chance count so far plus 3, correlated (Spearman) with the string's
prototypicality, its block frequency in the training set (the study's notion); rho < 0
means prototypical strings are memorized first. Beside it: the same clock against the
exact ``log p(x)``, and the excess copies per string (training copies minus held-out
strings of the same log p range, which generalization, chance and over-production
reach as much) of the most prototypical fifth minus the least, counted up to the
checkpoint at which a fixed fraction of the samples are copies. Under memorization
that does not depend on the string each statistic is centred; each is read against
null runs fitted to the observed runs (:func:`rhmfast.knownanswers.nulls.null_runs`), which give
its interval of no effect; its false-positive rate and power are measured on known answers
(:mod:`rhmfast.experiments.rates`). On known answers at the quick
size the clock had the most power (docs/RESULTS.md). The likelihood bound is shown as a figure
only (its per-string noise is larger than the effects in question). Every training
string's numbers go to ``per_sample.csv``.

>>> [spec.name for spec in plan({"seeds": [0, 1], "train": {"L": 4}})]
['seed0', 'seed1']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import Run, chance_counts, memorization_curves
from rhmfast.analysis.excess import (
    clock_rho,
    copy_point,
    equal_power_clock,
    excess_copies,
    quintile_contrast,
    string_sizes,
)
from rhmfast.analysis.memorization import fitted_sharpening
from rhmfast.analysis.plots import (
    figure_band,
    figure_lines,
    figure_null_tests,
    figure_scatter_times,
    save_figure,
)
from rhmfast.experiments.common import (
    chance_probability,
    fmt_num,
    fmt_pct,
    load_runs,
    not_measurable,
    null_sets_or_why,
    regime_text,
    training_curves_figure,
    write_csv,
)
from rhmfast.experiments.rates import fingerprint, null_cell, quoted
from rhmfast.experiments.runner import RunSpec
from rhmfast.report import Report
from rhmfast.stats import (
    NullTest,
    answer,
    prototypicality_score,
    quantile_bins,
    two_stage_interval,
    verdict,
)

TITLE = "Are prototypical samples memorized first?"

DEFAULTS: dict[str, dict[str, Any]] = {
    # nulls_over_produce: the null runs draw from the grammar sharpened as each observed
    # run over-produces (its look-alike is a generalizer that over-produces common rules
    # with no memorization preference, docs/RESULTS.md; false: the grammar itself)
    "micro": {"seeds": [0, 1], "num_boot": 200, "alpha": 0.05, "copy_threshold": 0.05, "null_runs": 19,
              "nulls_over_produce": True},
    # The quick CPU base (presets.TRAIN["quick"]): the study's tail (Zipf a = 1 at every
    # level), P = 128, 2600 steps. Chosen for the effect, not only against chance (pilot,
    # docs/RESULTS.md): the prototypicality score's spread over a training set is 1.9x
    # that of P = 64 at a = 0.5 (sd 0.31 against 0.16), and every statistic found the
    # effect there (clock rho -0.17, excess Q5 - Q1 +0.66, 3 seeds), while the chance mass
    # stays small (S = 0.002, P max p(x) = 0.08). 99 null run sets: p can reach 0.01.
    "quick": {"seeds": [0, 1, 2], "num_boot": 1000, "alpha": 0.05, "copy_threshold": 0.05, "null_runs": 99,
              "nulls_over_produce": True},
    "paper": {"seeds": [0, 1, 2], "num_boot": 1000, "alpha": 0.05, "copy_threshold": 0.05, "null_runs": 99,
              "nulls_over_produce": True},
}
# the statistics null_tests returns, in order (the verdict's first); rho < 0 and Q5 - Q1 > 0
# are "prototypical first"
STATISTICS = ("equal-power clock rho (block frequency)", "equal-power clock rho (log p)",
              "excess copies Q5 - Q1 (block frequency)", "excess copies Q5 - Q1 (log p)")
EFFECT_SIGNS = (-1, -1, 1, 1)
# copy fractions at which the contrast is also tabulated (the primary one is copy_threshold)
COPY_POINTS = (0.02, 0.05, 0.1, 0.2)
# copy fractions of the contrast's curve against its null band (figures/contrast)
CURVE_FRACTIONS = (0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3)


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    specs = []
    for seed in settings["seeds"]:
        train = dict(settings["train"], seed=int(seed), data_seed=int(seed), unique=True)
        specs.append(RunSpec(f"seed{seed}", {"seed": int(seed)}, train))
    return specs


# ---- statistics: each maps (run, training-string resample, held-out resample) -> float

Stat = Callable[[Run, np.ndarray, np.ndarray], float]


class _Scores:
    """Per-run prototypicality scores, chance counts and clocks, computed once."""

    def __init__(self, runs: list[Run], s: int) -> None:
        self.blocks = {id(r): prototypicality_score(r.train, s) for r in runs}
        self.logp = {id(r): r.train_logp for r in runs}
        # chance at the run's own over-production of common rules: a generalizer that
        # sharpens its rules reproduces likely training strings more often than the
        # grammar would, which the grammar's chance count reads as memorizing them first
        self.beta = {id(r): fitted_sharpening(r) for r in runs}
        self.chance = {id(r): chance_counts(r, chance_probability(r, self.beta[id(r)])) for r in runs}
        self.clock = {id(r): equal_power_clock(r, self.chance[id(r)]) for r in runs}

    def add(self, runs: list[Run], s: int) -> None:
        other = _Scores(runs, s)
        for name in ("blocks", "logp", "beta", "chance", "clock"):
            getattr(self, name).update(getattr(other, name))


def _contrast(scores: _Scores, which: str, fraction: float) -> Stat:
    def stat(run: Run, tr: np.ndarray, ho: np.ndarray) -> float:
        e = excess_copies(run, copy_point(run, fraction), strings=tr, heldout=ho)
        return quintile_contrast(e, getattr(scores, which)[id(run)][tr])
    return stat


def _clock(scores: _Scores, which: str) -> Stat:
    def stat(run: Run, tr: np.ndarray, ho: np.ndarray) -> float:
        return clock_rho(scores.clock[id(run)][tr], getattr(scores, which)[id(run)][tr])
    return stat


def _everything(run: Run) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(run.num_train), np.arange(run.num_heldout)


def _test(name: str, stat: Stat, runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> NullTest:
    value = float(np.mean([stat(r, *_everything(r)) for r in runs]))
    interval = two_stage_interval(runs, string_sizes, stat, num_boot=int(settings["num_boot"]), seed=0)
    null = [float(np.mean([stat(r, *_everything(r)) for r in ns])) for ns in nulls]
    return NullTest.of(name, value, interval, null, alpha=float(settings["alpha"]))


def null_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> list[NullTest]:
    """The experiment's statistics on the observed runs (one per seed) against the null
    run sets; the first is the verdict's. ``settings``: ``train.s``, ``copy_threshold``,
    ``num_boot``, ``alpha``."""
    return _scored_tests(runs, nulls, settings)[1]


def _scored_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> tuple[_Scores, list[NullTest]]:
    s = int(settings["train"]["s"])
    fraction = float(settings["copy_threshold"])
    scores = _Scores(runs, s)
    scores.add([r for ns in nulls for r in ns], s)
    # the verdict's statistic first: on known answers at the quick size the clock, which
    # reads the whole run, had 100% power at strength 2 where the excess copies up to 5%
    # copies had 50-60%, at 5% false positives on 60 null sets (docs/RESULTS.md)
    stats: dict[str, Stat] = dict(zip(STATISTICS, (
        _clock(scores, "blocks"), _clock(scores, "logp"),
        _contrast(scores, "blocks", fraction), _contrast(scores, "logp", fraction)), strict=True))
    return scores, [_test(name, stat, runs, nulls, settings) for name, stat in stats.items()]


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    seeds = [sp.params["seed"] for sp in specs]
    fraction = float(settings["copy_threshold"])
    exact = all(np.isfinite(r.train_logp).all() and np.ptp(r.train_logp) > 0 for r in runs)
    copied = [int(r.copy_counts.sum()) for r in runs]
    why = ("" if exact and sum(copied) > 0 else
           "the runs have no grammar probabilities, so no held-out control of matched log p" if not exact else
           "no training sample was copied in any seed (raise [train] steps)")
    nulls, why = null_sets_or_why(exp_dir, runs, int(settings["null_runs"]), why,
                                  over_production=bool(settings.get("nulls_over_produce", False)))
    if why:
        return not_measurable(report, "prototypical samples memorized first", why, seeds)
    scores, tests = _scored_tests(runs, nulls, settings)
    primary = tests[0]  # a clock: negative rho = prototypical strings reach it first
    why = (f"in some seed fewer than two training strings reached the {primary.name.split(' rho')[0]} (copies at "
           "least chance + 3; raise [train] steps)")
    said = answer(primary, below="yes", above="no, the opposite (atypical samples first)", why=why)
    verdict_text = verdict("prototypical samples memorized first", primary, said)
    verdict_text += quoted("prototypes", fingerprint(settings), primary)
    report.verdict(verdict_text)

    at_points = {
        f: _test(f"at {fmt_pct(f)} copies", _contrast(scores, "blocks", f), runs, nulls, dict(settings, num_boot=200))
        for f in COPY_POINTS
    }
    per_sample = _per_sample(runs, seeds, scores, fraction)
    write_csv(exp_dir / "per_sample.csv", per_sample)
    _report_body(report, settings, runs, seeds, scores, tests, at_points, fraction)
    _figures(report, runs, nulls, scores, tests, seeds)
    return {
        "verdict": verdict_text,
        "answer": said,
        "primary": primary.as_dict(),
        "tests": {t.name: t.as_dict() for t in tests},
        "contrast_at_copy_fraction": {str(f): t.as_dict() for f, t in at_points.items()},
        "copy_threshold": fraction,
        "seeds": seeds,
    }


def _per_sample(runs: list[Run], seeds: list[int], scores: _Scores, fraction: float) -> dict[str, np.ndarray]:
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (
        "seed", "index", "log_p", "block_score", "quintile", "copies", "copies_at_point", "excess_at_point",
        "chance_copies", "equal_power_clock")}
    for r, sd in zip(runs, seeds, strict=True):
        t = copy_point(r, fraction)
        cols["seed"].append(np.full(r.num_train, sd))
        cols["index"].append(np.arange(r.num_train))
        cols["log_p"].append(r.train_logp)
        cols["block_score"].append(scores.blocks[id(r)])
        cols["quintile"].append(quantile_bins(scores.blocks[id(r)], 5) + 1)
        cols["copies"].append(r.copy_counts.sum(0))
        cols["copies_at_point"].append(r.copy_counts[: t + 1].sum(0))
        cols["excess_at_point"].append(excess_copies(r, t))
        cols["chance_copies"].append(scores.chance[id(r)].sum(0))
        cols["equal_power_clock"].append(scores.clock[id(r)])
    return {k: np.concatenate(v) for k, v in cols.items()}


def _report_body(report: Report, settings: dict[str, Any], runs: list[Run], seeds: list[int], scores: _Scores,
                 tests: list[NullTest], at_points: dict[float, NullTest], fraction: float) -> None:
    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}, rule exponent zipf_a={cfg['zipf_a']} "
        f"(levels {cfg.get('zipf_levels') or 'all'}); P={cfg['num_train']} unique training strings per seed; "
        f"{cfg.get('model', 'transformer')} {cfg.get('process', 'masked')} diffusion, width {cfg.get('width')}, depth "
        f"{cfg.get('depth')}, {cfg['steps']} steps; {cfg.get('eval_samples')} samples per checkpoint, sampler "
        f"'{cfg.get('sampling_reveal', 'ancestral')}'; seeds {seeds}; {len(tests[0].null)} null run sets."
    )
    report.text(
        regime_text(runs) + " Chance copies per string over the whole run, by block-frequency quintile "
        "(Q1 least prototypical): "
        + ", ".join(f"Q{q + 1} {fmt_num(v)}" for q, v in enumerate(_by_quintile(runs, scores, "chance"))) + "."
    )
    report.heading("Statistics against their null runs")
    report.text(
        f"Excess copies: copies of a training string up to the first checkpoint with {fmt_pct(fraction)} of the samples "
        "copies, minus the mean copies of held-out strings in its log p decile (the control: never trained on, so "
        "reached only by generalization, chance and over-production); Q5 - Q1: mean over the most prototypical fifth "
        "minus the least, averaged over seeds (positive: prototypical strings memorized first). Equal-power clock: "
        "the first checkpoint at which a string's copies so far reach its chance count so far + 3, against "
        "prototypicality (Spearman; never = last; negative: prototypical first). Null runs: known-answer memorizers "
        "fitted to each seed's copy-fraction and per-level validity curves that memorize every training string at the "
        "same rate (`rhmfast.knownanswers.nulls.null_runs`)"
        + (", drawing from the generalizer fitted to the seed (below)" if settings.get("nulls_over_produce") else "")
        + ". Interval: 95% two-stage bootstrap (seeds, then strings). p: "
        "two-sided Monte Carlo p against the null run sets; false positives: the rate measured on simulated run sets "
        "of known answer at these settings (benches/calibrate.py), per memorizer family; not measured at other settings."
    )
    report.text(
        f"Primary: {tests[0].name}, fixed before any run at this preset and chosen on known answers "
        "(docs/RESULTS.md): it reads every checkpoint, so it had the most power (95% at a 2x tilt, against 60% for "
        "the excess copies counted up to 5% copies, 20 effect sets at the earlier quick preset), and it held its "
        "level when each string starts being memorized at its own time, where the excess contrasts did not (they "
        "then see the few strings memorized first). Its chance count is that of a generalizer that over-produces "
        "common rules as much as the run does where it does not copy (the grammar's rules sharpened to the exponent "
        "fitted to each run's valid non-copies: " + ", ".join(f"{scores.beta[id(r)]:.2f}" for r in runs)
        + " here; 1 = the grammar), so over-production alone does not read as memorizing likely strings first. "
        "The others are shown beside it, never in its place."
    )
    key = fingerprint(settings)
    rows = []
    for t in tests:
        lo, hi = t.null_band
        rows.append([t.name, f"{t.value:+.3g} [{t.interval[0]:+.3g}, {t.interval[1]:+.3g}]",
                     f"{t.centre:+.3g} [{lo:+.3g}, {hi:+.3g}]", f"{t.p:.2g}", fmt_num(t.detectable),
                     null_cell("prototypes", key, t.name)])
    report.table(["statistic", "observed [95% CI]", "null median [95%]", "p", "detectable", "false positives"], rows)
    report.heading("Excess copies per string by quintile")
    rows = []
    excess = _by_quintile(runs, scores, "excess", fraction)
    copies = _by_quintile(runs, scores, "copies", fraction)
    for q in range(5):
        rows.append([f"Q{q + 1}", fmt_num(copies[q]), fmt_num(copies[q] - excess[q]), fmt_num(excess[q])])
    report.table(["block-frequency quintile (Q5 = most)", "copies per string", "held-out control", "excess"], rows)
    report.text("The contrast Q5 - Q1 at other copy fractions (block frequency): " + "; ".join(
        f"{t.name}: {t.value:+.3g} (null [{t.null_band[0]:+.3g}, {t.null_band[1]:+.3g}])" for t in at_points.values()
    ) + ".")


def _by_quintile(runs: list[Run], scores: _Scores, what: str, fraction: float = 0.0) -> np.ndarray:
    out = []
    for r in runs:
        q = quantile_bins(scores.blocks[id(r)], 5)
        if what == "chance":
            v = scores.chance[id(r)].sum(0)
        elif what == "copies":
            v = r.copy_counts[: copy_point(r, fraction) + 1].sum(0).astype(np.float64)
        else:
            v = excess_copies(r, copy_point(r, fraction))
        out.append([v[q == k].mean() if (q == k).any() else np.nan for k in range(5)])
    return np.nanmean(np.asarray(out), axis=0)


def _figures(report: Report, runs: list[Run], nulls: list[list[Run]], scores: _Scores, tests: list[NullTest],
             seeds: list[int]) -> None:
    fig = figure_null_tests(tests, title="Each statistic against its null runs")
    save_figure(fig, report.root / "figures/null_tests")
    report.figure("figures/null_tests", "Grey: the statistic on each null run set and their central 95%; black: "
                  "observed, with its 95% bootstrap interval.")
    def curve(rs: list[Run]) -> np.ndarray:
        return np.array([np.mean([quintile_contrast(excess_copies(r, copy_point(r, f)), scores.blocks[id(r)])
                                  for r in rs]) for f in CURVE_FRACTIONS])
    band = np.quantile(np.stack([curve(ns) for ns in nulls]), [0.025, 0.975], axis=0)
    fig = figure_band(np.asarray(CURVE_FRACTIONS) * 100, curve(runs), (band[0], band[1]),
                      ylabel="excess copies per string, Q5 - Q1", xlabel="copies so far (% of the samples)",
                      title="Prototypical minus atypical excess copies, by copy fraction")
    save_figure(fig, report.root / "figures/contrast")
    report.figure("figures/contrast", "Q5 - Q1 excess copies per string (block frequency) counted up to the first "
                  "checkpoint at which each copy fraction is reached, mean over seeds, inside the central 95% of the "
                  "null run sets at the same copy fraction (a seed that never reaches one is read at its last "
                  "checkpoint).")
    labels = [f"seed {sd}" for sd in seeds]
    last = float(max(r.steps.max() for r in runs))
    fig = figure_scatter_times([scores.blocks[id(r)] for r in runs], [scores.clock[id(r)] for r in runs], labels,
                               xlabel="block-frequency prototypicality", title="Equal-power clock",
                               never_at=last * 1.5)
    save_figure(fig, report.root / "figures/scatter")
    report.figure("figures/scatter", "Step at which each training string's copies reach chance + 3, against its "
                  "block frequency; open markers on the top line: never.")
    training_curves_figure(report, runs, labels, "figures/copies", "Copies over training")
    c0 = memorization_curves(runs[0])
    fig = figure_lines(
        runs[0].steps, {"train NLL (model bound)": c0["train_nll_mean"],
                        "held-out NLL (model bound)": c0["heldout_nll_mean"]},
        baselines={"train NLL (model bound)": c0["train_true_nll_mean"]}, baseline_label="true mean -log p(x)",
        ylabel="mean negative log-likelihood (nats)", title=f"Likelihood over training (seed {seeds[0]})",
    )
    save_figure(fig, report.root / "figures/nll")
    report.figure("figures/nll", "Mean model NLL bound on training and held-out strings (figure only: a per-string "
                  "bound from a few draws is too noisy for a per-string clock); dashed: true mean -log p(x).")
