"""``fat-tail``: do data sets with more atypical samples get memorized later?

Power-law rule probabilities ``k**-(1+a)`` swept over the exponent ``a`` at every level
(smaller ``a`` = heavier tail = more atypical samples; ``a = 0`` is the uniform
reference), and over the level that carries the power law (others uniform).
Memorization time: the step at which generated copies exceed their chance rate by
``copy_threshold``, and the step at which the fraction of training strings the model
finds likelier than the grammar exceeds the held-out fraction by ``nll_threshold``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import (
    memorization_curves,
    memorization_time,
    spearman,
    spearman_permutation_p,
)
from rhmfast.analysis.plots import figure_lines, figure_time_vs, save_figure
from rhmfast.experiments.common import fmt_pct, fmt_step, load_runs
from rhmfast.experiments.report import Report
from rhmfast.experiments.runner import RunSpec

TITLE = "Do fat tails delay memorization?"

DEFAULTS: dict[str, dict[str, Any]] = {
    "micro": {"exponents": [0.5, 2.0], "tail_levels": [0, 2], "tail_exponent": 1.0, "seeds": [0],
              "copy_threshold": 0.1, "nll_threshold": 0.25},
    # five runs in 15 minutes on 2 cores: 1600 steps each (the quick U-Net's copies pass
    # chance by 2% within ~700 steps); a 2% copy threshold
    "quick": {"exponents": [0.5, 1.0, 2.0], "tail_levels": [0, 3], "tail_exponent": 1.0, "seeds": [0],
              "copy_threshold": 0.02, "nll_threshold": 0.25, "train": {"steps": 1600}},
    "paper": {"exponents": [0.0, 0.5, 1.0, 1.5, 2.0], "tail_levels": [0, 1, 2, 3], "tail_exponent": 1.0,
              "seeds": [0, 1, 2], "copy_threshold": 0.1, "nll_threshold": 0.25},
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


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    ct, nt = float(settings["copy_threshold"]), float(settings["nll_threshold"])
    rows = []
    for spec, run in zip(specs, runs, strict=True):
        c = memorization_curves(run)
        gap = c["nll_crossed_fraction"] - c["heldout_crossed_fraction"]
        rows.append({
            "name": spec.name, **spec.params,
            "copy_time": memorization_time(run.steps, c["excess_copy_fraction"], ct) if len(run.steps) else np.inf,
            # the raw clock (copies, chance not subtracted), quoted beside the corrected one
            "raw_copy_time": memorization_time(run.steps, c["copy_fraction"], ct) if len(run.steps) else np.inf,
            "nll_time": memorization_time(run.steps, np.nan_to_num(gap, nan=-1.0), nt) if len(run.steps) else np.inf,
            "chance": float(c["chance_copy_fraction"][-1]) if len(run.steps) else np.nan,
            "final_copy": float(c["copy_fraction"][-1]) if len(run.steps) else np.nan,
            "steps": run.steps, "curves": c,
        })
    last = float(max(r["steps"].max() if len(r["steps"]) else 1 for r in rows))

    def agg(level: Any, a: float, key: str) -> float:
        vals = [r[key] for r in rows if r["level"] == level and r["a"] == a]
        return _median(vals)

    exps = [float(a) for a in settings["exponents"]]
    levels = [int(lv) for lv in settings["tail_levels"]]
    ta = float(settings["tail_exponent"])
    copy_by_a = [agg("all", a, "copy_time") for a in exps]
    nll_by_a = [agg("all", a, "nll_time") for a in exps]
    raw_by_a = [agg("all", a, "raw_copy_time") for a in exps]
    copy_by_level = [agg(lv, ta, "copy_time") for lv in levels]
    nll_by_level = [agg(lv, ta, "nll_time") for lv in levels]
    raw_by_level = [agg(lv, ta, "raw_copy_time") for lv in levels]

    pl = [(a, t) for a, t in zip(exps, copy_by_a, strict=True) if a > 0]
    rho_a = spearman(np.array([a for a, _ in pl]), np.array([t for _, t in pl])) if len(pl) >= 2 else float("nan")
    parts = ", ".join(f"a={a:g}{' (uniform)' if a == 0 else ''}: {fmt_step(t, last)}"
                      for a, t in zip(exps, copy_by_a, strict=True))
    if np.isnan(rho_a):
        word = ("not measurable (fewer than two exponents a > 0 memorized)" if len(pl) >= 2
                else "not measurable (the sweep needs two exponents a > 0)")
    elif rho_a < 0:
        word = "yes"
    elif rho_a > 0:
        word = "no, the opposite"
    else:
        word = "no trend"
    # a sweep of a few exponents: quote how often a random ordering does as well
    p_a = (spearman_permutation_p(np.array([a for a, _ in pl]), np.array([t for _, t in pl]))
           if len(pl) >= 2 else float("nan"))
    p_txt = f", exact permutation p = {p_a:.2g} (one-sided, {len(pl)} exponents)" if np.isfinite(p_a) else ""
    verdict = (f"fat tails (smaller a) delay memorization: {word}: Spearman rho(a, memorization time) = "
               f"{rho_a:+.2f} over a > 0{p_txt}; steps until copies exceed chance by {fmt_pct(ct)}: {parts}")
    # the likelihood clock beside it: it can disagree (a heavy tail spreads p(x) thin, so the
    # model overtakes the grammar's likelihood on rare strings early, before copying them)
    pn = [(a, t) for a, t in zip(exps, nll_by_a, strict=True) if a > 0]
    rho_n = spearman(np.array([a for a, _ in pn]), np.array([t for _, t in pn])) if len(pn) >= 2 else float("nan")
    if np.isfinite(rho_n):
        verdict += (f"; by likelihood (training strings likelier under the model than the grammar, beyond "
                    f"held-out, by {fmt_pct(nt)}): rho = {rho_n:+.2f}: "
                    + ", ".join(f"a={a:g}: {fmt_step(t, last)}" for a, t in zip(exps, nll_by_a, strict=True)))
    verdict += (f"; raw clock (steps until {fmt_pct(ct)} of samples are copies, chance not subtracted): "
                + ", ".join(f"a={a:g}: {fmt_step(t, last)}" for a, t in zip(exps, raw_by_a, strict=True)))
    report.verdict(verdict)
    lv_parts = ", ".join(f"level {lv}: {fmt_step(t, last)}" for lv, t in zip(levels, copy_by_level, strict=True))
    lv_parts += "; by likelihood " + ", ".join(
        f"level {lv}: {fmt_step(t, last)}" for lv, t in zip(levels, nll_by_level, strict=True))
    fin = [(lv, t) for lv, t in zip(levels, copy_by_level, strict=True) if np.isfinite(t)]
    if levels:
        if len(fin) == len(levels) and len(levels) >= 2:
            latest = max(fin, key=lambda p: p[1])[0]
            lv_word = f"latest with the power law at level {latest} (0 = root)"
        elif fin and len(fin) < len(levels):
            never = [lv for lv, t in zip(levels, copy_by_level, strict=True) if not np.isfinite(t)]
            lv_word = f"latest (never reached) with the power law at level(s) {never} (0 = root)"
        else:
            lv_word = "not measurable"
        verdict_lv = f"tail level: memorization {lv_word}: power law a={ta:g} at one level only, {lv_parts}"
        report.verdict(verdict_lv)
    else:
        verdict_lv = ""

    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}; P={cfg['num_train']} unique "
        f"training strings; {cfg['steps']} steps; seeds {settings['seeds']}. Rule probabilities proportional "
        f"to k^-(1+a) (a = 0: uniform rules, no power law). Memorization time: first step (interpolated in log step) at which the "
        f"copy fraction exceeds its chance rate (a model that memorized nothing, at the model's validity f: "
        f"f times the sum of p(x) over the training set) "
        f"by {fmt_pct(ct)}; likelihood time: at which the fraction of training strings the model finds likelier "
        f"than the grammar exceeds the held-out fraction by {fmt_pct(nt)}; raw time: at which the copy fraction "
        f"itself reaches {fmt_pct(ct)} (chance not subtracted). Medians over seeds."
    )
    report.heading("Memorization time against the exponent (power law at every level)")
    report.table(["a", "chance copy fraction", "time (copies beyond chance)", "time (raw copies)",
                  "time (likelihood)", "final copy fraction"],
                 [[f"{a:g}", fmt_pct(agg("all", a, "chance")), fmt_step(tc, last), fmt_step(tr, last),
                   fmt_step(tn, last), fmt_pct(agg("all", a, "final_copy"))]
                  for a, tc, tr, tn in zip(exps, copy_by_a, raw_by_a, nll_by_a, strict=True)])
    if levels:
        report.heading(f"Memorization time against the level carrying the power law (a = {ta:g})")
        report.table(["level (0 = root)", "chance copy fraction", "time (copies beyond chance)",
                      "time (raw copies)", "time (likelihood)", "final copy fraction"],
                     [[str(lv), fmt_pct(agg(lv, ta, "chance")), fmt_step(tc, last), fmt_step(tr, last),
                       fmt_step(tn, last), fmt_pct(agg(lv, ta, "final_copy"))]
                      for lv, tc, tr, tn in zip(levels, copy_by_level, raw_by_level, nll_by_level, strict=True)])

    first_seed = settings["seeds"][0]
    by_a = [r for r in rows if r["level"] == "all" and r["seed"] == first_seed]
    if by_a and any(len(r["steps"]) for r in by_a):
        fig = figure_lines({f"a={r['a']:g}": r["steps"] for r in by_a},
                           {f"a={r['a']:g}": r["curves"]["copy_fraction"] for r in by_a},
                           baselines={f"a={r['a']:g}": r["curves"]["chance_copy_fraction"] for r in by_a},
                           baseline_label="chance (no memorization, same validity)",
                           ylabel="fraction of generated samples that copy", title="Copies by rule exponent a")
        save_figure(fig, report.root / "figures/copies_by_exponent")
        report.figure("figures/copies_by_exponent", "Copy fraction over training for each exponent (solid) "
                      "and its chance rate (dashed).")
        fig = figure_time_vs(np.array(exps), {"copies": np.array(copy_by_a), "likelihood": np.array(nll_by_a)},
                             xlabel="rule exponent a (smaller = heavier tail; 0 = uniform)",
                             title="Memorization time against the exponent", never_at=last * 1.5)
        save_figure(fig, report.root / "figures/time_by_exponent")
        report.figure("figures/time_by_exponent", "Memorization time against the exponent; open markers: never.")
    by_l = [r for r in rows if r["level"] != "all" and r["seed"] == first_seed]
    if by_l and any(len(r["steps"]) for r in by_l):
        fig = figure_lines({f"level {r['level']}": r["steps"] for r in by_l},
                           {f"level {r['level']}": r["curves"]["copy_fraction"] for r in by_l},
                           baselines={f"level {r['level']}": r["curves"]["chance_copy_fraction"] for r in by_l},
                           baseline_label="chance (no memorization, same validity)",
                           ylabel="fraction of generated samples that copy",
                           title=f"Copies by the level carrying the power law (a = {ta:g})")
        save_figure(fig, report.root / "figures/copies_by_level")
        report.figure("figures/copies_by_level", "Copy fraction over training by tail level (solid), chance (dashed).")
        fig = figure_time_vs(np.array(levels, float), {"copies": np.array(copy_by_level),
                                                       "likelihood": np.array(nll_by_level)},
                             xlabel="level carrying the power law (0 = root)",
                             title="Memorization time against the tail level", never_at=last * 1.5)
        save_figure(fig, report.root / "figures/time_by_level")
        report.figure("figures/time_by_level", "Memorization time against the tail level; open markers: never.")

    return {
        "verdict": verdict,
        "verdict_level": verdict_lv,
        "spearman_exponent_time": rho_a,
        "permutation_p_exponent_time": p_a,
        "spearman_exponent_likelihood_time": rho_n,
        "exponents": exps,
        "copy_time_by_exponent": copy_by_a,
        "likelihood_time_by_exponent": nll_by_a,
        "raw_copy_time_by_exponent": raw_by_a,
        "tail_levels": levels,
        "copy_time_by_level": copy_by_level,
        "likelihood_time_by_level": nll_by_level,
        "raw_copy_time_by_level": raw_by_level,
        "runs": [{k: v for k, v in r.items() if k not in ("steps", "curves")} for r in rows],
    }
