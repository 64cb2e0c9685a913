"""The memorization experiments, end to end: train, measure, plot, report.

``prototypes`` (are prototypical samples memorized first?), ``fat-tail`` (do heavier
tails delay memorization?), ``slop`` (are common blocks over-produced before whole
samples are copied?), ``scaling`` (memorization time against training-set size).
Each trains its runs (in parallel processes by default), analyses the run directories
with :mod:`rhmfast.analysis`, and writes figures (PNG and SVG), ``results.json``,
``report.md`` and a self-contained ``report.html`` with a plain verdict line.

Presets: ``micro`` (seconds; tests), ``quick`` (default; <= 15 minutes on 2 CPU
cores), ``paper`` (the study's scale, for a GPU). Override any setting with a TOML file
or a dict: experiment keys at top level, TrainConfig keys under ``[train]``.

>>> from rhmfast import experiments
>>> sorted(experiments.EXPERIMENTS)
['fat-tail', 'prototypes', 'scaling', 'slop']
>>> exp_dir = experiments.run("prototypes", preset="micro")  # doctest: +SKIP

The pipeline is :mod:`rhmfast.experiments.pipeline`; each experiment is a module with
``DEFAULTS``, ``plan(settings)``, ``null_tests(runs, nulls, settings)`` and
``analyse(...)``.
"""

from __future__ import annotations

from rhmfast.experiments.pipeline import (
    EXPERIMENTS,
    PRESETS,
    plan,
    run,
    run_experiment_cli,
    simulate,
)

__all__ = ["EXPERIMENTS", "PRESETS", "run", "plan", "simulate", "run_experiment_cli"]
