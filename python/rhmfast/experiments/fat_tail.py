"""``fat-tail``: do data sets with more atypical samples get memorized later?

Power-law rule probabilities ``k**-(1+a)`` (:func:`rhmfast.zipf`) swept over the
exponent ``a`` at every level (smaller ``a`` = heavier tail = more atypical samples;
``a = -1`` is the uniform reference), and over the level that carries the power law
(others uniform). Each run's clock is the first step (interpolated in log step) at which
its memorized mass, the copy fraction beyond the chance copies of a model that memorized
nothing at the run's validity (:class:`rhmfast.analysis.sweeps.CopyCounts`), reaches
``copy_threshold``. The verdict's statistic is Spearman rho(a, clock) within each seed,
averaged over seeds (rho < 0: heavier tails memorized later); under "the exponent does
not move the clock" the runs of a seed are exchangeable, so it is read against the
exponents permuted within seeds (every permutation, or 1999 drawn), with a bootstrap
interval (each checkpoint's samples redrawn, then seeds). "Yes" only at p <= ``alpha``
(the Monte Carlo test's exact level).
The tail-level comparison (the same statistic over the level carrying the power law)
is quoted beside it, with each grammar's entropy and spread of ``log p(x)`` (a Monte
Carlo sample of 20,000 strings from the run's grammar). Known-answer calibration:
``tests/test_known_answers_sweeps.py`` (micro) and ``benches/calibrate.py`` (quick,
docs/RESULTS.md).

Presets: ``micro`` (tests: 4 exponents, 2 seeds); ``quick`` (2 CPU cores, 15 minutes:
5 exponents in [-1, 1], 2 seeds, 10 runs of 640 steps, P = 64, 512 samples at 4
checkpoints per octave from step 192; a > 1 left out: at a = 2 chance alone makes
several percent of the samples copies; no tail levels: 2 levels x 2 seeds allow 4
permutations, which can never reach p <= 0.05); ``paper`` (7 exponents in [-1, 2], every level, 3 seeds, for a
GPU). The quick preset's real runs and their timing are in docs/RESULTS.md.

>>> settings = {"seeds": [0], "exponents": [0.5, 1.0], "tail_levels": [0], "tail_exponent": 1.0, "train": {"L": 4}}
>>> [spec.name for spec in plan(settings)]
['a0.5-all-seed0', 'a1-all-seed0', 'a1-level0-seed0']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import Run, memorization_curves
from rhmfast.analysis.plots import figure_lines, figure_null_tests, figure_time_vs, save_figure
from rhmfast.analysis.sweeps import UNMEASURABLE, CopyCounts, SweepClocks
from rhmfast.experiments.common import chance_probability, fmt_num, fmt_pct, fmt_step, load_runs
from rhmfast.experiments.rates import fingerprint, null_cell, quoted
from rhmfast.experiments.runner import RunSpec
from rhmfast.grammar import RHM
from rhmfast.report import Report
from rhmfast.stats import NullTest, answer, verdict

TITLE = "Do fat tails delay memorization?"
# the statistics read the observed runs only (their null permutes the labels within seeds)
NEEDS_NULL_RUNS = False
GRAMMAR_SAMPLE = 20_000  # strings drawn per grammar for its entropy and spread of log p

DEFAULTS: dict[str, dict[str, Any]] = {
    "micro": {"exponents": [-1.0, 0.0, 1.0, 2.0], "tail_levels": [0, 2], "tail_exponent": 1.0, "seeds": [0, 1],
              "copy_threshold": 0.1, "num_boot": 200, "alpha": 0.05},
    # P = 64, where the sweep decided (at P = 32 it did not: docs/RESULTS.md). Pilot (the
    # quick U-Net, P = 64, seed 0): the memorized mass reached 5% at step 455 with
    # uniform rules and 383 at a = 1, and nothing was memorized before step 250; so 640
    # steps, checkpoints only from step 192 (4 per octave, 512 samples each, where the
    # clock is read) and no likelihood bound (the sweep reads copies only). 10 runs of
    # 640 steps: ~7 min on 2 cores. The tail-level runs only in the paper preset (2
    # levels x 2 seeds allow 4 permutations: that comparison could never decide here).
    "quick": {"exponents": [-1.0, -0.5, 0.0, 0.5, 1.0], "tail_levels": [], "tail_exponent": 1.0,
              "seeds": [0, 1], "copy_threshold": 0.05, "num_boot": 1000, "alpha": 0.05,
              "train": {"num_train": 64, "num_heldout": 64, "steps": 640, "first_checkpoint": 192,
                        "checkpoints_per_octave": 4, "eval_samples": 512, "elbo_draws": 0}},
    "paper": {"exponents": [-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0], "tail_levels": [0, 1, 2, 3], "tail_exponent": 1.0,
              "seeds": [0, 1, 2], "copy_threshold": 0.05, "num_boot": 1000, "alpha": 0.05},
}


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    L = int(settings["train"]["L"])
    specs = []
    for seed in settings["seeds"]:
        for a in settings["exponents"]:
            train = dict(settings["train"], zipf_a=float(a), zipf_levels=[], seed=int(seed), data_seed=int(seed))
            specs.append(RunSpec(f"a{float(a):g}-all-seed{seed}", {"a": float(a), "level": "all", "seed": int(seed)}, train))
        for level in settings["tail_levels"]:
            if not 0 <= int(level) < L:
                raise ValueError(f"tail_levels must lie in [0, L={L}), got {level}")
            a = float(settings["tail_exponent"])
            train = dict(settings["train"], zipf_a=a, zipf_levels=[int(level)], seed=int(seed), data_seed=int(seed))
            specs.append(RunSpec(f"a{a:g}-level{level}-seed{seed}", {"a": a, "level": int(level), "seed": int(seed)}, train))
    return specs


# ---- compute


def _params(run: Run) -> tuple[float, Any, int]:
    """(a, level or "all", seed) of a run, from its config (the seed: the data seed, which
    a seed's runs share)."""
    cfg = run.config
    levels = cfg.get("zipf_levels") or []
    return float(cfg["zipf_a"]), (int(levels[0]) if levels else "all"), int(cfg.get("data_seed", 0))


def _sweeps(runs: list[Run], settings: dict[str, Any]) -> tuple[list[int], SweepClocks, list[int], SweepClocks | None]:
    """The exponent sweep (runs with the power law at every level) and the tail-level
    sweep (power law at one level), each with its clocks and bootstrap replicates."""
    ct, nb = float(settings["copy_threshold"]), int(settings["num_boot"])
    params = [_params(r) for r in runs]
    by_a = [i for i, p in enumerate(params) if p[1] == "all"]
    by_l = [i for i, p in enumerate(params) if p[1] != "all"]
    if len(by_a) < 2:
        raise ValueError(f"fat-tail needs at least two runs with the power law at every level, got {len(by_a)}")

    def sweep(idx: list[int], label: int) -> SweepClocks:
        return SweepClocks.of([CopyCounts.of(runs[i], chance_probability(runs[i])) for i in idx],
                              [float(params[i][label]) for i in idx], [params[i][2] for i in idx], ct,
                              num_boot=nb, seed=0)

    return by_a, sweep(by_a, 0), by_l, (sweep(by_l, 1) if len({params[i][1] for i in by_l}) >= 2 else None)


def null_tests(runs: list[Run], nulls: list[list[Run]], settings: dict[str, Any]) -> list[NullTest]:
    """rho(a, clock) within seeds against the exponents permuted within seeds (the
    verdict's), then rho(tail level, clock) when two or more levels were run; ``nulls``
    is not read (``NEEDS_NULL_RUNS``)."""
    _, sa, _, sl = _sweeps(runs, settings)
    return _tests(sa, sl, float(settings["alpha"]))


def _tests(sa: SweepClocks, sl: SweepClocks | None, alpha: float) -> list[NullTest]:
    tests = [sa.test("rho(a, memorization time)", alpha=alpha, swept="exponents")]
    if sl is not None:
        tests.append(sl.test("rho(tail level, memorization time)", alpha=alpha, swept="levels"))
    return tests


def grammar_spread(run: Run, num: int = GRAMMAR_SAMPLE) -> tuple[float, float]:
    """(entropy in nats, std of log p(x)) of the run's grammar by ``num`` strings drawn
    from it (NaN without ``grammar.json``); standard error of the entropy ~ std / sqrt(num)."""
    path = run.path / "grammar.json"
    if not path.exists():
        return float("nan"), float("nan")
    g = RHM.load(str(path))
    logp = g.log_prob(g.sample(num, seed=0))
    return float(-logp.mean()), float(logp.std())


@dataclass
class _Row:
    run: Run
    a: float
    level: Any
    seed: int
    clock: float
    chance_mass: float
    final_mass: float
    entropy: float
    logp_std: float


def _compute(runs: list[Run], settings: dict[str, Any]) -> dict[str, Any]:
    by_a, sa, by_l, sl = _sweeps(runs, settings)
    tests = _tests(sa, sl, float(settings["alpha"]))
    clocks = np.full(len(runs), np.inf)
    clocks[by_a] = sa.clocks
    if sl is not None:
        clocks[by_l] = sl.clocks
    elif by_l:
        clocks[by_l] = [CopyCounts.of(runs[i], chance_probability(runs[i])).clock(float(settings["copy_threshold"]))
                        for i in by_l]
    spread: dict[tuple[float, Any], tuple[float, float]] = {}  # the grammar depends on (a, level) only
    rows = []
    for r, c in zip(runs, clocks, strict=True):
        a, level, seed = _params(r)
        if (a, level) not in spread:
            spread[(a, level)] = grammar_spread(r)
        cc = CopyCounts.of(r, chance_probability(r))
        rows.append(_Row(r, a, level, seed, float(c), cc.chance_mass,
                         float(cc.memorized_mass()[-1]) if len(cc.steps) else float("nan"), *spread[(a, level)]))
    last = float(max(r.steps.max() if len(r.steps) else 1 for r in runs))
    return {"rows": rows, "tests": tests, "last": last}


# ---- verdict


def _median_clock(rows: list[_Row], level: Any, a: float | None = None) -> float:
    vals = [r.clock for r in rows if r.level == level and (a is None or r.a == a)]
    return float(np.median(vals)) if vals else float("nan")


def _verdicts(result: dict[str, Any], settings: dict[str, Any]) -> tuple[str, str]:
    rows, tests, last = result["rows"], result["tests"], result["last"]
    t = tests[0]
    exps = [float(a) for a in settings["exponents"]]
    parts = ", ".join(f"a={a:g}{' (uniform)' if a == -1 else ''}: {fmt_step(_median_clock(rows, 'all', a), last)}"
                      for a in exps)
    said = answer(t, below="yes", above="no, the opposite", why=UNMEASURABLE)
    verdict_text = (f"{verdict('fat tails (smaller a) delay memorization', t, said)}"
                    f"{quoted('fat-tail', fingerprint(settings), t)}; steps until the memorized mass "
                    f"reaches {fmt_pct(float(settings['copy_threshold']))} (median over seeds): {parts}")
    levels = [int(lv) for lv in settings["tail_levels"]]
    if not levels:
        return verdict_text, ""
    ta = float(settings["tail_exponent"])
    lv_parts = ", ".join(f"level {lv}: {fmt_step(_median_clock(rows, lv), last)}" for lv in levels)
    if len(tests) > 1:
        tl = tests[1]
        word = answer(tl, below="later with the power law nearer the root",
                      above="later with the power law nearer the leaves", why=UNMEASURABLE)
        verdict_lv = f"{verdict(f'tail level (power law a={ta:g} at one level, 0 = root)', tl, word)}; {lv_parts}"
    else:
        verdict_lv = f"tail level (power law a={ta:g} at one level, 0 = root): one level only: {lv_parts}"
    return verdict_text, verdict_lv


def _report_body(report: Report, result: dict[str, Any], settings: dict[str, Any]) -> None:
    rows, tests, last = result["rows"], result["tests"], result["last"]
    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}; P={cfg['num_train']} unique "
        f"training strings; {cfg['steps']} steps, {cfg.get('eval_samples')} samples per checkpoint; seeds "
        f"{settings['seeds']}. Rule probabilities proportional to k^-(1+a) (a = -1: uniform rules). Clock: first "
        f"step (interpolated in log step) at which the memorized mass, copy fraction - q with q the chance "
        f"copy fraction of a model that memorized nothing at the run's validity, reaches "
        f"{fmt_pct(float(settings['copy_threshold']))}. Statistic: Spearman rho(swept parameter, clock) within each "
        f"seed, mean over seeds (never = last, tied); null: the parameter permuted within seeds; interval: 95% "
        f"bootstrap (each checkpoint's samples redrawn, then seeds). Entropy and std of log p(x): "
        f"{GRAMMAR_SAMPLE} strings drawn from each grammar."
    )
    table = []
    for t in tests:
        lo, hi = t.null_band
        table.append([t.name, f"{t.value:+.2f} [{t.interval[0]:+.2f}, {t.interval[1]:+.2f}]",
                      f"{t.centre:+.2f} [{lo:+.2f}, {hi:+.2f}]", f"{t.p:.2g}",
                      null_cell("fat-tail", fingerprint(settings), t.name)])
    report.table(["statistic", "observed [95% CI]", "null median [95%]", "p", "false positives"], table)

    def grammar_rows(sel: list[_Row], key: str) -> list[list[str]]:
        out = []
        for k in dict.fromkeys(getattr(r, key) for r in sel):
            mine = [r for r in sel if getattr(r, key) == k]
            out.append([f"{k:g}" if isinstance(k, float) else str(k), fmt_num(mine[0].entropy),
                        fmt_num(mine[0].logp_std), fmt_num(float(np.median([r.chance_mass for r in mine]))),
                        fmt_step(float(np.median([r.clock for r in mine])), last),
                        fmt_pct(float(np.median([r.final_mass for r in mine])))])
        return out

    head = ["entropy (nats)", "std log p", "chance mass", "clock (median)", "final mass"]
    report.heading("Memorization time against the exponent (power law at every level)")
    report.table(["a"] + head, grammar_rows([r for r in rows if r.level == "all"], "a"))
    lv = [r for r in rows if r.level != "all"]
    if lv:
        report.heading(f"Memorization time against the level carrying the power law (a = "
                       f"{float(settings['tail_exponent']):g})")
        report.table(["level (0 = root)"] + head, grammar_rows(lv, "level"))


