"""``scaling``: does memorization time grow with training-set size (expected roughly
proportional, Favero, Sclocchi, Wyart 2025)?

One unique training set per size ``P`` and seed. Each run's clock is the first step
(interpolated in log step) at which its memorized mass, the copy fraction beyond the
chance copies of a model that memorized nothing at the run's validity
(:class:`rhmfast.analysis.sweeps.CopyCounts`), reaches ``copy_threshold``. The
verdict's statistic is Spearman rho(P, clock) within each seed, averaged over seeds;
under "the size does not move the clock" the runs of a seed are exchangeable, so it is
read against every permutation of the sizes within seeds (or 1999 drawn ones), with a
bootstrap interval (each checkpoint's samples redrawn, then seeds). Beside it: the
exponent, the least-squares slope of log clock against log P over all runs, with its
bootstrap interval, and whether it is consistent with 1. Known-answer calibration:
``tests/test_known_answers_sweeps.py`` (micro) and ``benches/calibrate.py`` (quick,
docs/RESULTS.md).

Presets: ``micro`` (the pipeline tests: 2 sizes, 1 seed, too few permutations to decide); ``quick``
(2 CPU cores, 15 minutes: 4 sizes P = 16-128 x 2 seeds = 8 runs of 100 + 8 P steps,
512 samples at 4 checkpoints per octave; the study's Zipf a = 1);
``paper`` (the study's sizes, for a GPU). The quick preset's real runs and their
timing are in docs/RESULTS.md. "Yes" only at p <= ``alpha`` (the Monte Carlo test's exact
level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import Run, memorization_curves
from rhmfast.analysis.plots import figure_lines, figure_null_tests, figure_time_vs, save_figure
from rhmfast.analysis.sweeps import UNMEASURABLE, CopyCounts, SweepClocks
from rhmfast.experiments.common import chance_probability, fmt_num, fmt_pct, fmt_step, load_runs
from rhmfast.experiments.rates import fingerprint, null_cell, quoted
from rhmfast.experiments.runner import RunSpec
from rhmfast.report import Report
from rhmfast.stats import NullTest, answer, verdict

TITLE = "Memorization time against training-set size"
# the statistic reads the observed runs only (its null permutes the sizes within seeds)
NEEDS_NULL_RUNS = False

DEFAULTS: dict[str, dict[str, Any]] = {
    # two runs: the pipeline tests' preset (a decidable micro sweep, 4 sizes x 2 seeds, is
    # what tests/test_known_answers_sweeps.py and the stand-in verdict test configure)
    "micro": {"sizes": [8, 16], "seeds": [0], "copy_threshold": 0.1, "num_boot": 200, "alpha": 0.05},
    # The study's tail (Zipf a = 1, the quick base) and P up to 128, as the other quick
    # presets. Pilot (the quick U-Net at a = 1): the memorized mass reached 5% at steps
    # 383-399 for P = 64 (fat-tail) and 753-829 for P = 128 (prototypes), ~6 steps per
    # string; so each run trains 100 + 8 P steps (228 for P = 16 ... 1124 for P = 128),
    # 4650 steps in all (~5 min on 2 cores), from checkpoint 32, 4 per octave, 512
    # samples, no likelihood bound (the sweep reads copies only).
    "quick": {"sizes": [16, 32, 64, 128], "seeds": [0, 1], "copy_threshold": 0.05, "num_boot": 1000,
              "alpha": 0.05, "steps_per_string": 8,
              "train": {"steps": 100, "first_checkpoint": 32, "checkpoints_per_octave": 4, "eval_samples": 512,
                        "elbo_draws": 0}},
    "paper": {"sizes": [2500, 5000, 10000, 20000], "seeds": [0, 1], "copy_threshold": 0.05, "num_boot": 1000,
              "alpha": 0.05},
}


def run_steps(settings: dict[str, Any], size: int) -> int:
    """Training steps of the run of ``size`` strings: ``train.steps``, plus
    ``steps_per_string * size`` when set (memorization time grows with P, so a fixed
    budget would either waste the small runs' steps or cut the large runs' clocks).

    >>> run_steps({"train": {"steps": 100}, "steps_per_string": 8}, 64)
    612
    """
    return int(settings["train"]["steps"]) + int(settings.get("steps_per_string", 0)) * int(size)


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    specs = []
    for seed in settings["seeds"]:
        for p in settings["sizes"]:  # integers >= 1 (checked with the settings)
            train = dict(settings["train"], num_train=int(p), seed=int(seed), data_seed=int(seed), unique=True,
                         steps=run_steps(settings, int(p)))
            specs.append(RunSpec(f"P{int(p)}-seed{seed}", {"P": int(p), "seed": int(seed)}, train))
    return specs


def fit_exponent(sizes: np.ndarray, times: np.ndarray) -> float:
    """Least-squares slope of log time against log size over finite times (NaN if < 2).

    >>> round(fit_exponent(np.array([10.0, 20.0, 40.0]), np.array([5.0, 10.0, 20.0])), 6)
    1.0
    """
    sizes = np.asarray(sizes, np.float64)
    times = np.asarray(times, np.float64)
    fin = np.isfinite(times) & (times > 0)
    if len(np.unique(sizes[fin])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes[fin]), np.log(times[fin]), 1)[0])


def sweep(runs: list[Run], settings: dict[str, Any]) -> SweepClocks:
    """The runs' clocks (labels: P; groups: seeds) and their bootstrap replicates."""
    counts = [CopyCounts.of(r, chance_probability(r)) for r in runs]
    sizes = [int(r.num_train) for r in runs]
    # the group is the data seed (a seed's runs share it; their sampling seeds may differ)
    seeds = [int(r.config.get("data_seed", 0)) for r in runs]
    return SweepClocks.of(counts, sizes, seeds, float(settings["copy_threshold"]),
                          num_boot=int(settings["num_boot"]), seed=0)


