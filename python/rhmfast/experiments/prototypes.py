"""``prototypes``: are prototypical training samples memorized first?

One unique training set per seed. For every training string: the first checkpoint at
which the model generates it verbatim, and the first at which the model's likelihood
overtakes its true grammar likelihood; both against prototypicality (exact log p(x),
and the empirical mean log block frequency), as a Spearman correlation with a
bootstrap interval over seeds, and per prototypicality quintile beside the
generalization baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import (
    first_copy_step,
    first_nll_step,
    memorization_curves,
    prototypicality_score,
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
    "micro": {"seeds": [0, 1], "num_boot": 200},
    "quick": {"seeds": [0, 1, 2], "num_boot": 1000},
    "paper": {"seeds": [0, 1, 2], "num_boot": 1000},
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


def analyse(exp_dir: Path, specs: list[RunSpec], settings: dict[str, Any], report: Report) -> dict[str, Any]:
    runs = load_runs(exp_dir, specs)
    s = int(settings["train"]["s"])
    seeds = [sp.params["seed"] for sp in specs]
    logps = [r.train_logp for r in runs]
    have_logp = all(np.isfinite(lp).all() and np.ptp(lp) > 0 for lp in logps)
    emp = [prototypicality_score(r.train, s) for r in runs]
    scores = logps if have_logp else emp
    score_name = "log p(x)" if have_logp else "mean log block frequency"
    first_copy = [first_copy_step(r) for r in runs]
    likelihood_ok = all(np.isfinite(lp).all() for lp in logps)
    first_nll = [first_nll_step(r) for r in runs] if likelihood_ok else None
    boot = dict(num_boot=int(settings["num_boot"]), seed=0)
    rho_copy = spearman_ci(scores, first_copy, **boot)
    rho_nll = spearman_ci(scores, first_nll, **boot) if first_nll is not None else None
    rho_emp_nll = spearman_ci(emp, first_nll, **boot) if first_nll is not None else None
    rho_emp_copy = spearman_ci(emp, first_copy, **boot)

    # quintile tables, averaged over seeds
    held_scores = [r.heldout_logp if have_logp else None for r in runs]
    tables = [quintile_table(r, sc, heldout_score=hs) for r, sc, hs in zip(runs, scores, held_scores, strict=True)]
    fields = ("reproduced", "baseline_reproduced", "copies_per_sample", "expected_copies_per_sample",
              "nll_crossed", "heldout_nll_crossed", "median_first_copy", "median_first_nll")
    mean_table = {f: np.nanmean(np.stack([getattr(t, f) for t in tables]), axis=0) if tables else np.zeros(0)
                  for f in fields}
    last_step = float(max(r.steps.max() if len(r.steps) else 0 for r in runs))

    primary = rho_nll if rho_nll is not None and np.isfinite(rho_nll.rho) else rho_copy
    primary_name = ("the step at which the model likelihood overtakes the grammar's"
                    if primary is rho_nll else "the first verbatim copy step")
    q1, q5 = 0, len(mean_table["reproduced"]) - 1
    if np.isfinite(primary.rho):
        verdict = (
            f"prototypical samples memorized first: {_verdict_word(primary.high, primary.low)}: "
            f"Spearman rho({score_name}, {primary_name}) = {primary.rho:+.2f} "
            f"[{primary.low:+.2f}, {primary.high:+.2f}] over {len(primary.per_group)} seed(s), n = {primary.n}; "
            f"verbatim copies: rho = {rho_copy.rho:+.2f} [{rho_copy.low:+.2f}, {rho_copy.high:+.2f}]; "
            f"most prototypical quintile reproduced {fmt_pct(mean_table['reproduced'][q5])} "
            f"(chance {fmt_pct(mean_table['baseline_reproduced'][q5])}), least "
            f"{fmt_pct(mean_table['reproduced'][q1])} (chance {fmt_pct(mean_table['baseline_reproduced'][q1])})"
        )
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
        "Memorization time of a training string: (a) the first checkpoint at which the model's "
        "likelihood bound beats the string's true grammar likelihood (a model that learned the "
        "grammar and memorized nothing never does; held-out strings give the false-positive rate); "
        "(b) the first checkpoint at which a generated sample equals it. Never memorized = last rank. "
        "Negative rho = prototypical samples first. Intervals: 95% bootstrap within seeds, mean over seeds. "
        "Note that (a) is conservative for prototypical strings: beating a large p(x) takes more "
        "model probability than beating a small one."
    )
    report.heading("Correlations")
    rows = [["likelihood overtakes grammar", score_name, str(rho_nll) if rho_nll else "n/a"],
            ["first verbatim copy", score_name, str(rho_copy)]]
    if have_logp:
        rows += [["likelihood overtakes grammar", "mean log block frequency", str(rho_emp_nll) if rho_emp_nll else "n/a"],
                 ["first verbatim copy", "mean log block frequency", str(rho_emp_copy)]]
    report.table(["memorization time", "prototypicality", "Spearman rho [95% CI]"], rows)
    report.text("Per seed: " + "; ".join(
        f"seed {sd}: rho = {v:+.2f}" for sd, v in zip(seeds, primary.per_group, strict=False)
    ))
    report.heading("Per prototypicality quintile (mean over seeds)")
    qrows = []
    for q in range(len(mean_table["reproduced"])):
        qrows.append([
            f"Q{q + 1}",
            fmt_pct(mean_table["reproduced"][q]),
            fmt_pct(mean_table["baseline_reproduced"][q]),
            f"{mean_table['copies_per_sample'][q]:.3g}",
            f"{mean_table['expected_copies_per_sample'][q]:.3g}",
            fmt_pct(mean_table["nll_crossed"][q]),
            fmt_pct(mean_table["heldout_nll_crossed"][q]),
            fmt_step(mean_table["median_first_nll"][q], last_step),
            fmt_step(mean_table["median_first_copy"][q], last_step),
        ])
    report.table(
        ["quintile (Q5 = most prototypical)", "reproduced", "chance (baseline)", "copies/sample",
         "expected copies/sample", "likelihood > grammar", "held-out likelihood > grammar",
         "median step (likelihood)", "median step (copy)"],
        qrows,
    )
    report.text(
        "reproduced: fraction of the quintile generated verbatim at least once over all checkpoints; "
        "chance: the same for a model that learned the grammar exactly and memorized nothing "
        "(1 - (1 - p(x))^B, B = all samples drawn); copies/sample against B p(x)."
    )

    # ---- figures (first seed's checkpoints; seeds share the schedule)
    same_steps = all(np.array_equal(r.steps, runs[0].steps) for r in runs)
    use = runs if same_steps else runs[:1]
    qcs = [quintile_curves(r, sc) for r, sc in zip(use, scores, strict=False)]
    steps = runs[0].steps
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
        if first_nll is not None:
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
                scores, first_nll, [f"seed {sd}" for sd in seeds], xlabel=score_name,
                title="Likelihood memorization step against prototypicality", never_at=last_step * 1.5,
            )
            save_figure(fig, report.root / "figures/scatter_likelihood")
            report.figure("figures/scatter_likelihood",
                          f"Step at which each training string's model likelihood overtakes its grammar likelihood, "
                          f"against {score_name}; open markers on the top line: never.")
        fig = figure_scatter_times(
            scores, first_copy, [f"seed {sd}" for sd in seeds], xlabel=score_name,
            title="First verbatim copy step against prototypicality", never_at=last_step * 1.5,
        )
        save_figure(fig, report.root / "figures/scatter_copy")
        report.figure("figures/scatter_copy", f"First step at which each training string is generated verbatim, "
                      f"against {score_name}; open markers on the top line: never.")
        training_curves_figure(report, runs, [f"seed {sd}" for sd in seeds], "figures/copies", "Copies over training")
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

    def ci(c: Any) -> dict[str, Any] | None:
        return None if c is None else {"rho": c.rho, "low": c.low, "high": c.high, "n": c.n,
                                       "per_seed": list(c.per_group)}

    return {
        "verdict": verdict,
        "score": score_name,
        "spearman_likelihood": ci(rho_nll),
        "spearman_copy": ci(rho_copy),
        "spearman_likelihood_block_frequency": ci(rho_emp_nll),
        "spearman_copy_block_frequency": ci(rho_emp_copy),
        "quintiles": {k: [float(x) for x in v] for k, v in mean_table.items()},
        "seeds": seeds,
    }
