"""Judge any model's samples against a data set written by :mod:`rhmfast.data`.

``rhmfast audit DATASET SAMPLES... [--out DIR]`` (or :func:`audit`): exact copies (and of
which training strings) beside the chance count of a model that learned the grammar and
memorized nothing, per prototypicality quintile; longest match with the training set,
per-level validity and block novelty, over-production of blocks against training and
grammar frequencies (all from :func:`rhmfast.memorization_report`, each beside the same
quantity on a fresh draw from the grammar of the same size); with several training
steps (``step=1000:samples.npy``) the same as curves. Two calibrated statistics
(:mod:`rhmfast.analysis.excess`), each against a null computed without a model:

- **memorization**: mean excess copies per training string, training strings minus
  held-out strings of matched log p (:func:`~rhmfast.analysis.excess.excess_copies`).
  Null: run sets of a model that learned the grammar and memorized nothing (as many
  valid samples per step, drawn from the grammar, counted on the same strings). It
  assumes the non-memorized samples follow the grammar's distribution; the held-out
  control cancels departures that reach training and held-out strings of the same log
  p alike in expectation, not in spread. (A permutation of the train / held-out labels
  was tried and rejected: the data set's two sets are not exchangeable within log p
  bins, which made it reject 12% of null seeds.)
- **prototypes first**: the most minus the least prototypical quintile's excess copies
  (:func:`~rhmfast.analysis.excess.quintile_contrast`; by training-set block
  frequency, and by log p). Null: null run sets fitted to the observed samples, a
  memorizer that copies as often at every step but every training string at the same
  rate, its other draws from the grammar (the known-answer mixture in count space,
  :mod:`rhmfast.knownanswers.counts`).

numpy only; figures when matplotlib is installed.

>>> import tempfile, pathlib, numpy as np
>>> import rhmfast.data
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> ds = rhmfast.data.load(rhmfast.data.write(root / "rhm", L=3, num_train=100, num_heldout=100))
>>> samples = np.concatenate([ds.train[:5], ds.grammar.sample(195, seed=1)])
>>> res = audit(ds, [SampleSet("model", None, None, samples)], out=root / "audit", num_null=19, num_boot=20)
>>> res["sets"][0]["copies"]["train_index"][:5]
[0, 1, 2, 3, 4]
>>> sorted(p.name for p in (root / "audit").iterdir() if p.is_file())
['report.html', 'report.md', 'results.json']
"""

from __future__ import annotations

from rhmfast.audit.runner import MAX_NUM_BOOT, MAX_NUM_NULL, audit
from rhmfast.audit.samples import SampleSet, parse_sample_spec, read_sample_sets
from rhmfast.audit.statistics import count_copies, memorization_test, prototype_test

__all__ = ["SampleSet", "parse_sample_spec", "read_sample_sets", "audit", "count_copies", "memorization_test",
           "prototype_test", "MAX_NUM_NULL", "MAX_NUM_BOOT"]