def null_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> list[NullTest]:
    """rho(P, clock) within seeds against the size permutations within seeds (the
    verdict's); ``nulls`` is not read (``NEEDS_NULL_RUNS``)."""
    return [sweep(runs, settings).test("rho(P, memorization time)", alpha=float(settings["alpha"]), swept="sizes")]


def _censored_exponent(first: float) -> Any:
    # a clock at the first checkpoint only says "by then" (left-censored): left out of the fit
    def stat(labels: np.ndarray, clocks: np.ndarray, groups: np.ndarray) -> float:
        return fit_exponent(labels, np.where(clocks <= first, np.nan, clocks))
    return stat


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    ct = float(settings["copy_threshold"])
    sw = sweep(runs, settings)
    test = sw.test("rho(P, memorization time)", alpha=float(settings["alpha"]), swept="sizes")
    first = float(min(r.steps.min() if len(r.steps) else np.inf for r in runs))
    last = float(max(r.steps.max() if len(r.steps) else 1 for r in runs))
    expo_stat = _censored_exponent(first)
    exponent = expo_stat(sw.labels, sw.clocks, sw.groups)
    expo_ci = sw.interval(expo_stat)
    verdict = _verdict(test, exponent, expo_ci, fingerprint(settings))
    report.verdict(verdict)
    sizes = [int(p) for p in settings["sizes"]]
    by_size = {p: [float(c) for c, lab in zip(sw.clocks, sw.labels, strict=True) if lab == p] for p in sizes}
    _report_body(report, settings, runs, sw, test, by_size, first, last, exponent, expo_ci)
    _figures(report, runs, sw, test, sizes, by_size, last)
    return {"verdict": verdict, "primary": test.as_dict(), "sizes": sizes, "copy_threshold": ct,
            "exponent": exponent, "exponent_interval": list(expo_ci),
            "clock_by_size": {str(p): v for p, v in by_size.items()},
            "runs": [{"name": sp.name, **sp.params, "clock": float(c)}
                     for sp, c in zip(specs, sw.clocks, strict=True)]}


def _verdict(test: NullTest, exponent: float, expo_ci: tuple[float, float], key: str) -> str:
    head = "memorization time grows with training-set size"
    said = answer(test, below="no, the opposite (larger sets memorized sooner)", above="yes", why=UNMEASURABLE)
    if np.isfinite(exponent):
        lo, hi = expo_ci
        consistent = ("consistent with 1" if lo <= 1 <= hi else "above 1" if lo > 1 else "below 1") \
            if np.isfinite(lo) else "no interval"
        expo = f"time ~ P^{exponent:.2f} [{lo:.2f}, {hi:.2f}] ({consistent}; expected ~1)"
    else:
        expo = "exponent not measurable (fewer than two sizes with an uncensored time)"
    return f"{verdict(head, test, said)}{quoted('scaling', key, test)}; {expo}"


