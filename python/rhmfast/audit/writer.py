"""The audit's report: ``report.md``, a self-contained ``report.html``, ``results.json``
and ``figures/`` (when matplotlib is installed), written into a directory the caller
then renames into place.

>>> fmt(0.12345), fmt(float("nan"))
('0.123', 'nan')
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shlex
from collections.abc import Sequence
from typing import Any

import numpy as np

from rhmfast._io.jsonfile import write_json
from rhmfast.analysis.plots import figure_band, figure_lines, figure_null_tests, pyplot, save_figure
from rhmfast.audit.samples import SampleSet
from rhmfast.audit.statistics import QUINTILES
from rhmfast.report import Report

__all__ = ["write_report", "fmt"]


def fmt(x: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.{digits}g}"


def write_report(root: pathlib.Path, ds: Any, sets: list[SampleSet], results: dict[str, Any], tests: Sequence[Any],
           reports: list[dict[str, Any]], baselines: list[dict[str, Any]], figures: bool, L: int) -> None:

    report = Report(root, "rhmfast audit")
    for line in results["verdicts"]:
        report.verdict(line)
    per = results["sets"]
    report.heading("Setup")
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in ds.params.items())
    report.text(f"Data set `{ds.path}`: {len(ds.train)} training and {len(ds.heldout)} held-out strings of "
                f"d = {ds.d} tokens ({params}). {len(sets)} sample set(s): "
                + ", ".join(f"{r['label']} ({r['num_samples']} samples)" for r in per) + ".")
    report.text("Chance is a model that learned the grammar and memorized nothing: its valid samples are "
                "independent draws from the grammar, so it copies training string x with probability p(x) per valid "
                "sample (expected copies: number of valid samples times the summed p(x) of the distinct training "
                "strings). It assumes the model's valid strings follow the grammar's distribution; a model that "
                "over-produces common strings copies common training and held-out strings alike, which the "
                "held-out comparison below separates from memorization. Baselines marked 'grammar draw' are the "
                "same quantity on a fresh draw from the grammar of the same size.")
    report.heading("Calibrated statistics")
    report.text("Excess copies = copies of each training string minus the mean copies of held-out strings in the "
                "same log p decile (`rhmfast.analysis.excess.excess_copies`), summed over all sample sets. "
                f"Memorization is read against {len(tests[0].null)} null run sets of a model that learned the "
                "grammar and memorized nothing (as many valid samples per step, drawn from the grammar); the "
                f"quintile contrasts against {len(tests[1].null)} null run sets fitted to the observed copy counts "
                "(every training string memorized at the same rate, other draws from the grammar). Known-answer calibration of these tests (grammar samples, a uniform memorizer, "
                "a prototype-first memorizer) is in tests/test_audit.py and docs/RESULTS.md.")
    report.table(["statistic", "value", "95% interval", "null median", "null 95%", "p", "decision"],
                 [[t.name, fmt(t.value), f"[{fmt(t.interval[0])}, {fmt(t.interval[1])}]", fmt(t.centre),
                   f"[{fmt(t.null_band[0])}, {fmt(t.null_band[1])}]", fmt(t.p, 2), t.decision] for t in tests])
    report.heading("Copies")
    report.table(["set", "samples", "valid", "copies", "chance", "distinct copied", "held-out copies",
                  "held-out chance"],
                 [[r["label"], r["num_samples"], r["num_valid"], r["copies"]["count"], fmt(r["copies"]["chance"]),
                   r["copies"]["distinct"], r["heldout_copies"]["count"], fmt(r["heldout_copies"]["chance"])]
                  for r in per])
    pq = results["pooled_quintiles"]
    report.text("Copies per prototypicality quintile (training-set block frequency, Q1 least prototypical), all "
                "sets pooled; p = P(at least this many copies) under chance (Poisson).")
    report.table(["quintile", "training strings", "copies", "chance", "p (upper)"],
                 [[f"Q{q + 1}", pq["train_strings"][q], pq["observed"][q], fmt(pq["chance"][q]),
                   fmt(pq["p_upper"][q], 2)] for q in range(QUINTILES)])
    last = per[-1]
    counts = np.bincount(np.asarray(last["copies"]["train_index"], np.int64), minlength=len(ds.train))
    top = np.argsort(-counts, kind="stable")[:10]
    top = top[counts[top] > 0]
    if len(top):
        report.text(f"Most copied training strings ({last['label']}; every copy, by sample, in results.json):")
        report.table(["training index", "copies", "log p"],
                     [[int(i), int(counts[i]), fmt(float(ds.train_logp[i]), 4)] for i in top])
    report.heading("Validity, longest match, novelty")
    report.table(["set", "valid", *[f"valid level {lv}" for lv in range(L)], "longest match (grammar draw)"],
                 [[r["label"], fmt(r["summary"]["valid_fraction"]),
                   *[fmt(v) for v in r["summary"]["valid_levels"]],
                   f"{fmt(r['summary']['longest_match_mean'])} ({fmt(r['grammar_draw']['longest_match_mean'])})"]
                  for r in per])
    report.text("Block novelty per level (fraction of aligned blocks absent at that position from the training "
                "set; level 0 = whole string, level L = single tokens), grammar draw in brackets:")
    report.table(["set", *[f"level {lv}" for lv in range(L + 1)]],
                 [[r["label"], *[f"{fmt(a)} ({fmt(b)})" for a, b in zip(r["summary"]["block_novelty"],
                                                                          r["grammar_draw"]["block_novelty"])]]
                  for r in per])
    report.heading("Over-production of blocks")
    report.text("Total variation between the samples' block distribution and the grammar's (and the training "
                "set's), mean over positions, per level; the grammar draw shows the finite-sample floor. "
                "Descriptive: no calibrated null is computed for over-production without a model.")
    report.table(["set", *[f"TV grammar L{lv}" for lv in range(L + 1)], *[f"TV train L{lv}" for lv in range(L + 1)]],
                 [[r["label"], *[f"{fmt(a)} ({fmt(b)})" for a, b in zip(r["summary"]["tv_generated_vs_grammar"],
                                                                          r["grammar_draw"]["tv_generated_vs_grammar"])],
                   *[f"{fmt(a)} ({fmt(b)})" for a, b in zip(r["summary"]["tv_generated_vs_train"],
                                                             r["grammar_draw"]["tv_generated_vs_train"])]]
                  for r in per])
    rows = []
    for lv, blocks in last["summary"]["top_overproduced"].items():
        for b in blocks[:3]:
            rows.append([lv, b["position"], " ".join(map(str, b["block"])), fmt(b["generated_freq"]),
                         fmt(b["train_freq"]), fmt(b["grammar_prob"])])
    report.text(f"Most over-produced blocks ({last['label']}), against the grammar:")
    report.table(["level", "position", "block", "samples", "training set", "grammar"], rows)
    if figures:
        _figures(report, results, tests)
    else:
        report.text("(figures: install matplotlib, `pip install 'rhmfast[plot]'`)")
    if all(s.path is not None for s in sets):
        report.heading("Reproduce")
        report.code("rhmfast audit " + " ".join(shlex.quote(a) for a in [str(ds.path), *(
            (f"step={s.step}:" if s.step is not None else "") + str(s.path) for s in sets)])
            + " --num-null {num_null} --seed {seed}".format(**results["settings"]))
    report.write()
    write_json(root / "results.json", results, indent=1)


def _figures(report: Any, results: dict[str, Any], tests: Sequence[Any]) -> None:

    root = report.root
    # percentile intervals of a discrete statistic can miss its value by a hair; drawn
    # around it (figure only), and undefined statistics left out
    shown = [dataclasses.replace(t, interval=(min(t.interval[0], t.value), max(t.interval[1], t.value)))
             for t in tests if np.isfinite(t.value) and np.isfinite(t.interval).all() and len(t.null)]
    save_figure(figure_null_tests(shown, title="calibrated statistics against their nulls"),
                root / "figures/null_tests")
    report.figure("figures/null_tests", "Each statistic (black, 95% bootstrap interval) against its null (grey).")
    plt = pyplot()
    pq = results["pooled_quintiles"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.arange(QUINTILES)
    ax.bar(x - 0.2, pq["observed"], 0.4, label="observed copies")
    ax.bar(x + 0.2, pq["chance"], 0.4, label="chance (learned the grammar, memorized nothing)", color="0.6")
    ax.set_xticks(x, [f"Q{q + 1}" for q in x])
    ax.set_xlabel("prototypicality quintile (training-set block frequency)")
    ax.set_ylabel("copies")
    ax.legend(fontsize=7)
    ax.set_title("copies per quintile, all sets pooled")
    save_figure(fig, root / "figures/quintiles")
    report.figure("figures/quintiles", "Copies per prototypicality quintile beside chance.")
    per = results["sets"]
    steps = np.array([r["step"] for r in per])
    if len(per) > 1 and all(r["step"] is not None for r in per):
        steps = np.maximum(steps.astype(np.float64), 1.0)
        n = np.array([r["num_samples"] for r in per], np.float64)
        fig = figure_lines(steps, {"training copies": np.array([r["copies"]["count"] for r in per]) / n,
                                   "held-out copies": np.array([r["heldout_copies"]["count"] for r in per]) / n},
                           baselines={"training copies": np.array([r["copies"]["chance"] for r in per]) / n,
                                      "held-out copies": np.array([r["heldout_copies"]["chance"] for r in per]) / n},
                           ylabel="fraction of samples", title="copies over training", baseline_label="chance")
        save_figure(fig, root / "figures/copies")
        report.figure("figures/copies", "Fraction of samples that copy a training (held-out) string, chance dashed.")
        L = len(per[0]["summary"]["valid_levels"])
        fig = figure_lines(steps, {f"level {lv}": np.array([r["summary"]["valid_levels"][lv] for r in per])
                                   for lv in range(L)}, ylabel="valid fraction", title="per-level validity")
        save_figure(fig, root / "figures/validity")
        report.figure("figures/validity", "Fraction of samples valid at each level (0 = whole string).")
        fig = figure_lines(steps, {f"level {lv}": np.array([r["summary"]["block_novelty"][lv] for r in per])
                                   for lv in range(L + 1)},
                           baselines={f"level {lv}": np.array([r["grammar_draw"]["block_novelty"][lv] for r in per])
                                      for lv in range(L + 1)},
                           ylabel="block novelty", title="blocks absent from the training set",
                           baseline_label="grammar draw")
        save_figure(fig, root / "figures/novelty")
        report.figure("figures/novelty", "Per-level block novelty; a fresh grammar draw of the same size dashed.")
        pc = results["prototype_curve"]
        fig = figure_band(steps, np.array(pc["value"], np.float64), (np.array(pc["null_low"]), np.array(pc["null_high"])),
                          ylabel="Q5 - Q1 excess copies", title="prototypes first, copies up to each step")
        save_figure(fig, root / "figures/prototype_curve")
        report.figure("figures/prototype_curve", "Q5 - Q1 excess copies (block frequency) up to each step, inside "
                      "the band of null run sets fitted to the observed copies.")
