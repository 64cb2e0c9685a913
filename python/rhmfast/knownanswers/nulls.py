"""Null runs fitted to an observed run: known-answer memorizers that copy as often, and
make invalid strings as often, as the run did at every checkpoint, but memorize every
training string at the same rate. A statistic computed on them gives its own
false-positive rate on this run's regime. Needs the ``train`` extra (torch).

>>> import tempfile
>>> from rhmfast.diffusion import TrainConfig
>>> from rhmfast.knownanswers.memorizer import Memorizer
>>> from rhmfast.knownanswers.simulate import simulate_run
>>> root = tempfile.mkdtemp()
>>> cfg = TrainConfig(v=4, n=2, m=2, s=2, L=3, num_train=8, num_heldout=8, steps=64,
...     first_checkpoint=32, eval_samples=64, elbo_draws=0, sampling_reveal="one",
...     progress=False, run_dir=root + "/observed")
>>> observed = simulate_run(cfg, Memorizer(lam=[(0, 0.0), (64, 0.5)], tilt="logp", strength=4.0))
>>> nulls = null_runs(observed, root + "/nulls", num=2)
>>> [p.name for p in nulls]
['null_000', 'null_001']
"""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rhmfast._args import integer
from rhmfast.analysis.memorization import fitted_sharpening
from rhmfast.analysis.rundir import Run, load_run
from rhmfast.diffusion.config import TrainConfig
from rhmfast.diffusion.evaluation import copy_lookup
from rhmfast.diffusion.processes import make_process
from rhmfast.diffusion.reference import MixtureDenoiser
from rhmfast.diffusion.sampling import sample
from rhmfast.knownanswers.memorizer import Memorizer, string_weights
from rhmfast.knownanswers.simulate import SIMULATION_FILE, simulate_run
from rhmfast.stats.chance import memorized_fraction, training_mass
from rhmfast.stats.sharpening import sharpened_grammar
from rhmfast.trainset import build_data

__all__ = ["null_runs", "null_run_sets", "lam_for_copy_fraction"]

# mixture weights at which the sampler's copy fraction is measured (ancestral reveal)
_PILOT_LAMS = np.array([0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0])
_PILOT_SAMPLES = 2048


def lam_for_copy_fraction(config: Any, data: Any, weights: np.ndarray, targets: np.ndarray,
                          valid: np.ndarray | None = None, sharpening: float = 1.0) -> np.ndarray:
    """The mixture weight ``lam`` at which the run's sampler copies a fraction ``targets``
    of its samples, at whole-string validity ``valid`` (default 1). With one token
    revealed per step the sampler draws exactly from the mixture, and the simulator
    breaks grammar samples (chance copies among them) until a fraction ``valid`` of all
    samples parses, so the copy fraction is ``lam + (valid - lam) q`` with ``q`` the
    grammar's mass on the training strings, solved by
    :func:`rhmfast.stats.chance.memorized_fraction` (as the audit's count-space null,
    :func:`rhmfast.knownanswers.counts.fitted_lam`). The ancestral sampler copies less (it mixes
    strings within a step) and its copies are never broken, so there the copy fraction
    is measured at a grid of ``lam`` and inverted (monotone interpolation). Targets
    above what ``lam = 1`` reaches get ``lam = 1``. ``sharpening``: the exponent of the
    grammar component's rules (``q`` is then that grammar's mass on the training set)."""
    targets = np.clip(np.asarray(targets, np.float64), 0.0, 1.0)
    if config.sampling_reveal == "one" and config.process == "masked":
        q = training_mass(data.train_logp if sharpening == 1.0
                          else sharpened_grammar(data.grammar, sharpening).log_prob(data.train))
        if q >= 1.0:  # every grammar sample is a training string: no memorization needed
            return np.zeros_like(targets)
        f = 1.0 if valid is None else np.nan_to_num(np.asarray(valid, np.float64), nan=1.0)
        if np.ndim(f) and np.shape(f) != targets.shape:
            raise ValueError(f"valid: shape {np.shape(f)} must match targets' {targets.shape}")
        return np.clip(memorized_fraction(targets, np.maximum(f - targets, 0.0), q), 0.0, 1.0)
    process = make_process(config.process, config.v, config.d3pm_steps)
    lookup = copy_lookup(data)
    lams, copied = _PILOT_LAMS, np.empty(len(_PILOT_LAMS))
    component = sharpened_grammar(data.grammar, sharpening)
    for i, lam in enumerate(lams):
        model = MixtureDenoiser(component, data.train, float(lam), weights, process=process)
        x = sample(model, process, num=_PILOT_SAMPLES, d=data.d, seed=config.seed * 7919 + i,
                   steps=config.sampling_steps, device=torch.device("cpu"))
        copied[i] = float((lookup(x.astype(data.train.dtype)) >= 0).mean())
    copied = np.maximum.accumulate(copied)  # monotone in lam up to sampling noise
    keep = np.concatenate([[True], np.diff(copied) > 0])
    return np.clip(np.interp(targets, copied[keep], lams[keep]), 0.0, 1.0)


