"""``prototypes``: are prototypical training samples memorized first?

One unique training set per seed. For every training string, three memorization
clocks: the first checkpoint at which it has been generated more often than a model
that learned the grammar and memorized nothing plausibly would (the primary,
baseline-corrected clock), the first checkpoint at which it is generated at all (raw),
and the first at which the model's likelihood overtakes its true grammar likelihood.
Each against prototypicality (exact log p(x), and the empirical mean log block
frequency) as a Spearman correlation with a bootstrap interval over seeds, and per
prototypicality quintile beside the generalization baseline.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import (
    SpearmanCI,
    first_copy_step,
    first_excess_copy_step,
    first_nll_step,
    memorization_curves,
    prototypicality_score,
    quantile_bins,
    quintile_curves,
    quintile_table,
    spearman_ci,
)
from rhmfast.analysis.plots import (
    figure_lines,
    figure_quintile_curves,
    figure_scatter_times,
    save_figure,
)
from rhmfast.experiments.common import fmt_pct, fmt_step, load_runs, training_curves_figure
from rhmfast.experiments.report import Report
from rhmfast.experiments.runner import RunSpec

TITLE = "Are prototypical samples memorized first?"

DEFAULTS: dict[str, dict[str, Any]] = {
    "micro": {"seeds": [0, 1], "num_boot": 200, "alpha": 0.01},
    "quick": {"seeds": [0, 1, 2], "num_boot": 1000, "alpha": 0.01},
    "paper": {"seeds": [0, 1, 2], "num_boot": 1000, "alpha": 0.01},
}


def plan(settings: dict[str, Any]) -> list[RunSpec]:
    specs = []
    for seed in settings["seeds"]:
        train = dict(settings["train"], seed=int(seed), data_seed=int(seed), unique=True)
        specs.append(RunSpec(f"seed{seed}", {"seed": int(seed)}, train))
    return specs


def _verdict_word(ci_high: float, ci_low: float) -> str:
    if ci_high < 0:
        return "yes"
    if ci_low > 0:
        return "no, the opposite (atypical samples first)"
    return "inconclusive (interval covers 0)"


def _ci_dict(c: SpearmanCI | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"rho": c.rho, "low": c.low, "high": c.high, "n": c.n, "per_seed": list(c.per_group)}


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    s = int(settings["train"]["s"])
    alpha = float(settings["alpha"])
    seeds = [sp.params["seed"] for sp in specs]
    logps = [r.train_logp for r in runs]
    exact = all(np.isfinite(lp).all() for lp in logps)
    have_logp = exact and all(np.ptp(lp) > 0 for lp in logps)
    emp = [prototypicality_score(r.train, s) for r in runs]
    scores = logps if have_logp else emp
    score_name = "log p(x)" if have_logp else "mean log block frequency"
    boot = dict(num_boot=int(settings["num_boot"]), seed=0)

    # the clocks: name -> per-seed first steps (+inf = never)
    clocks: dict[str, list[np.ndarray]] = {}
    if exact:
        clocks["copies beyond chance"] = [first_excess_copy_step(r, alpha=alpha) for r in runs]
    clocks["first verbatim copy"] = [first_copy_step(r) for r in runs]
    if exact:
        clocks["likelihood overtakes grammar"] = [first_nll_step(r) for r in runs]
    rhos = {name: spearman_ci(scores, t, **boot) for name, t in clocks.items()}
    rhos_emp = {name: spearman_ci(emp, t, **boot) for name, t in clocks.items()} if have_logp else {}
    # without the most prototypical quintile, where chance reproductions concentrate
    not_top = [quantile_bins(sc, 5) < 4 for sc in scores]
    rhos_no_top = {
        name: spearman_ci([sc[k] for sc, k in zip(scores, not_top, strict=True)],
                          [tt[k] for tt, k in zip(t, not_top, strict=True)], **boot)
        for name, t in clocks.items()
    }
    # the clock: first verbatim copy; the likelihood clock when nothing was copied
    primary_name = next((n for n in ("first verbatim copy", "likelihood overtakes grammar")
                         if n in rhos and np.isfinite(rhos[n].rho)), "first verbatim copy")
    primary = rhos[primary_name]

    # quintile tables, averaged over seeds
    held_scores = [r.heldout_logp if have_logp else None for r in runs]
    tables = [quintile_table(r, sc, heldout_score=hs) for r, sc, hs in zip(runs, scores, held_scores, strict=True)]
    fields = ("reproduced", "baseline_reproduced", "beyond_chance", "copies_per_sample",
              "expected_copies_per_sample", "nll_crossed", "heldout_nll_crossed", "median_first_copy",
              "median_first_beyond_chance", "median_first_nll")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mean_table = {f: np.nanmean(np.stack([getattr(t, f) for t in tables]), axis=0) for f in fields}
    last_step = float(max(r.steps.max() if len(r.steps) else 0 for r in runs))

    q1, q5 = 0, len(mean_table["reproduced"]) - 1
    # excess over chance, averaged over the (log-spaced) checkpoints: a quintile memorized
    # earlier accumulates more; at the end everything memorized would favour rare strings
    same_steps = all(np.array_equal(r.steps, runs[0].steps) for r in runs)
    use = runs if same_steps else runs[:1]
    qcs = [quintile_curves(r, sc) for r, sc in zip(use, scores, strict=False)]
    if len(runs[0].steps):
        excess = np.mean([np.mean(q["reproduced"] - q["baseline"], axis=1) for q in qcs], axis=0)
    else:
        excess = np.full(5, np.nan)
    corrected = rhos.get("copies beyond chance")
    if np.isfinite(primary.rho):
        verdict = (
            f"prototypical samples memorized first: {_verdict_word(primary.high, primary.low)}: "
            f"Spearman rho({score_name}, step of {primary_name}) = {primary.rho:+.2f} "
            f"[{primary.low:+.2f}, {primary.high:+.2f}] over {len(primary.per_group)} seed(s), n = {primary.n}"
        )
        if exact:
            # beyond chance: the per-quintile excess over the perfect-grammar baseline, and the
            # baseline-corrected clock
            beyond = "yes" if excess[q5] > excess[q1] else "no"
            if max(excess[q5], excess[q1]) <= 0:
                beyond = "none (reproduction below chance in both extreme quintiles)"
            elif corrected is not None and np.isfinite(corrected.rho):
                if (corrected.high < 0) != (beyond == "yes"):
                    beyond = "mixed"
            verdict += (
                f"; beyond chance: {beyond}: fraction reproduced minus chance, averaged over checkpoints, "
                f"most prototypical quintile {excess[q5]:+.1%}, least {excess[q1]:+.1%} (by the end "
                f"{fmt_pct(mean_table['reproduced'][q5])} vs chance {fmt_pct(mean_table['baseline_reproduced'][q5])}, "
                f"and {fmt_pct(mean_table['reproduced'][q1])} vs {fmt_pct(mean_table['baseline_reproduced'][q1])})"
            )
            if corrected is not None and np.isfinite(corrected.rho):
                verdict += (f"; clock of copies beyond chance: rho = {corrected.rho:+.2f} "
                            f"[{corrected.low:+.2f}, {corrected.high:+.2f}]")
    else:
        verdict = (
            f"prototypical samples memorized first: not measurable: no training sample was memorized "
            f"by step {int(last_step)} in any of {len(runs)} seed(s) (raise [train] steps)"
        )
    report.verdict(verdict)

    # ---- report body
    cfg = settings["train"]
    report.heading("Setup")
    report.text(
        f"RHM v={cfg['v']} n={cfg['n']} m={cfg['m']} s={cfg['s']} L={cfg['L']}, rule exponent "
        f"zipf_a={cfg['zipf_a']} (levels {cfg.get('zipf_levels') or 'all'}); P={cfg['num_train']} unique "
        f"training strings per seed; {cfg.get('model', 'transformer')} {cfg.get('process', 'masked')} "
        f"diffusion, width {cfg.get('width')}, depth {cfg.get('depth')}, {cfg['steps']} steps; "
        f"{cfg.get('eval_samples')} samples per checkpoint; seeds {seeds}."
    )
    report.text(
        "Prototypicality is the exact grammar log-probability log p(x); the mean log frequency of a "
        "sample's aligned blocks in the training set is reported beside it."
        if have_logp else
        "Rules are uniform (log p(x) is the same for every string), so prototypicality is the "
        "mean log frequency of a sample's aligned blocks in the training set."
    )
    report.text(
        "Memorization clocks of a training string x, each the first checkpoint at which: "
        f"**copies beyond chance**: x has been generated more often than a model that learned the grammar "
        f"and memorized nothing plausibly would (Poisson tail of its chance count, B p(x) per checkpoint, "
        f"below {alpha:g}); **first verbatim copy**: x has been generated at all (raw, not corrected for "
        "chance); **likelihood overtakes grammar**: the model's likelihood bound on x beats p(x) (a model "
        "that learned the grammar exactly never does; held-out strings give the false-positive rate). "
        "Never = last rank. Negative rho = prototypical samples first. Intervals: 95% bootstrap within "
        "seeds, mean over seeds. Both corrected clocks are conservative for prototypical strings: beating "
        "a large chance count, or a large p(x), takes more than beating a small one."
    )
    report.heading("Correlations")
    rows = []
    for name in clocks:
        rows.append([name, score_name, str(rhos[name]), str(rhos_no_top[name])])
        if name in rhos_emp:
            rows.append([name, "mean log block frequency", str(rhos_emp[name]), ""])
    report.table(["memorization clock", "prototypicality", "Spearman rho [95% CI]", "without top quintile"], rows)
    report.text("Per seed (" + primary_name + "): " + "; ".join(
        f"seed {sd}: rho = {v:+.2f}" for sd, v in zip(seeds, primary.per_group, strict=False)
    ))
    report.heading("Per prototypicality quintile (mean over seeds)")
    qrows = []
    for q in range(len(mean_table["reproduced"])):
        qrows.append([
            f"Q{q + 1}",
            fmt_pct(mean_table["reproduced"][q]),
            fmt_pct(mean_table["baseline_reproduced"][q]),
            fmt_pct(mean_table["beyond_chance"][q]),
            f"{mean_table['copies_per_sample'][q]:.3g}",
            f"{mean_table['expected_copies_per_sample'][q]:.3g}",
            fmt_pct(mean_table["nll_crossed"][q]),
            fmt_pct(mean_table["heldout_nll_crossed"][q]),
            fmt_step(mean_table["median_first_beyond_chance"][q], last_step),
            fmt_step(mean_table["median_first_copy"][q], last_step),
        ])
    report.table(
        ["quintile (Q5 = most prototypical)", "reproduced", "chance (baseline)", "beyond chance",
         "copies/sample", "expected copies/sample (chance)", "likelihood > grammar",
         "held-out likelihood > grammar", "median step (beyond chance)", "median step (first copy)"],
        qrows,
    )
    report.text(
        "reproduced: fraction of the quintile generated verbatim at least once over all checkpoints; "
        "chance: the same for a model that learned the grammar exactly and memorized nothing "
        "(1 - (1 - p(x))^B, B = all samples drawn); beyond chance: fraction copied significantly more "
        "often than that model would; copies/sample against B p(x)."
    )

    # ---- figures (seeds share the checkpoint schedule when their configs do)
    steps = runs[0].steps
    seed_labels = [f"seed {sd}" for sd in seeds]
    if len(steps):
        fig = figure_quintile_curves(
            steps, np.mean([q["reproduced"] for q in qcs], axis=0), np.mean([q["baseline"] for q in qcs], axis=0),
            ylabel="fraction of quintile reproduced so far", title="Verbatim reproduction by prototypicality quintile",
            baseline_label="chance (perfect grammar, no memorization)",
        )
        save_figure(fig, report.root / "figures/quintile_reproduced")
        report.figure("figures/quintile_reproduced",
                      "Fraction of each prototypicality quintile generated verbatim so far (solid) "
                      "against the generalization baseline (dashed).")
        if exact:
            fig = figure_quintile_curves(
                steps, np.mean([q["beyond_chance"] for q in qcs], axis=0), np.zeros((5, len(steps))),
                ylabel="fraction copied beyond chance so far",
                title="Memorization beyond chance by prototypicality quintile",
                baseline_label=f"no memorization (false positives < {alpha:g})",
            )
            save_figure(fig, report.root / "figures/quintile_beyond_chance")
            report.figure("figures/quintile_beyond_chance",
                          "Fraction of each quintile generated more often than a perfect grammar model would "
                          "(the baseline-corrected clock).")
            curves = [memorization_curves(r) for r in use]
            held = np.mean([c["heldout_crossed_fraction"] for c in curves], axis=0)
            fig = figure_quintile_curves(
                steps, np.mean([q["nll_crossed"] for q in qcs], axis=0), np.tile(held, (5, 1)),
                ylabel="fraction with model likelihood > grammar likelihood",
                title="Likelihood memorization by prototypicality quintile",
                baseline_label="held-out strings (false positives)",
            )
            save_figure(fig, report.root / "figures/quintile_likelihood")
            report.figure("figures/quintile_likelihood",
                          "Fraction of each quintile the model finds likelier than the grammar does (solid); "
                          "dashed: the same for held-out strings (all quintiles).")
        fig = figure_scatter_times(
            scores, clocks[primary_name], seed_labels, xlabel=score_name,
            title=f"Step of {primary_name} against prototypicality", never_at=last_step * 1.5,
        )
        save_figure(fig, report.root / "figures/scatter")
        report.figure("figures/scatter", f"Step of {primary_name} of each training string against {score_name}; "
                      "open markers on the top line: never.")
        training_curves_figure(report, runs, seed_labels, "figures/copies", "Copies over training")
        c0 = memorization_curves(runs[0])
        fig = figure_lines(
            runs[0].steps, {"train NLL (model bound)": c0["train_nll_mean"],
                            "held-out NLL (model bound)": c0["heldout_nll_mean"]},
            baselines={"train NLL (model bound)": c0["train_true_nll_mean"]},
            ylabel="mean negative log-likelihood (nats)", title=f"Likelihood over training (seed {seeds[0]})",
        )
        save_figure(fig, report.root / "figures/nll")
        report.figure("figures/nll", "Mean model NLL bound on training and held-out strings; dashed: the true "
                      "mean -log p(x) of the training strings.")

    return {
        "verdict": verdict,
        "score": score_name,
        "primary_clock": primary_name,
        "spearman": {name: _ci_dict(c) for name, c in rhos.items()},
        "spearman_without_top_quintile": {name: _ci_dict(c) for name, c in rhos_no_top.items()},
        "spearman_block_frequency": {name: _ci_dict(c) for name, c in rhos_emp.items()},
        "quintiles": {k: [float(x) for x in v] for k, v in mean_table.items()},
        "quintile_excess_reproduced": [float(x) for x in excess],
        "seeds": seeds,
    }
