"""``slop``: is there a window of partial memorization, where common blocks are
over-produced while few whole samples are copies?

Per checkpoint and level: the generated frequency of aligned blocks against their
training-set frequency and exact grammar probability; the common-block ratio (the
generated mass on the most probable tenth of the training blocks over their grammar
mass, among the generated blocks the grammar knows); the window of checkpoints where it
exceeds ``ratio_min`` by more than sampling noise (z-score >= ``z_min``) while copies
exceed their chance rate by less than ``copy_max``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import (
    memorization_curves,
    overproduction,
    overproduction_curve,
    partial_memorization_window,
)
from rhmfast.analysis.plots import figure_block_frequencies, figure_overproduction, save_figure
from rhmfast.experiments.common import (
    fmt_pct,
    fmt_step,
    grammar_block_probs,
    load_runs,
    training_curves_figure,
)
from rhmfast.experiments.report import Report
from rhmfast.experiments.runner import RunSpec

TITLE = "Partial memorization: is slop over-produced before whole samples are copied?"

DEFAULTS: dict[str, dict[str, Any]] = {
    "micro": {"seeds": [0], "ratio_min": 1.1, "z_min": 3.0, "copy_max": 0.05, "common_fraction": 0.1, "top_blocks": 8},
    "quick": {"seeds": [0, 1], "ratio_min": 1.1, "z_min": 3.0, "copy_max": 0.05, "common_fraction": 0.1, "top_blocks": 10},
    "paper": {"seeds": [0, 1, 2], "ratio_min": 1.1, "z_min": 3.0, "copy_max": 0.05, "common_fraction": 0.1, "top_blocks": 10},
}


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    return [
        RunSpec(f"seed{seed}", {"seed": int(seed)}, dict(settings["train"], seed=int(seed), data_seed=int(seed)))
        for seed in settings["seeds"]
    ]


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    s, L = int(settings["train"]["s"]), int(settings["train"]["L"])
    levels = list(range(1, L + 1))
    rmin, cmax, cf = float(settings["ratio_min"]), float(settings["copy_max"]), float(settings["common_fraction"])
    zmin = float(settings["z_min"])
    per_run: list[dict[str, Any]] = []
    for spec, run in zip(specs, runs, strict=True):
        gp = grammar_block_probs(run)
        curves = memorization_curves(run)
        over = {lv: overproduction_curve(run, s, lv, grammar_probs=gp, common_fraction=cf) for lv in levels}
        # per level, the ratio where the over-production is more than sampling noise
        sig = {lv: np.where(over[lv]["common_z"] >= zmin, over[lv]["common_ratio_known"], np.nan) for lv in levels}
        ratio_max = (np.fmax.reduce(np.stack([sig[lv] for lv in levels]), axis=0)
                     if len(run.steps) else np.zeros(0))
        window = partial_memorization_window(run.steps, ratio_max, curves["excess_copy_fraction"],
                                             ratio_min=rmin, copy_max=cmax) if len(run.steps) else None
        per_run.append({"spec": spec, "run": run, "grammar": gp is not None, "gp": gp, "curves": curves, "over": over,
                        "sig": sig, "ratio_max": ratio_max, "window": window})

    first = per_run[0]
    run, curves, over, sig = first["run"], first["curves"], first["over"], first["sig"]
    yard = "exact grammar probability" if first["grammar"] else "training-set frequency"
    ratios = {lv: np.nan_to_num(over[lv]["common_ratio_known"], nan=-np.inf) for lv in levels}  # NaN: no known block
    peak = {lv: (float(ratios[lv].max()) if np.isfinite(ratios[lv]).any() else np.nan) for lv in levels}
    peak_step = {lv: (float(run.steps[int(ratios[lv].argmax())]) if np.isfinite(peak[lv]) else np.nan)
                 for lv in levels}
    peak_z = {lv: (float(over[lv]["common_z"][int(ratios[lv].argmax())]) if np.isfinite(peak[lv]) else np.nan)
              for lv in levels}
    windows = [p["window"] for p in per_run]
    table_step: int | None
    if first["window"] is not None:
        a, b = first["window"]
        sel = (run.steps >= a) & (run.steps <= b)
        sig_r = {lv: np.nan_to_num(sig[lv], nan=-np.inf) for lv in levels}
        lv_best = max(levels, key=lambda lv: sig_r[lv][sel].max())
        i_best = int(np.flatnonzero(sel)[sig_r[lv_best][sel].argmax()])
        verdict = (
            f"partial memorization window: steps {a:.0f}-{b:.0f}: common level-{lv_best} blocks over-produced "
            f"x{over[lv_best]['common_ratio_known'][i_best]:.2f} (against {yard}, z = "
            f"{over[lv_best]['common_z'][i_best]:.1f}) at step {run.steps[i_best]} while "
            f"copies exceed chance by only {fmt_pct(curves['excess_copy_fraction'][i_best])} "
            f"(copies {fmt_pct(curves['copy_fraction'][i_best])}, chance {fmt_pct(curves['chance_copy_fraction'][i_best])})"
        )
        table_step = int(run.steps[i_best])
        table_level = lv_best
    else:
        best = max(levels, key=lambda lv: peak[lv] if np.isfinite(peak[lv]) else -np.inf)
        verdict = (
            f"partial memorization window: none found (no checkpoint with common-block ratio >= {rmin:g} at "
            f"z >= {zmin:g} and excess copies < {fmt_pct(cmax)}); peak common-block ratio x{peak[best]:.2f} at "
            f"level {best}, step {fmt_step(peak_step[best])} (z = {peak_z[best]:.1f})"
        )
        table_step = int(peak_step[best]) if np.isfinite(peak_step[best]) else None
        table_level = best
    if len(per_run) > 1:
        found = sum(w is not None for w in windows)
        verdict += f"; window found in {found} of {len(per_run)} seeds"
    report.verdict(verdict)

    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}, zipf_a={cfg['zipf_a']}; "
        f"P={cfg['num_train']} unique training strings; {cfg['steps']} steps. Level-l blocks are the aligned "
        f"s^(L-l)-token substrings (level {L} = single tokens), positions pooled. Common blocks: the top "
        f"{fmt_pct(cf)} of the distinct training blocks of a level by {yard}. Ratio = generated frequency "
        f"of the common blocks, among the generated blocks that are {'grammatical' if first['grammar'] else 'seen in training'}, "
        f"over their {yard}; > 1 is over-production (the tilt of the model's valid output toward common "
        f"blocks). The raw ratio, over all generated blocks, is diluted by the blocks of invalid samples."
    )
    report.heading("Peak over-production per level (first seed)")
    report.table(["level", "block length", "peak common-block ratio", "z at peak", "at step",
                  "final ratio", "final raw ratio", "final excess mass", "final novel blocks"],
                 [[str(lv), str(s ** (L - lv)), f"{peak[lv]:.3g}", f"{peak_z[lv]:.1f}", fmt_step(peak_step[lv]),
                   f"{over[lv]['common_ratio_known'][-1]:.3g}" if len(run.steps) else "n/a",
                   f"{over[lv]['common_ratio'][-1]:.3g}" if len(run.steps) else "n/a",
                   fmt_pct(over[lv]["excess_mass"][-1]) if len(run.steps) else "n/a",
                   fmt_pct(over[lv]["novel_fraction"][-1]) if len(run.steps) else "n/a"] for lv in levels])
    top_rows: list[dict[str, Any]] = []
    if table_step is not None:
        rec = run.eval(table_step)
        # every level's blocks at that checkpoint: the table's level, and the figure of all
        tabs = {lv: overproduction(rec.samples, run.train, s, lv, grammar_probs=first["gp"], common_fraction=cf)
                for lv in levels}
        top_rows = tabs[table_level].top(int(settings["top_blocks"]))
        report.heading(f"Most generated level-{table_level} blocks at step {table_step}")
        report.table(["block", "generated", "training", "grammar", "ratio"],
                     [[" ".join(map(str, r["block"])), fmt_pct(r["generated"]), fmt_pct(r["train"]),
                       fmt_pct(r["grammar"]), f"{r['ratio']:.3g}"] for r in top_rows])
        fig = figure_block_frequencies(list(tabs.values()), title=f"Block frequencies at step {table_step} (seed {first['spec'].params['seed']})")
        save_figure(fig, report.root / "figures/block_frequencies")
        report.figure("figures/block_frequencies",
                      f"Each level's blocks at step {table_step}: generated (filled) and training-set (open) "
                      f"frequency against {yard}; points above the diagonal are over-produced.")

    if len(run.steps):
        fig = figure_overproduction(
            run.steps, {f"level {lv}": over[lv]["common_ratio_known"] for lv in levels},
            curves["copy_fraction"], curves["chance_copy_fraction"], ratio_min=rmin, reference=yard,
            window=first["window"],
        )
        save_figure(fig, report.root / "figures/overproduction")
        report.figure("figures/overproduction", "Top: generated over expected frequency of each level's common "
                      "blocks; bottom: copies and their chance rate; shaded: the partial memorization window.")
        training_curves_figure(report, runs, [f"seed {p['spec'].params['seed']}" for p in per_run],
                               "figures/copies", "Copies over training")
    return {
        "verdict": verdict,
        "yardstick": yard,
        "window": list(first["window"]) if first["window"] is not None else None,
        "windows": [list(w) if w is not None else None for w in windows],
        "peak_ratio": {str(lv): peak[lv] for lv in levels},
        "peak_z": {str(lv): peak_z[lv] for lv in levels},
        "peak_step": {str(lv): peak_step[lv] for lv in levels},
        "top_blocks_level": table_level,
        "top_blocks_step": table_step,
        "top_blocks": top_rows,
    }
