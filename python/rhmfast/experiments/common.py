"""Helpers shared by the experiments: loading runs and their null run sets, the
sampler's chance probability, the grammar yardstick, formatting.

>>> fmt_pct(0.053), fmt_step(float("inf"), 1000)
('5.3%', 'never (> 1000)')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rhmfast._io.atomic import atomic_write_text
from rhmfast.analysis import Run, load_run, memorization_curves
from rhmfast.analysis.memorization import fitted_sharpening, sharpened_probability
from rhmfast.analysis.plots import figure_lines, save_figure
from rhmfast.diffusion.reference import GrammarDenoiser, sampling_probability
from rhmfast.experiments.runner import RunSpec, run_dir
from rhmfast.grammar import RHM
from rhmfast.knownanswers.nulls import null_run_sets
from rhmfast.report import Report
from rhmfast.stats.chance import training_mass

__all__ = [
    "load_runs", "null_sets_or_why", "not_measurable", "sampler_probability", "chance_probability", "grammar_block_probs", "fmt_step", "fmt_pct", "fmt_num", "training_curves_figure", "write_csv",
]


def load_runs(exp_dir: Path, specs: Sequence[RunSpec]) -> list[Run]:
    return [load_run(run_dir(exp_dir, s)) for s in specs]


def null_sets_or_why(exp_dir: Path, runs: Sequence[Run], num: int, why: str = "", *,
                     over_production: bool = False) -> tuple[list[list[Run]], str]:
    """:func:`rhmfast.knownanswers.nulls.null_run_sets`, or no null sets and the reason the
    verdict is not measurable: ``why`` when already given, else why no null run could be
    fitted (runs whose data are not their config's grammar draw)."""
    if why:
        return [], why
    try:
        return null_run_sets(exp_dir, runs, num, over_production=over_production), ""
    except ValueError as err:
        return [], f"no null runs could be fitted ({err})"


def not_measurable(report: Report, question: str, why: str, seeds: Sequence[int]) -> dict[str, object]:
    """Write and return the verdict "QUESTION: not measurable (WHY)" (the wording of
    :func:`rhmfast.stats.answer`)."""
    verdict = f"{question}: not measurable ({why})"
    report.verdict(verdict)
    return {"verdict": verdict, "seeds": list(seeds)}


def sampler_probability(run: Run, *, draws: int = 64) -> np.ndarray:
    """``(P,)`` probability that one draw of the run's sampler driven by the exact grammar
    denoiser outputs each training string: ``p(x)`` when one token is revealed per step,
    else a Monte Carlo estimate for the ancestral schedule. The chance count of
    :mod:`rhmfast.stats.chance` is the run's grammar draws times this
    (:func:`rhmfast.analysis.chance_counts`). Zeros without grammar probabilities."""
    logp = run.train_logp
    if not np.isfinite(logp).all():
        return np.zeros(run.num_train)
    cfg = run.config
    if cfg.get("sampling_reveal", "ancestral") != "one" and (run.path / "grammar.json").exists():
        g = RHM.load(str(run.path / "grammar.json"))
        p, _ = sampling_probability(GrammarDenoiser(g), run.train.astype(np.int64),
                                    steps=int(cfg.get("sampling_steps", 0)), draws=draws, seed=0)
        return np.asarray(p, np.float64)
    return np.exp(logp)


def chance_probability(run: Run, beta: float | None = None) -> np.ndarray:
    """``(P,)`` the per-string probability behind a verdict's chance count: the grammar
    sharpened to the run's over-production of common rules (``beta``, default
    :func:`rhmfast.analysis.memorization.fitted_sharpening` of the run), so a
    generalizer that over-produces likely strings, and memorizes nothing, is not read as
    memorizing them. The fit describes the run's own samples, so with the ancestral
    sampler it takes in the sampler's flattening too (:func:`sampler_probability` would
    count it twice); with one token revealed per step and ``beta = 1`` it is ``p(x)``.
    Zeros without grammar probabilities."""
    if not np.isfinite(run.train_logp).all():
        return np.zeros(run.num_train)
    return sharpened_probability(run, fitted_sharpening(run) if beta is None else beta)


def grammar_block_probs(run: Run) -> Callable[[np.ndarray, int], np.ndarray] | None:
    """Exact pooled block probabilities from the run's ``grammar.json``; None when the run
    has no grammar."""
    path = run.path / "grammar.json"
    if not path.exists():
        return None
    block_probs = RHM.load(path).block_probs

    def probs(blocks: np.ndarray, level: int) -> np.ndarray:
        # positions=None: probability at a uniformly chosen aligned position (pooled)
        return np.asarray(block_probs(blocks.astype(np.int64), level), np.float64)

    return probs


def regime_text(runs: Sequence[Run]) -> str:
    """The report's regime sentence: the grammar's mass on the training set (the fraction
    of a non-memorizing model's samples that copy by chance) and ``P max p(x)``, means
    over the seeds' runs."""
    mass = np.mean([training_mass(r.train_logp) for r in runs])
    top = np.mean([r.num_train * np.exp(r.train_logp).max() for r in runs])
    return (f"Regime: the grammar's mass on the training set, sum p(x), is {fmt_num(float(mass))} (the fraction "
            f"of a non-memorizing model's samples that copy by chance); P max p(x) = {fmt_num(float(top))}.")


def fmt_step(x: float, last: float | None = None) -> str:
    if math.isinf(x):
        return "never" if last is None else f"never (> {int(last)})"
    if math.isnan(x):
        return "n/a"
    return f"{x:.0f}"


def fmt_pct(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if x != 0 and abs(x) < 0.001:
        return f"{100 * x:.2g}%"
    return f"{100 * x:.1f}%"


def fmt_num(x: float, digits: int = 3) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def training_curves_figure(report: Report, runs: Sequence[Run], labels: Sequence[str], stem: str, title: str) -> None:
    """Copy fraction beside its chance level, and validity, for each run."""
    steps = {lab: r.steps for lab, r in zip(labels, runs, strict=True)}
    curves = [memorization_curves(r) for r in runs]
    fig = figure_lines(
        steps,
        {lab: c["copy_fraction"] for lab, c in zip(labels, curves, strict=True)},
        baselines={lab: c["chance_copy_fraction"] for lab, c in zip(labels, curves, strict=True)},
        baseline_label="chance (no memorization, same validity)",
        ylabel="fraction of generated samples that copy a training string",
        title=title,
    )
    save_figure(fig, report.root / stem)
    report.figure(stem, f"{title}: copy fraction (solid) against the chance a model that memorized nothing copies at the same validity (dashed).")
    fig = figure_lines(
        steps,
        {lab: c["valid_fraction"] for lab, c in zip(labels, curves, strict=True)},
        ylabel="fraction of generated samples that parse",
        title=f"{title}: validity",
    )
    save_figure(fig, report.root / f"{stem}_validity")
    report.figure(f"{stem}_validity", f"{title}: fraction of generated samples valid under the grammar.")


def write_csv(path: Path, columns: Mapping[str, Sequence[object] | np.ndarray]) -> None:
    """Columns of equal length as CSV (``inf`` for never, empty for NaN), written atomically."""
    names = list(columns)
    cols = [np.asarray(columns[k]) for k in names]
    if len({len(c) for c in cols}) > 1:
        raise ValueError(f"columns of unequal length: {[len(c) for c in cols]}")

    def cell(x: object) -> str:
        if isinstance(x, (float, np.floating)):
            if math.isnan(x):
                return ""
            return "inf" if math.isinf(x) else repr(float(x))
        return str(x.item() if isinstance(x, np.generic) else x)

    lines = [",".join(names)] + [",".join(cell(c[i]) for c in cols) for i in range(len(cols[0]) if cols else 0)]
    atomic_write_text(path, "\n".join(lines) + "\n")
