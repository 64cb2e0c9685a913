"""The statistics core (numpy only): one module for each idea every experiment, table,
figure and the audit share.

- :mod:`~rhmfast.stats.chance`: the chance count of a model that memorized nothing;
- :mod:`~rhmfast.stats.nulltest`: a statistic against its null runs, and the verdict wording;
- :mod:`~rhmfast.stats.bootstrap`: the two-stage (seeds, then items) bootstrap;
- :mod:`~rhmfast.stats.prototypicality`: the prototypicality score of a training string;
- :mod:`~rhmfast.stats.ranks`: ranks, Spearman's rho, equal-count quantile bins;
- :mod:`~rhmfast.stats.sharpening`: over-production of common rules (the sharpened
  grammar and its fit to a model's grammar draws).

>>> from rhmfast.stats import spearman
>>> spearman(np.array([1, 2, 3]), np.array([3, 2, 1]))
-1.0
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the examples' namespace)

from rhmfast.stats.bootstrap import SpearmanCI, spearman_ci, two_stage_interval
from rhmfast.stats.chance import chance_copies, grammar_draws, memorized_fraction, training_mass
from rhmfast.stats.nulltest import NullTest, answer, verdict
from rhmfast.stats.prototypicality import block_log_frequency, prototypicality_score
from rhmfast.stats.ranks import quantile_bins, rankdata, spearman, spearman_permutation_p

__all__ = [
    "NullTest", "answer", "verdict",
    "two_stage_interval", "SpearmanCI", "spearman_ci",
    "training_mass", "grammar_draws", "chance_copies", "memorized_fraction",
    "block_log_frequency", "prototypicality_score",
    "rankdata", "spearman", "spearman_permutation_p", "quantile_bins",
]