def _report_body(report: Report, settings: dict[str, Any], runs: list[Run], sw: SweepClocks, test: NullTest,
                 by_size: dict[int, list[float]], first: float, last: float, exponent: float,
                 expo_ci: tuple[float, float]) -> None:
    cfg = settings["train"]
    ct = float(settings["copy_threshold"])
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}, zipf_a={cfg['zipf_a']}; "
        f"training-set sizes {sorted(by_size)}, unique strings; "
        + ", ".join(f"{run_steps(settings, p)}" for p in sorted(by_size)) + f" steps; {cfg.get('eval_samples')} "
        f"samples per checkpoint; seeds {settings['seeds']}. Clock: first step (interpolated in log step) at which "
        f"the memorized mass, copy fraction - q with q the chance copy fraction of a model that "
        f"memorized nothing at the run's validity, reaches {fmt_pct(ct)}. Statistic: Spearman rho(P, clock) "
        f"within each seed, mean over seeds (never = last, tied); null: the sizes permuted within seeds "
        f"({len(test.null)} permutations); interval: 95% bootstrap (each checkpoint's samples redrawn, then seeds). "
        f"Exponent: least-squares slope of log clock against log P over all runs (clocks at the first checkpoint, "
        f"step {first:.0f}, are upper bounds, left out)."
    )
    lo, hi = test.null_band
    report.table(["statistic", "observed [95% CI]", "null median [95%]", "p", "false positives"],
                 [[test.name, f"{test.value:+.2f} [{test.interval[0]:+.2f}, {test.interval[1]:+.2f}]",
                   f"{test.centre:+.2f} [{lo:+.2f}, {hi:+.2f}]", f"{test.p:.2g}",
                   null_cell("scaling", fingerprint(settings), test.name)],
                  ["exponent (log clock vs log P)", f"{exponent:.2f} [{expo_ci[0]:.2f}, {expo_ci[1]:.2f}]",
                   "1 (proportional)", "", ""]])
    rows = []
    for r, c in zip(runs, sw.clocks, strict=True):
        cc = CopyCounts.of(r, chance_probability(r))
        rows.append([str(r.num_train), str(r.config.get("data_seed", 0)), fmt_num(cc.chance_mass),
                     f"{'<= ' if c <= first else ''}{fmt_step(float(c), last)}",
                     fmt_pct(float(cc.memorized_mass()[-1])) if len(cc.steps) else "n/a"])
    report.heading("Runs")
    report.table(["P", "seed", "chance mass sum p(x)", f"clock (mass {fmt_pct(ct)})", "final memorized mass"], rows)


def _figures(report: Report, runs: list[Run], sw: SweepClocks, test: NullTest, sizes: list[int],
             by_size: dict[int, list[float]], last: float) -> None:
    fig = figure_null_tests([test], title="rho(P, memorization time) against the size permutations")
    save_figure(fig, report.root / "figures/null_tests")
    report.figure("figures/null_tests", "Grey: rho under each permutation of the sizes within seeds and their "
                  "central 95%; black: observed, with its 95% bootstrap interval.")
    med = np.array([float(np.median(by_size[p])) for p in sizes])
    fig = figure_time_vs(np.array(sizes, float), {"memorized-mass clock (median over seeds)": med},
                         xlabel="training-set size P (log scale)", title="Memorization time against P",
                         logx=True, fit_proportional=True, never_at=last * 1.5)
    save_figure(fig, report.root / "figures/time_by_size")
    report.figure("figures/time_by_size", "Memorization time against training-set size; dashed: the proportional "
                  "fit t = c P; open markers: never.")
    seed0 = int(sw.groups[0])
    sel = [r for r, g in zip(runs, sw.groups, strict=True) if g == seed0 and len(r.steps)]
    if sel:
        curves = {f"P={r.num_train}": memorization_curves(r) for r in sel}
        fig = figure_lines({f"P={r.num_train}": r.steps for r in sel},
                           {k: c["copy_fraction"] for k, c in curves.items()},
                           baselines={k: c["chance_copy_fraction"] for k, c in curves.items()},
                           baseline_label="chance (no memorization, same validity)",
                           ylabel="fraction of generated samples that copy", title=f"Copies by size (seed {seed0})")
        save_figure(fig, report.root / "figures/copies_by_size")
        report.figure("figures/copies_by_size", "Copy fraction over training for each size (solid) and its chance "
                      "rate (dashed).")
