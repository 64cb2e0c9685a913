"""Known-answer memorizers: run directories written by exact denoisers, not by training.

A simulated run has the contract of a training (``config.toml``, ``grammar.json``,
``data.npz``, ``metrics.jsonl``, ``eval/step_*.npz``; the same data and checkpoint steps
as :func:`~rhmfast.diffusion.train` with the same config), but its model at step ``t``
is the exact denoiser of

    ``(1 - lam(t)) p_grammar + lam(t) p_train(w)``

(:class:`~rhmfast.diffusion.reference.MixtureDenoiser`; the model itself is
:class:`~rhmfast.knownanswers.memorizer.Memorizer`): it memorizes a fraction
``lam(t)`` of its mass, spread over the training strings by the weights ``w``. Uniform
weights make memorization independent of the string (the null of every "which strings
are memorized first" question); tilted weights favour prototypical (``strength > 1``)
or atypical (``strength < 1``) strings by a known factor. Samples go through the real
sampler, copies through the suffix index, validity through the parser and likelihoods
through the real ELBO code (:func:`rhmfast.diffusion.evaluation.evaluate`), so
every statistic of the experiments can be run on a known answer in seconds.

A trained model also makes invalid strings (the levels it has not learned yet). A third
component reproduces that: ``validity`` gives, per level, the fraction of samples whose
level parses at each step, and samples of the grammar component are broken at the lowest
failing level (one subtree replaced by a derivation of a symbol the parent has no rule
for) until the simulated per-level validity meets the target. A grammar sample that
happens to be a training string (a chance copy) is broken like any other, so chance
copies come at the rate of valid samples, as the experiments' chance count assumes;
memorized samples stay intact. Through the real sampler (more than one token revealed
per step) the two components mix within a string, so there every copy is kept intact. It changes the samples only, not the likelihoods.

A trained model may also over-produce what is common ("slop"). ``sharpen`` reproduces
that with a known amount: the grammar component at step ``t`` is the grammar with the
same rules and rule probabilities proportional to ``p_rule ** beta(t)``, renormalized
per parent (:func:`rhmfast.stats.sharpening.sharpened_grammar`; ``beta = 1`` is the grammar itself), so common
rules, and the blocks built from them, are over-produced while every sample stays
valid. Its samples and its likelihoods (the ELBO) both come from that sharpened mixture.

>>> import tempfile
>>> from rhmfast.analysis import load_run
>>> from rhmfast.diffusion import TrainConfig
>>> from rhmfast.knownanswers.memorizer import Memorizer
>>> cfg = TrainConfig(v=4, n=2, m=2, s=2, L=3, num_train=8, num_heldout=8, steps=64,
...     first_checkpoint=32, eval_samples=64, elbo_draws=1, sampling_reveal="one", progress=False,
...     run_dir=tempfile.mkdtemp() + "/run")
>>> run = simulate_run(cfg, Memorizer(lam=1.0))
>>> r = load_run(run)
>>> {float(f) for f in r.copy_counts.sum(1) / r.num_samples}   # lam = 1: only copies
{1.0}
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import torch

from rhmfast._io.atomic import atomic_write_bytes, atomic_write_text
from rhmfast._io.jsonfile import jsonable
from rhmfast._io.untrusted import read_json
from rhmfast.diffusion.config import TrainConfig
from rhmfast.diffusion.evaluation import (
    check_run_dir,
    checkpoint_steps,
    copy_lookup,
    evaluate,
    save_eval,
)
from rhmfast.diffusion.processes import make_process
from rhmfast.diffusion.reference import MixtureDenoiser
from rhmfast.diffusion.sampling import sample
from rhmfast.knownanswers.memorizer import (
    Breaker,
    Memorizer,
    draw_mixture,
    impose_validity,
    onset_steps,
    schedule_at,
    string_weights,
)
from rhmfast.stats.sharpening import SHARPEN_RANGE, sharpened_grammar
from rhmfast.trainset import RunData, build_data, save_data

__all__ = ["SIMULATION_FILE", "simulate_run"]

SIMULATION_FILE = "simulation.json"


def simulate_run(config: TrainConfig, memorizer: Memorizer, *, device: str = "cpu") -> pathlib.Path:
    """Write the run directory ``config.run_dir`` of the known-answer ``memorizer``
    (same data and checkpoint steps as training with ``config``); returns its path.
    The truth (weights per training string, ``lam`` per checkpoint) goes to
    ``simulation.json`` beside the contract's files, last: a run that has it is
    complete, and rerunning with the same memorizer returns at once (evaluations are
    pure functions of the config and the memorizer)."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    if not isinstance(memorizer, Memorizer):
        raise TypeError(f"memorizer must be a Memorizer, not {type(memorizer).__name__}")
    if config.data_path:
        raise ValueError("TrainConfig.data_path: a simulated run needs the grammar (draw the data from it)")
    bad_levels = [lev for lev in memorizer.validity if lev >= config.L]
    if bad_levels:
        raise ValueError(f"validity: levels {bad_levels} do not exist (TrainConfig.L = {config.L})")
    run = pathlib.Path(config.run_dir)
    check_run_dir(config, run)
    truth_path = run / SIMULATION_FILE
    stored = read_json(truth_path, max_bytes=1 << 28, max_depth=8) if truth_path.exists() else {}
    if stored.get("memorizer") == jsonable(memorizer.describe()):
        return run  # written last: the run is complete, and a pure function of its settings
    truth_path.unlink(missing_ok=True)  # another memorizer's: its evaluations are replaced
    data = build_data(config)
    g = data.grammar
    weights = string_weights(data.train, data.train_logp, config.s, memorizer.tilt, memorizer.strength)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "config.toml").exists():
        atomic_write_bytes(run / "config.toml", config.to_toml().encode())
        g.save(str(run / "grammar.json"))
        save_data(run / "data.npz", data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of a few hundred strings: threads cost more than they give
    try:
        return _simulate(config, memorizer, run, data, weights, torch.device(device))
    finally:
        torch.set_num_threads(threads)


def _draw(model: MixtureDenoiser, process: Any, config: TrainConfig, data: RunData, lam: float,
          weights: np.ndarray, step: int, dev: torch.device, *, through_sampler: bool = False,
          grammar: Any = None, partial: float = 0.0) -> tuple[np.ndarray, np.ndarray | None]:
    """The evaluation samples of the memorizer at ``step`` and which of them the
    training component drew (None where that is unknown). One token revealed per step
    by the masked sampler from an exact denoiser draws exactly from the denoiser's prior
    (a product of exact conditionals), so there the mixture is drawn directly: a
    training string by ``weights`` with probability ``lam``, else a string of ``grammar``
    (the model's grammar component; default ``data.grammar``; tested against the
    sampler; ~10x faster). Otherwise through the real sampler, which mixes the two
    components within a string."""
    seed = config.seed * 1_000_003 + step
    if config.process == "masked" and config.sampling_reveal == "one" and not through_sampler:
        return draw_mixture(data.grammar if grammar is None else grammar, data.train, weights, lam,
                            config.eval_samples, seed, partial=partial)
    if partial:
        raise ValueError("Memorizer.partial needs the exact draws of one token revealed per step "
                         "(TrainConfig.process = 'masked', sampling_reveal = 'one')")
    x = sample(model, process, num=config.eval_samples, d=data.d, seed=seed, steps=config.sampling_steps,
               reveal=config.sampling_reveal, device=dev).astype(data.train.dtype)
    return x, None


def _simulate(config: TrainConfig, memorizer: Memorizer, run: pathlib.Path, data: RunData, weights: np.ndarray,
              dev: torch.device) -> pathlib.Path:
    g = data.grammar
    process = make_process(config.process, config.v, config.d3pm_steps)
    lookup = copy_lookup(data)
    steps = checkpoint_steps(config.steps, config.first_checkpoint, config.checkpoints_per_octave)
    breaker = Breaker(g, seed=config.seed * 1_000_003 + 7) if memorizer.validity else None
    lams, betas, lines = [], [], []
    onsets = None if memorizer.onsets is None else onset_steps(weights, memorizer.onsets, config.seed)
    if onsets is not None and not (config.process == "masked" and config.sampling_reveal == "one"):
        raise ValueError("Memorizer.onsets needs the exact draws of one token revealed per step "
                         "(TrainConfig.process = 'masked', sampling_reveal = 'one')")
    component: dict[float, Any] = {}  # beta -> the sharpened grammar (schedules are mostly flat)
    for step in steps:
        lam = schedule_at(memorizer.lam, step, "lam")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam at step {step} is {lam}: must lie in [0, 1]")
        lams.append(lam)
        beta = schedule_at(memorizer.sharpen, step, "sharpen")
        if not SHARPEN_RANGE[0] <= beta <= SHARPEN_RANGE[1]:
            raise ValueError(f"sharpen at step {step} is {beta}: must lie in [{SHARPEN_RANGE[0]}, {SHARPEN_RANGE[1]}]")
        betas.append(beta)
        if beta not in component:
            component[beta] = sharpened_grammar(g, beta)
        path = run / "eval" / f"step_{step:08d}.npz"
        partial = schedule_at(memorizer.partial, step, "partial")
        if not 0.0 <= lam + partial <= 1.0:
            raise ValueError(f"lam + partial at step {step} is {lam + partial}: must lie in [0, 1]")
        # with onsets, the strings whose onset has passed, each alike
        now = weights if onsets is None else (onsets <= step).astype(np.float64)
        model = MixtureDenoiser(component[beta], data.train, lam, now if now.sum() > 0 else weights, process=process)
        x, memorized = _draw(model, process, config, data, lam, now, step, dev, grammar=component[beta],
                             partial=partial)
        if breaker is not None and len(x):
            targets = {lev: schedule_at(s, step, f"validity[{lev}]") for lev, s in memorizer.validity.items()}
            if memorized is None:  # through the sampler: every copy counts as memorized
                memorized = lookup(x) >= 0
            x = impose_validity(x, memorized, breaker, targets, np.random.default_rng([config.seed, step, 3]))
        record, arrays = evaluate(model, process, data, config, step, dev, lookup, samples=x)
        record["lam"] = lam
        save_eval(path, arrays, durable=False)  # recomputed if lost; a kill cannot tear it
        lines.append(json.dumps(record) + "\n")
    atomic_write_bytes(run / "metrics.jsonl", "".join(lines).encode(), durable=False)
    truth = {"memorizer": memorizer.describe(), "steps": steps, "lam": lams, "sharpen": betas,
             "weights": weights.tolist()}
    if onsets is not None:
        truth["onsets"] = onsets.tolist()
    atomic_write_text(run / SIMULATION_FILE, json.dumps(truth) + "\n")
    return run
