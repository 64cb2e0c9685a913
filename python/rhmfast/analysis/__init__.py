"""Run directories to numbers (numpy only): which training samples a model memorizes,
when, and why, always beside the chance count of a model that memorized nothing.

Works on any run directory that follows the contract in ``docs/ARCHITECTURE.md``
(``config.toml``, ``data.npz``, ``eval/step_XXXXXXXX.npz``, ``metrics.jsonl``), whoever
trained the model. The public surface is small; the submodules hold the rest:
:mod:`~rhmfast.analysis.excess` (excess copies and equal-power clocks, the
prototypes verdict), :mod:`~rhmfast.analysis.sweeps` (memorization clocks against a
swept parameter), :mod:`~rhmfast.analysis.blocks` (over-production),
:mod:`~rhmfast.analysis.descriptive` (per-string clocks and quintile tables) and
:mod:`~rhmfast.analysis.plots` (figures; matplotlib imported lazily).

>>> import tempfile
>>> from rhmfast.analysis import find_runs
>>> find_runs(tempfile.mkdtemp())
[]
"""

from __future__ import annotations

from rhmfast.analysis.blocks import BlockTable, overproduction
from rhmfast.analysis.memorization import chance_counts, memorization_curves, memorization_time
from rhmfast.analysis.rundir import EvalRecord, Run, find_runs, load_run

__all__ = [
    "Run",
    "EvalRecord",
    "load_run",
    "find_runs",
    "memorization_curves",
    "memorization_time",
    "chance_counts",
    "overproduction",
    "BlockTable",
]
