"""``prototypes``: are prototypical training samples memorized first?

One unique training set per seed. For every training string, three memorization
clocks: the first checkpoint at which it has been generated more often than a model
that learned the grammar and memorized nothing plausibly would (the primary,
baseline-corrected clock), the first checkpoint at which it is generated at all (raw),
and the first at which the model's likelihood overtakes its true grammar likelihood.
Each against prototypicality (exact log p(x), and the empirical mean log block
frequency) as a Spearman correlation with a bootstrap interval over seeds, and per
prototypicality quintile beside the generalization baseline. The verdict's answer is
about memorization beyond chance (the corrected clock, and the training strings
copied beyond chance against held-out strings of the same log p); the raw clock is
quoted beside it. Every training string's clocks and copy counts are written to
``per_sample.csv``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis import (
    SpearmanCI,
    memorization_curves,
    per_sample_table,
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
from rhmfast.experiments.common import (
    fmt_pct,
    fmt_step,
    load_runs,
    training_curves_figure,
    write_csv,
)
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


def _beyond_word(corrected: SpearmanCI | None, mem_q5: float, mem_q1: float) -> str:
    """The answer beyond chance and generalization: the corrected clock's interval and the
    quintile comparison (training minus held-out strings copied beyond chance) must agree."""
    if max(mem_q5, mem_q1) <= 0:
        return "none (no more training than held-out strings beat chance in either extreme quintile)"
    by_quintile = "yes" if mem_q5 > mem_q1 else "no"
    if corrected is None or not np.isfinite(corrected.rho):
        return f"{by_quintile} (by quintiles; the corrected clock is not measurable)"
    clock = _verdict_word(corrected.high, corrected.low)
    if clock == "yes" and by_quintile == "yes":
        return "yes"
    if clock.startswith("no") and by_quintile == "no":
        return clock
    if clock.startswith("inconclusive"):
        return f"inconclusive (the corrected clock's interval covers 0; by quintiles: {by_quintile})"
    return f"inconclusive (the corrected clock says {clock.split(',')[0]}, the quintiles {by_quintile})"


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
    # (computed once per run: the same table is written to per_sample.csv)
    tables_ps = [per_sample_table(r, alpha=alpha) for r in runs]
    clocks: dict[str, list[np.ndarray]] = {}
    if exact:
        clocks["copies beyond chance"] = [t["first_excess_copy_step"] for t in tables_ps]
    clocks["first verbatim copy"] = [t["first_copy_step"] for t in tables_ps]
    if exact:
        clocks["likelihood overtakes grammar"] = [t["first_nll_step"] for t in tables_ps]
    rhos = {name: spearman_ci(scores, t, **boot) for name, t in clocks.items()}
    rhos_emp = {name: spearman_ci(emp, t, **boot) for name, t in clocks.items()} if have_logp else {}
    # without the most prototypical quintile, where chance reproductions concentrate
    not_top = [quantile_bins(sc, 5) < 4 for sc in scores]
    rhos_no_top = {
        name: spearman_ci([sc[k] for sc, k in zip(scores, not_top, strict=True)],
                          [tt[k] for tt, k in zip(t, not_top, strict=True)], **boot)
        for name, t in clocks.items()
    }
    # the clock of the verdict: copies beyond chance (needs p(x)); else the raw clock, else
    # the likelihood clock when nothing was copied
    primary_name = next((n for n in ("copies beyond chance", "first verbatim copy", "likelihood overtakes grammar")
                         if n in rhos and np.isfinite(rhos[n].rho)), "first verbatim copy")
    primary = rhos[primary_name]
    raw = rhos["first verbatim copy"]

    # quintile tables, averaged over seeds
    held_scores = [r.heldout_logp if have_logp else None for r in runs]
    tables = [quintile_table(r, sc, heldout_score=hs) for r, sc, hs in zip(runs, scores, held_scores, strict=True)]
    fields = ("reproduced", "baseline_reproduced", "baseline_reproduced_full", "heldout_reproduced",
              "beyond_chance", "heldout_beyond_chance", "copies_per_sample",
              "expected_copies_per_sample", "expected_copies_full", "nll_crossed", "heldout_nll_crossed", "median_first_copy",
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
    qcs = [quintile_curves(r, sc, heldout_score=hs) for r, sc, hs in zip(use, scores, held_scores, strict=False)]
    if len(runs[0].steps):
        excess = np.mean([np.mean(q["reproduced"] - q["baseline"], axis=1) for q in qcs], axis=0)
        # fraction beyond chance so far, averaged over checkpoints: training strings and the
        # held-out control of the same log p range
        avg_beyond = np.mean([np.mean(q["beyond_chance"], axis=1) for q in qcs], axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no held-out string in a bin's range
            avg_held = np.nanmean([np.mean(q["heldout_beyond_chance"], axis=1) for q in qcs], axis=0)
    else:
        excess = avg_beyond = avg_held = np.full(5, np.nan)
    corrected = rhos.get("copies beyond chance")
    n_seeds = f"over {len(primary.per_group)} seed(s), n = {primary.n}"
    if not np.isfinite(primary.rho):
        verdict = (
            f"prototypical samples memorized first: not measurable: no training sample was memorized "
            f"by step {int(last_step)} in any of {len(runs)} seed(s) (raise [train] steps)"
        )
    elif exact:
        # beyond chance: training strings generated more often than a no-memorization
        # model would, minus the held-out strings of the same log p that pass the same
        # test (generalization and over-production of common strings pass it too)
        mem = avg_beyond - avg_held
        if not np.isfinite(mem[[q1, q5]]).all():
            mem = excess  # no held-out control in an extreme quintile
        verdict = "prototypical samples memorized first, beyond chance and generalization: "
        verdict += _beyond_word(corrected, float(mem[q5]), float(mem[q1]))
        if corrected is not None and np.isfinite(corrected.rho):
            verdict += (f": clock of copies beyond chance rho({score_name}, step) = {corrected.rho:+.2f} "
                        f"[{corrected.low:+.2f}, {corrected.high:+.2f}] {n_seeds}")
        verdict += (
            f"; copied more often than chance allows, averaged over checkpoints, most prototypical quintile "
            f"{fmt_pct(avg_beyond[q5])} of training vs {fmt_pct(avg_held[q5])} of held-out strings, least "
            f"{fmt_pct(avg_beyond[q1])} vs {fmt_pct(avg_held[q1])}; "
            f"reproduced by the end {fmt_pct(mean_table['reproduced'][q5])} vs chance "
            f"{fmt_pct(mean_table['baseline_reproduced'][q5])} (Q5) and {fmt_pct(mean_table['reproduced'][q1])} "
            f"vs {fmt_pct(mean_table['baseline_reproduced'][q1])} (Q1)"
        )
        if np.isfinite(raw.rho):
            verdict += (f"; raw clock (first verbatim copy, chance not subtracted): "
                        f"{_verdict_word(raw.high, raw.low).split(' (')[0]}, rho = {raw.rho:+.2f} "
                        f"[{raw.low:+.2f}, {raw.high:+.2f}]")
    else:
        verdict = (
            f"prototypical samples memorized first (raw clock; no grammar probabilities, so no chance "
            f"baseline): {_verdict_word(primary.high, primary.low)}: Spearman rho({score_name}, step of "
            f"{primary_name}) = {primary.rho:+.2f} [{primary.low:+.2f}, {primary.high:+.2f}] {n_seeds}"
        )
    report.verdict(verdict)

    # every training string's clocks and copy counts, for the user's own analysis
    per_sample: dict[str, np.ndarray] = {
        "seed": np.concatenate([np.full(r.num_train, sd) for r, sd in zip(runs, seeds, strict=True)]),
        **{k: np.concatenate([t[k] for t in tables_ps]) for k in tables_ps[0]},
        "block_score": np.concatenate(emp),
        "quintile": np.concatenate([quantile_bins(sc, 5) + 1 for sc in scores]),
    }
    write_csv(exp_dir / "per_sample.csv", per_sample)

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
        f"**copies beyond chance**: x has been generated more often than a model that memorized nothing "
        f"plausibly would (Poisson tail of its chance count below {alpha:g}; the chance count is f B p(x) per "
        f"checkpoint of B samples of which the model made a fraction f valid, so a partly trained model is "
        f"not granted draws it spends on invalid strings); **first verbatim copy**: x has been generated at all (raw, not corrected for "
        "chance); **likelihood overtakes grammar**: the model's likelihood bound on x beats p(x) (a model "
        "that learned the grammar exactly never does; held-out strings give the false-positive rate). "
        "Every training string's clocks, copy counts and expected counts are in `per_sample.csv` "
        "(one row per seed and string; `inf` = never). "
        "Never = last rank. Negative rho = prototypical samples first. Intervals: 95% two-stage bootstrap "
        "(seeds, then strings within each seed), of the mean over seeds. Both corrected clocks are conservative for prototypical strings: beating "
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
            fmt_pct(mean_table["baseline_reproduced_full"][q]),
            fmt_pct(mean_table["heldout_reproduced"][q]),
            fmt_pct(mean_table["beyond_chance"][q]),
            fmt_pct(mean_table["heldout_beyond_chance"][q]),
            f"{mean_table['copies_per_sample'][q]:.3g}",
            f"{mean_table['expected_copies_per_sample'][q]:.3g}",
            f"{mean_table['expected_copies_full'][q]:.3g}",
            fmt_pct(mean_table["nll_crossed"][q]),
            fmt_pct(mean_table["heldout_nll_crossed"][q]),
            fmt_step(mean_table["median_first_beyond_chance"][q], last_step),
            fmt_step(mean_table["median_first_copy"][q], last_step),
        ])
    report.table(
        ["quintile (Q5 = most prototypical)", "reproduced", "chance (baseline)", "chance (all B draws)",
         "held-out generated", "beyond chance", "held-out beyond chance",
         "copies/sample", "expected copies/sample (chance)", "expected (all B draws)", "likelihood > grammar",
         "held-out likelihood > grammar", "median step (beyond chance)", "median step (first copy)"],
        qrows,
    )
    report.text(
        "reproduced: fraction of the quintile generated verbatim at least once over all checkpoints; "
        "chance: the same for a model that memorized nothing and, when its output is valid, follows the "
        "grammar (1 - (1 - p(x))^(fB), fB = all valid samples drawn); chance (all B draws): docs/SCIENCE.md's strict "
        "baseline, as if every sample had come from the grammar (1 - (1 - p(x))^B), an upper bound on chance "
        "while the model still makes invalid strings; held-out generated: the same for the "
        "held-out strings of the quintile's log p range (never trained on: generalization, the control); "
        "beyond chance: fraction copied significantly more often than the no-memorization model would, "
        "beside the held-out strings passing the same test (their rate is generalization or over-production "
        "of common strings, not memorization); copies/sample against f B p(x) and B p(x)."
    )

    # ---- figures (seeds share the checkpoint schedule when their configs do)
    steps = runs[0].steps
    seed_labels = [f"seed {sd}" for sd in seeds]
    if len(steps):
        fig = figure_quintile_curves(
            steps, np.mean([q["reproduced"] for q in qcs], axis=0), np.mean([q["baseline"] for q in qcs], axis=0),
            ylabel="fraction of quintile reproduced so far", title="Verbatim reproduction by prototypicality quintile",
            baseline_label="chance (no memorization, same validity)",
        )
        save_figure(fig, report.root / "figures/quintile_reproduced")
        report.figure("figures/quintile_reproduced",
                      "Fraction of each prototypicality quintile generated verbatim so far (solid) "
                      "against the generalization baseline (dashed).")
        if exact:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a quintile without held-out strings
                held_beyond = np.nanmean([q["heldout_beyond_chance"] for q in qcs], axis=0)
            fig = figure_quintile_curves(
                steps, np.mean([q["beyond_chance"] for q in qcs], axis=0), held_beyond,
                ylabel="fraction copied beyond chance so far",
                title="Memorization beyond chance by prototypicality quintile",
                baseline_label="held-out strings of the same log p (control)",
            )
            save_figure(fig, report.root / "figures/quintile_beyond_chance")
            report.figure("figures/quintile_beyond_chance",
                          "Fraction of each quintile generated more often than a model that memorized nothing "
                          "would (solid, the baseline-corrected clock); dashed: held-out strings of the same "
                          "log p range passing the same test (the control).")
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
            baseline_label="true mean -log p(x)",
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
        "quintile_beyond_chance_averaged": [float(x) for x in avg_beyond],
        "quintile_heldout_beyond_chance_averaged": [float(x) for x in avg_held],
        "seeds": seeds,
    }