# ---- figures


def _figures(report: Report, result: dict[str, Any], settings: dict[str, Any]) -> None:
    rows, tests, last = result["rows"], result["tests"], result["last"]
    fig = figure_null_tests(tests, title="Sweeps against their label permutations")
    save_figure(fig, report.root / "figures/null_tests")
    report.figure("figures/null_tests", "Grey: rho under each permutation of the swept parameter within seeds and "
                  "their central 95%; black: observed, with its 95% bootstrap interval.")
    exps = [float(a) for a in settings["exponents"]]
    fig = figure_time_vs(np.array(exps), {"memorized-mass clock (median over seeds)":
                                          np.array([_median_clock(rows, "all", a) for a in exps])},
                         xlabel="rule exponent a (smaller = heavier tail; -1 = uniform)",
                         title="Memorization time against the exponent", never_at=last * 1.5)
    save_figure(fig, report.root / "figures/time_by_exponent")
    report.figure("figures/time_by_exponent", "Memorization time against the exponent; open markers: never.")
    seed0 = rows[0].seed
    by_a = [r for r in rows if r.level == "all" and r.seed == seed0 and len(r.run.steps)]
    if by_a:
        curves = {f"a={r.a:g}": memorization_curves(r.run) for r in by_a}
        fig = figure_lines({f"a={r.a:g}": r.run.steps for r in by_a},
                           {k: c["copy_fraction"] for k, c in curves.items()},
                           baselines={k: c["chance_copy_fraction"] for k, c in curves.items()},
                           baseline_label="chance (no memorization, same validity)",
                           ylabel="fraction of generated samples that copy",
                           title=f"Copies by rule exponent a (seed {seed0})")
        save_figure(fig, report.root / "figures/copies_by_exponent")
        report.figure("figures/copies_by_exponent", "Copy fraction over training for each exponent (solid) and "
                      "its chance rate (dashed).")
    levels = [int(lv) for lv in settings["tail_levels"]]
    if levels:
        fig = figure_time_vs(np.array(levels, float), {"memorized-mass clock (median over seeds)":
                                                       np.array([_median_clock(rows, lv) for lv in levels])},
                             xlabel="level carrying the power law (0 = root)",
                             title="Memorization time against the tail level", never_at=last * 1.5)
        save_figure(fig, report.root / "figures/time_by_level")
        report.figure("figures/time_by_level", "Memorization time against the tail level; open markers: never.")


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    result = _compute(runs, settings)
    verdict, verdict_lv = _verdicts(result, settings)
    report.verdict(verdict)
    if verdict_lv:
        report.verdict(verdict_lv)
    _report_body(report, result, settings)
    _figures(report, result, settings)
    tests = result["tests"]
    exps = [float(a) for a in settings["exponents"]]
    rows = result["rows"]
    return {
        "verdict": verdict,
        "verdict_level": verdict_lv,
        "primary": tests[0].as_dict(),
        "tests": {t.name: t.as_dict() for t in tests},
        "exponents": exps,
        "clock_by_exponent": [_median_clock(rows, "all", a) for a in exps],
        "tail_levels": [int(lv) for lv in settings["tail_levels"]],
        "clock_by_level": [_median_clock(rows, int(lv)) for lv in settings["tail_levels"]],
        "runs": [{"name": sp.name, **sp.params, "clock": r.clock, "chance_mass": r.chance_mass,
                  "final_mass": r.final_mass, "entropy": r.entropy, "logp_std": r.logp_std}
                 for sp, r in zip(specs, rows, strict=True)],
    }
