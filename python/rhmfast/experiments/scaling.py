"""``scaling``: memorization time against training-set size (expected roughly
proportional, Favero, Sclocchi, Wyart 2025).

Memorization time, as in ``fat-tail``, by two clocks: the step at which generated
copies exceed their chance rate by ``copy_threshold``, and the step at which the
fraction of training strings the model finds likelier than the grammar exceeds the
held-out fraction by ``nll_threshold``.
The exponent is the least-squares slope of log time against log P.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import memorization_curves, memorization_time
from rhmfast.analysis.plots import figure_lines, figure_time_vs, save_figure
from rhmfast.experiments.common import fmt_pct, fmt_step, load_runs
from rhmfast.experiments.report import Report
from rhmfast.experiments.runner import RunSpec

TITLE = "Memorization time against training-set size"

DEFAULTS: dict[str, dict[str, Any]] = {
    "micro": {"sizes": [8, 16], "seeds": [0], "copy_threshold": 0.1, "nll_threshold": 0.25},
    # four runs in 15 minutes on 2 cores: 2000 steps each, evaluated from step 32 (the small
    # sets cross the likelihood clock before step 128, the shared preset's first checkpoint)
    "quick": {"sizes": [32, 64, 128, 256], "seeds": [0], "copy_threshold": 0.02, "nll_threshold": 0.25,
              "train": {"steps": 2000, "first_checkpoint": 32}},
    "paper": {"sizes": [2500, 5000, 10000, 20000], "seeds": [0, 1], "copy_threshold": 0.1, "nll_threshold": 0.25},
}


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    specs = []
    for seed in settings["seeds"]:
        for p in settings["sizes"]:  # integers >= 1 (checked with the settings)
            train = dict(settings["train"], num_train=int(p), seed=int(seed), data_seed=int(seed), unique=True)
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


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    ct, nt = float(settings["copy_threshold"]), float(settings["nll_threshold"])
    rows = []
    for spec, run in zip(specs, runs, strict=True):
        c = memorization_curves(run)
        gap = np.nan_to_num(c["nll_crossed_fraction"] - c["heldout_crossed_fraction"], nan=-1.0)
        have = len(run.steps) > 0
        rows.append({"P": spec.params["P"], "seed": spec.params["seed"], "name": spec.name,
                     "copy_time": memorization_time(run.steps, c["excess_copy_fraction"], ct) if have else np.inf,
                     "nll_time": memorization_time(run.steps, gap, nt) if have else np.inf,
                     "chance": float(c["chance_copy_fraction"][-1]) if have else np.nan,
                     "steps": run.steps, "curves": c})
    last = float(max(r["steps"].max() if len(r["steps"]) else 1 for r in rows))
    sizes = [int(p) for p in settings["sizes"]]
    copy_t = [float(np.median([r["copy_time"] for r in rows if r["P"] == p])) for p in sizes]
    nll_t = [float(np.median([r["nll_time"] for r in rows if r["P"] == p])) for p in sizes]
    # a time at the first checkpoint only says "by then" (left-censored): left out of the fit
    first = float(min(r["steps"].min() if len(r["steps"]) else np.inf for r in rows))

    def uncensored(times: list[float]) -> np.ndarray:
        t = np.array(times, float)
        return np.where(t <= first, np.nan, t)

    k_copy = fit_exponent(np.array(sizes, float), uncensored(copy_t))
    k_nll = fit_exponent(np.array(sizes, float), uncensored(nll_t))
    primary, pname, ptimes = (k_nll, "likelihood", nll_t) if np.isfinite(k_nll) else (k_copy, "copies", copy_t)
    parts = ", ".join(f"P={p}: {'<= ' if t <= first else ''}{fmt_step(t, last)}"
                      for p, t in zip(sizes, ptimes, strict=True))
    if np.isfinite(primary):
        word = ("roughly proportional" if 0.5 <= primary <= 1.5 else
                "faster than proportional" if primary > 1.5 else
                "slower than proportional" if primary > 0 else "does not grow")
        verdict = (f"memorization time against training-set size: {word}: time ~ P^{primary:.2f} "
                   f"(measured by {pname}; expected ~1); {parts}")
        if pname == "likelihood":
            verdict += f"; by copies: P^{k_copy:.2f}: " + ", ".join(
                f"P={p}: {'<= ' if t <= first else ''}{fmt_step(t, last)}" for p, t in zip(sizes, copy_t, strict=True))
        if any(t <= first for t in ptimes):
            verdict += f" (times at the first checkpoint, step {first:.0f}, are upper bounds, left out of the fit)"
    else:
        verdict = (f"memorization time against training-set size: not measurable (fewer than two sizes "
                   f"memorized by step {int(last)}); {parts}")
    report.verdict(verdict)

    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}, zipf_a={cfg['zipf_a']}; "
        f"training-set sizes {sizes}, unique strings; {cfg['steps']} steps; seeds {settings['seeds']}. "
        f"Time (copies): first step at which copies exceed their chance rate by {fmt_pct(ct)}; time "
        f"(likelihood): at which the fraction of training strings the model finds likelier than the grammar "
        f"exceeds the held-out fraction by {fmt_pct(nt)}. Medians over seeds; exponent: least-squares slope "
        f"in log-log."
    )
    report.table(["P", "chance copy fraction (final validity)", "time (copies)", "time (likelihood)"],
                 [[str(p), fmt_pct(float(np.median([r["chance"] for r in rows if r["P"] == p]))),
                   fmt_step(tc, last), fmt_step(tn, last)] for p, tc, tn in zip(sizes, copy_t, nll_t, strict=True)])
    seed0 = settings["seeds"][0]
    sel = [r for r in rows if r["seed"] == seed0 and len(r["steps"])]
    if sel:
        fig = figure_time_vs(np.array(sizes, float), {"copies": np.array(copy_t), "likelihood": np.array(nll_t)},
                             xlabel="training-set size P (log scale)", title="Memorization time against P",
                             logx=True, fit_proportional=True, never_at=last * 1.5)
        save_figure(fig, report.root / "figures/time_by_size")
        report.figure("figures/time_by_size", "Memorization time against training-set size; dashed: the "
                      "proportional fit t = c P; open markers: never.")
        fig = figure_lines({f"P={r['P']}": r["steps"] for r in sel},
                           {f"P={r['P']}": r["curves"]["reproduced_fraction"] for r in sel},
                           baselines={f"P={r['P']}": r["curves"]["baseline_reproduced_fraction"] for r in sel},
                           baseline_label="chance (no memorization, same validity)",
                           ylabel="fraction of training set reproduced so far",
                           title="Reproduction of the training set by size")
        save_figure(fig, report.root / "figures/reproduced_by_size")
        report.figure("figures/reproduced_by_size", "Fraction of the training set generated verbatim so far "
                      "(solid) against the generalization baseline (dashed).")
    return {"verdict": verdict, "sizes": sizes, "copy_time": copy_t, "likelihood_time": nll_t,
            "exponent_copies": k_copy, "exponent_likelihood": k_nll,
            "runs": [{k: v for k, v in r.items() if k not in ("steps", "curves")} for r in rows]}
