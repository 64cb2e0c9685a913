"""Pure-numpy analysis of run directories: which training samples a model memorizes,
when, and why, always beside the generalization baseline.

Works on any run directory that follows the contract in ``docs/ARCHITECTURE.md``
(``data.npz``, ``eval/step_XXXXXXXX.npz``, ``metrics.jsonl``), whoever trained the model,
and most functions also take plain arrays so that users can analyse their own samples.
Plot helpers (:mod:`rhmfast.analysis.plots`) import matplotlib lazily.

>>> import numpy as np
>>> from rhmfast.analysis import first_step, spearman
>>> first_step(np.array([16, 32, 64]), np.array([[0, 1], [1, 1], [1, 1]], bool)).tolist()
[32.0, 16.0]
>>> spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
-1.0
"""

from __future__ import annotations

from rhmfast.analysis.blocks import (
    BlockTable,
    block_log_frequency,
    blocks_at,
    depth_of,
    overproduction,
    overproduction_curve,
    partial_memorization_window,
    prototypicality_score,
)
from rhmfast.analysis.memorization import (
    QuintileTable,
    baseline_reproduced,
    chance_among_valid,
    chance_copy_fraction,
    chance_draws,
    first_copy_step,
    first_excess_copy_step,
    first_nll_step,
    first_step,
    heldout_bins,
    memorization_curves,
    memorization_time,
    per_sample_table,
    poisson_sf,
    quintile_curves,
    quintile_table,
)
from rhmfast.analysis.nulls import lam_for_copy_fraction, null_runs
from rhmfast.analysis.rundir import EvalRecord, Run, find_runs, load_run
from rhmfast.analysis.stats import (
    SpearmanCI,
    quantile_bins,
    rankdata,
    spearman,
    spearman_ci,
    spearman_permutation_p,
)

__all__ = [
    "null_runs",
    "lam_for_copy_fraction",
    "BlockTable",
    "EvalRecord",
    "QuintileTable",
    "Run",
    "SpearmanCI",
    "baseline_reproduced",
    "block_log_frequency",
    "blocks_at",
    "chance_among_valid",
    "chance_copy_fraction",
    "chance_draws",
    "depth_of",
    "find_runs",
    "first_copy_step",
    "first_excess_copy_step",
    "first_nll_step",
    "first_step",
    "heldout_bins",
    "load_run",
    "memorization_curves",
    "memorization_time",
    "overproduction",
    "overproduction_curve",
    "partial_memorization_window",
    "per_sample_table",
    "poisson_sf",
    "prototypicality_score",
    "quantile_bins",
    "quintile_curves",
    "quintile_table",
    "rankdata",
    "spearman",
    "spearman_ci",
    "spearman_permutation_p",
]
