"""The audit's statistics on copy counts (numpy only): copies counted per string, the
memorization test (excess copies of training over held-out strings of matched log p)
and the prototypes-first test (most minus least prototypical quintile), each a
:class:`~rhmfast.stats.NullTest` against null run sets drawn in count space
(:mod:`rhmfast.knownanswers.counts`), and the verdict lines.

>>> first_occurrence(np.array([[0, 1], [1, 0], [0, 1]])).tolist()
[True, True, False]
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rhmfast.analysis.excess import excess_copies, quintile_contrast, string_sizes
from rhmfast.analysis.rundir import Run
from rhmfast.knownanswers.counts import fitted_lam, mixture_counts
from rhmfast.stats import NullTest, answer, two_stage_interval, verdict

__all__ = ["QUINTILES", "first_occurrence", "count_copies", "copy_run", "null_inputs", "memorization_test",
           "prototype_test", "verdicts"]

QUINTILES = 5


def first_occurrence(x: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the row is the first of the rows equal to it (where copies are counted)."""
    out = np.zeros(len(x), bool)
    if len(x):
        _, first = np.unique(x, axis=0, return_index=True)
        out[first] = True
    return out


def count_copies(samples: np.ndarray, index: Any, num: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B,)`` index of the string each sample equals (-1: none; the smallest index of
    equal strings) in the :class:`~rhmfast.TrainingIndex` ``index``, and ``(num,)`` counts."""
    which, _ = index.lookup(samples)
    which = np.asarray(which, np.int64)
    return which, np.bincount(which[which >= 0], minlength=num)


def copy_run(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, steps: np.ndarray) -> Any:
    """An in-memory :class:`~rhmfast.analysis.Run` with these copy counts, so the
    calibrated statistics of the experiments apply to it unchanged."""
    run = Run(path=pathlib.Path(dataset.path), config={}, train=dataset.train, heldout=dataset.heldout,
              train_logp=dataset.train_logp, heldout_logp=dataset.heldout_logp, steps=np.asarray(steps, np.int64))
    run.copy_counts = np.asarray(train_counts, np.int64)  # cached_property: the instance value wins
    run.heldout_copy_counts = np.asarray(heldout_counts, np.int64)
    return run


def null_inputs(dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ``p(x)`` of the training and held-out strings (zero on repeats, whose copies
    count at the first occurrence) and, per training row, the index of its first occurrence."""
    p_train = np.exp(dataset.train_logp) * first_occurrence(dataset.train)
    p_heldout = np.exp(dataset.heldout_logp) * first_occurrence(dataset.heldout)
    _, first, inverse = np.unique(dataset.train, axis=0, return_index=True, return_inverse=True)
    return p_train, p_heldout, first[np.ravel(inverse)]


def memorization_test(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, num_valid: np.ndarray, *,
                      num_null: int = 199, num_boot: int = 1000, seed: int = 0,
                      tick: Callable[[], object] | None = None) -> Any:
    """Mean excess copies per training string over all steps (training minus held-out
    strings of matched log p), as a :class:`~rhmfast.stats.NullTest`
    against ``num_null`` null run sets of a model that learned the grammar and memorized
    nothing: at every step ``num_valid`` draws from the grammar, counted on the same
    strings (so the statistic's own bias on this data set, from log p bins that match
    only roughly, is in the null too).

    ``train_counts (T, P)``, ``heldout_counts (T, H)``: copies of each string per step;
    ``num_valid (T,)``: valid samples per step."""
    name = "excess copies per training string"
    T, H = len(train_counts), len(dataset.heldout)
    if not H:
        return NullTest.of(name, float("nan"), (float("nan"),) * 2, [])
    run = copy_run(dataset, train_counts, heldout_counts, np.arange(T))
    upto = T - 1
    value = float(excess_copies(run, upto).mean())
    interval = two_stage_interval([run], string_sizes,
                                  lambda r, tr, ho: float(excess_copies(r, upto, strings=tr, heldout=ho).mean()),
                                  num_boot=num_boot, seed=seed)
    p_train, p_heldout, first_train_of = null_inputs(dataset)
    rng = np.random.default_rng(seed + 1)
    null = np.empty(num_null)
    nothing = np.zeros(T)  # a model that memorized nothing: lam = 0 at every step
    for k in range(num_null):
        tr, ho = mixture_counts(rng, p_train, p_heldout, first_train_of, nothing, num_valid)
        null[k] = float(excess_copies(copy_run(dataset, tr, ho, np.arange(T)), upto).mean())
        if tick is not None:
            tick()
    return NullTest.of(name, value, interval, null)


def prototype_test(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, num_valid: np.ndarray,
                   score: np.ndarray, *, name: str, num_null: int = 199, num_boot: int = 1000, seed: int = 0,
                   upto: Sequence[int] | None = None, tick: Callable[[], object] | None = None
                   ) -> tuple[Any, np.ndarray]:
    """Most minus least prototypical quintile (by ``score``) of excess copies per string
    over all steps, as a :class:`~rhmfast.stats.NullTest` against
    ``num_null`` null run sets fitted to the observed copy counts (every training string
    memorized at the same rate). Also returns ``(K, len(upto))``: the null statistic over
    steps ``0..u`` for each ``u`` of ``upto`` (the band of the curve)."""
    T = len(train_counts)
    ups = list(range(T)) if upto is None else list(upto)
    run = copy_run(dataset, train_counts, heldout_counts, np.arange(T))
    last = T - 1

    def stat(r: Any, u: int, tr: np.ndarray | None = None, ho: np.ndarray | None = None) -> float:
        sc = score if tr is None else score[tr]
        return quintile_contrast(excess_copies(r, u, strings=tr, heldout=ho), sc)

    value = stat(run, last)
    interval = two_stage_interval([run], string_sizes, lambda r, tr, ho: stat(r, last, tr, ho), num_boot=num_boot,
                                  seed=seed)
    p_train, p_heldout, first_train_of = null_inputs(dataset)
    rng = np.random.default_rng(seed + 2)
    curves = np.empty((num_null, len(ups)))
    null = np.empty(num_null)
    lam = fitted_lam(train_counts.sum(1), num_valid, float(p_train.sum()))
    for k in range(num_null):
        tr, ho = mixture_counts(rng, p_train, p_heldout, first_train_of, lam, num_valid)
        nr = copy_run(dataset, tr, ho, np.arange(T))
        curves[k] = [stat(nr, u) for u in ups]
        null[k] = curves[k, ups.index(last)] if last in ups else stat(nr, last)
        if tick is not None:
            tick()
    return NullTest.of(name, value, interval, null), curves


def verdicts(tests: Sequence[Any]) -> list[str]:
    what = ["Memorized (training strings copied beyond held-out strings of the same log p)?",
            "Prototypical strings memorized first (by training-set block frequency)?",
            "Prototypical strings memorized first (by log p)?"]
    # fewer training than held-out copies is no kind of memorization: it says the model's
    # string probabilities depart from the grammar's (the null assumes them)
    below = ["no (training strings copied less than held-out strings of the same log p: the model's string "
             "probabilities depart from the grammar's, which this null assumes)", "no, the opposite", "no, the opposite"]
    out = []
    for question, t, no in zip(what, tests, below):
        said = answer(t, above="yes", below=no, why=f"{t.name} undefined: no copies or no held-out strings")
        out.append(verdict(question, t, said, digits=3))
    return out