def null_runs(
    run: Run | str | pathlib.Path,
    out: str | pathlib.Path,
    *,
    num: int = 20,
    seed: int = 0,
    elbo: bool = False,
    over_production: bool = False,
) -> list[pathlib.Path]:
    """``num`` simulated runs under ``out`` (``null_000``, ...), each a uniform-weight
    memorizer on the observed run's data, grammar and checkpoints, with ``lam(t)``
    fitted so its copy fraction follows the run's and its per-level validity capped at
    the run's. They differ only in their sampling seeds (``seed + k``). ``elbo=False``
    skips the likelihood bound (NaN), which the copy statistics do not need.
    ``over_production=True`` also draws their grammar component from the grammar
    sharpened to the run's fitted exponent
    (:func:`rhmfast.analysis.memorization.fitted_sharpening`): a null that over-produces
    common rules as the run does, for a statistic whose look-alike is over-production
    (not for one that measures it). Existing null runs of the same config and memorizer
    are reused (a simulation is a pure function of the two; ``simulate_run`` rewrites
    another memorizer's).
    """
    observed = run if isinstance(run, Run) else load_run(run)
    num = integer("num", num, lo=1, hi=10_000)
    seed = integer("seed", seed)
    if not observed.config:
        raise ValueError(f"run {str(observed.path)!r}: no config.toml; null runs need the run's TrainConfig")
    config = TrainConfig.from_dict(observed.config)
    if config.data_path:
        raise ValueError(f"run {str(observed.path)!r}: trained on data_path strings; null runs need its grammar")
    if not len(observed.steps):
        raise ValueError(f"run {str(observed.path)!r}: no evaluations to fit")
    data = build_data(config)
    if not np.array_equal(data.train, observed.train):
        raise ValueError(f"run {str(observed.path)!r}: its data.npz is not what its config.toml draws")
    steps = observed.steps.astype(np.float64)
    copied = observed.copy_counts.sum(1) / np.maximum(observed.num_samples, 1)
    beta = fitted_sharpening(observed) if over_production else 1.0
    lam = lam_for_copy_fraction(config, data, string_weights(data.train, data.train_logp, config.s, "none", 1.0), copied,
                                observed.valid_fraction, sharpening=beta)
    validity = {
        level: list(zip(steps.tolist(), observed.valid_levels_fraction[:, level].tolist()))
        for level in range(observed.valid_levels_fraction.shape[1])
    }
    memorizer = Memorizer(lam=list(zip(steps.tolist(), lam.tolist())), validity=validity,
                          sharpen=beta)
    root = pathlib.Path(out)
    paths = []
    for k in range(num):
        path = root / f"null_{k:03d}"
        cfg = config.replace(run_dir=str(path), seed=seed + k, elbo_draws=config.elbo_draws if elbo else 0,
                             progress=False)
        _drop_stale(path, cfg)  # another memorizer's run: simulate_run rewrites it
        paths.append(simulate_run(cfg, memorizer))
    return paths


def _drop_stale(path: pathlib.Path, config: Any) -> None:
    """Remove a finished simulation at ``path`` made with another config (say, another
    sampling seed): null runs are derived data, rewritten rather than refused. Anything
    else there (a trained run, an unfinished write) is left for ``simulate_run`` to refuse."""
    stored = path / "config.toml"
    if (path / SIMULATION_FILE).exists() and stored.exists() and TrainConfig.from_toml(stored) != config:
        shutil.rmtree(path)


def null_run_sets(exp_dir: str | pathlib.Path, runs: Sequence[Run], num: int, *,
                  over_production: bool = False) -> list[list[Run]]:
    """``num`` null run sets: set ``k`` holds null run ``k`` of every observed run (fitted
    to it by :func:`null_runs`, with ``over_production``, under ``exp_dir/nulls/RUN``;
    reused when there). Null run ``k`` of every observed run has sampling seed
    ``1_000_000 + k`` (seeding them per observed run lowered the prototypes micro
    suite's power below 80%)."""
    per_run = [null_runs(r, pathlib.Path(exp_dir) / "nulls" / r.name, num=num, seed=1_000_000,
                         over_production=over_production) for r in runs]
    return [[load_run(paths[k]) for paths in per_run] for k in range(num)]
