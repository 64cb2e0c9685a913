"""Known answers for an experiment's verdict: the decisions its statistics take on
run sets written by simulated memorizers whose truth is known, each against null runs
fitted to it exactly as ``rhmfast experiment`` fits them. A memorizer that memorizes
every string at the same rate must give "no effect detected" in about ``1 - alpha`` of
simulation seeds; one with a real effect must give its direction. The tests run this
at micro sizes, ``benches/calibrate.py`` at the quick presets (docs/RESULTS.md).

The experiment is passed in (any object with ``plan(settings)``, ``null_tests(runs,
nulls, settings)`` and optionally ``NEEDS_NULL_RUNS``), so this layer does not import
the experiments that sit above it.

>>> import types
>>> from rhmfast.stats import NullTest
>>> never = types.SimpleNamespace(plan=lambda settings: [], NEEDS_NULL_RUNS=False,
...     null_tests=lambda runs, nulls, settings: [NullTest.of("x", 0.0, (0, 0), [])])
>>> decisions(never, Memorizer(), {"null_runs": 0}, seeds=range(2), root="unused").tolist()
[[0], [0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.analysis.rundir import load_run
from rhmfast.diffusion.config import TrainConfig
from rhmfast.knownanswers.memorizer import Memorizer
from rhmfast.knownanswers.nulls import null_run_sets
from rhmfast.knownanswers.simulate import simulate_run

__all__ = ["decisions"]


def decisions(experiment: Any, memorizer: Any | Callable[[Mapping[str, Any]], Any], settings: dict[str, Any], *,
              seeds: Iterable[int], root: str | Path) -> np.ndarray:
    """``(S, K)`` decisions (+1, -1 or 0) of the ``experiment``'s ``K`` statistics (the
    first is the verdict's) on ``S`` simulated run sets, one per simulation seed: the
    experiment's plan under ``settings`` (resolved, e.g. by
    ``presets.resolve_settings``), every run written by ``memorizer`` (a ``Memorizer``,
    or a function of the run's ``RunSpec.params`` returning one: a sweep's effect) with its sampling
    and data seeds offset by ``1000 * (seed + 1)`` (fresh data per simulation seed), then read against
    ``settings["null_runs"]`` null run sets fitted to it (under ``root/sSEED/nulls``;
    none for an experiment whose module sets ``NEEDS_NULL_RUNS = False``; drawing from
    the grammar sharpened as each run over-produces where ``settings["nulls_over_produce"]``)."""
    if not (callable(getattr(experiment, "plan", None)) and callable(getattr(experiment, "null_tests", None))):
        raise TypeError("experiment must have plan(settings) and null_tests(runs, nulls, settings) "
                        "(an experiment module, e.g. rhmfast.experiments.prototypes)")
    module = experiment
    needs_nulls = getattr(module, "NEEDS_NULL_RUNS", True)
    if not isinstance(memorizer, Memorizer) and not callable(memorizer):
        raise TypeError(f"memorizer must be a Memorizer or a function of RunSpec.params returning one, "
                        f"not {type(memorizer).__name__}")
    out = []
    for k in seeds:
        exp_dir = Path(root) / f"s{k}"
        runs = []
        shared: dict[int, int] = {}  # training seed -> runs so far with it
        for spec in module.plan(settings):
            # fresh training data and sampling for every simulation seed, so the seeds are
            # independent draws (with shared data, their null sets nearly coincide and the
            # false-positive rates of different seeds are strongly correlated)
            offset = 1000 * (int(k) + 1)
            # runs of a sweep that share a training seed get their own sampling seeds (a
            # trained model's samples differ between runs): with one stream for all, a
            # sweep's clocks would differ only by their chance copies, not by sampling noise
            base = int(spec.train.get("seed", 0))
            within = shared.get(base, 0)
            shared[base] = within + 1
            train = dict(spec.train, seed=offset + base + 1_000_000_000 * within,
                         data_seed=offset + int(spec.train.get("data_seed", 0)))
            mem = memorizer if isinstance(memorizer, Memorizer) else memorizer(spec.params)
            runs.append(load_run(simulate_run(TrainConfig.from_dict(
                {**train, "run_dir": str(exp_dir / "runs" / spec.name), "progress": False}), mem)))
        nulls = (null_run_sets(exp_dir, runs, int(settings["null_runs"]),
                               over_production=bool(settings.get("nulls_over_produce", False))) if needs_nulls else [])
        out.append([t.decision for t in module.null_tests(runs, nulls, settings)])
    return np.asarray(out, np.int64)
