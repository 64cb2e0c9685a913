"""Samples from a finished run: its EMA weights at a checkpoint, or an exact reference
denoiser (grammar, training set or their mixture) through the run's own sampler.

>>> import tempfile, numpy as np, pathlib
>>> from rhmfast.diffusion import TrainConfig, train
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> np.savez(tmp / "tok.npz", train=np.zeros((4, 4), np.int64))
>>> run = train(TrainConfig(run_dir=str(tmp / "run"), data_path=str(tmp / "tok.npz"),
...     v=2, s=2, L=2, width=8, depth=1, heads=2, steps=2, batch_size=4,
...     first_checkpoint=2, eval_samples=0, elbo_draws=0, progress=False))
>>> path = generate_from_run(run, num=3, seed=1, device="cpu")
>>> path.name, np.load(path).shape
('step_00000002_seed_1.npy', (3, 4))
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
from torch import nn

from rhmfast._args import integer
from rhmfast._io.atomic import atomic_write_bytes
from rhmfast.diffusion import checkpoint as ckpt
from rhmfast.diffusion.config import DEVICES, TrainConfig, available_memory
from rhmfast.diffusion.distributed import env_int, resolve_device
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess, make_process
from rhmfast.diffusion.reference import EmpiricalDenoiser, GrammarDenoiser, MixtureDenoiser
from rhmfast.diffusion.sampling import sample
from rhmfast.diffusion.trainer import load_weights, model_for
from rhmfast.grammar import RHM
from rhmfast.trainset import RunData, load_data

__all__ = ["generate_from_run"]


def generate_from_run(
    run_dir: str | os.PathLike[str],
    *,
    step: int | None = None,
    num: int = 1024,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    device: str | None = None,
    reference: str | None = None,
    lam: float = 0.0,
) -> pathlib.Path:
    """Sample ``num`` strings from a run's EMA weights at checkpoint ``step`` (default:
    the latest readable one); writes an ``.npy`` (default
    ``RUN/generated/step_XXXXXXXX_seed_S.npy``) and returns its path. ``device``
    (one of ``TrainConfig``'s) overrides the run's; no process group is joined.
    ``reference`` samples with the run's sampler from an exact denoiser instead of the
    checkpoint: ``"grammar"`` (the run's grammar.json), ``"train"`` (its training set)
    or ``"mixture"`` (``(1 - lam)`` grammar + ``lam`` training set); default file
    ``RUN/generated/REFERENCE_seed_S.npy``.
    """
    run = pathlib.Path(run_dir)
    cfg_path = run / "config.toml"
    if not cfg_path.is_file():
        raise ValueError(f"run_dir {str(run)!r} holds no config.toml")
    num, seed = integer("num", num), integer("seed", seed)
    step = None if step is None else integer("step", step)
    if device is not None and device not in DEVICES:
        raise ValueError(f"device = {device!r}: must be one of {DEVICES}")
    target = None if out is None else pathlib.Path(out)
    if target is not None and target.is_dir():
        raise ValueError(f"out = {str(target)!r}: is a directory; give the path of an .npy file")
    config = TrainConfig.from_toml(cfg_path)
    data = load_data(run / "data.npz", config)  # d and dtype of the strings; validated
    d = data.d
    # refused before anything is allocated: int64 samples, their token copy, one batch
    per_row = 32 * config.width + 24 * (config.v + 1)
    need = num * d * (8 + data.train.dtype.itemsize) + min(num, 1024) * d * per_row
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(
            f"num = {num}: {num} samples of {d} tokens need about {need} bytes "
            f"({need / 2**30:.3g} GiB); only {free} bytes ({free / 2**30:.3g} GiB) are available"
        )
    dev = resolve_device(device or config.device, env_int("LOCAL_RANK", 0))
    if reference is not None:
        model, process, name = _reference_model(run, config, data, reference, lam, step)
    else:
        model, process, step = _checkpoint_model(run, config, d, step)
        name = f"step_{step:08d}"
    model.to(dev).eval()
    x = sample(
        model,
        process,
        num=num,
        d=d,
        seed=seed,
        steps=config.sampling_steps,
        reveal=config.sampling_reveal,
        device=dev,
        bf16=config.bf16 and dev.type == "cuda",
    ).astype(data.train.dtype)
    if target is None:
        target = run / "generated" / f"{name}_seed_{seed}.npy"
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    atomic_write_bytes(target, buf.getvalue())
    return target


def _reference_model(
    run: pathlib.Path, config: TrainConfig, data: RunData, reference: str, lam: float, step: int | None
) -> tuple[nn.Module, MaskedProcess | D3PMProcess, str]:
    kinds = ("grammar", "train", "mixture")
    if reference not in kinds:
        raise ValueError(f"reference = {reference!r}: must be one of {kinds}")
    if step is not None:
        raise ValueError("step: a reference denoiser has no checkpoint; give step or reference, not both")
    process = make_process(config.process, config.v, config.d3pm_steps)
    if reference == "train":
        return EmpiricalDenoiser(data.train, v=config.v, process=process), process, "train"
    if not (run / "grammar.json").is_file():
        raise ValueError(f"reference = {reference!r}: run_dir {str(run)!r} holds no grammar.json")
    g = RHM.load(str(run / "grammar.json"))
    if reference == "grammar":
        return GrammarDenoiser(g, process=process), process, "grammar"
    return MixtureDenoiser(g, data.train, lam, process=process), process, f"mixture_{lam:g}"


def _checkpoint_model(
    run: pathlib.Path, config: TrainConfig, d: int, step: int | None
) -> tuple[nn.Module, MaskedProcess | D3PMProcess, int]:
    ckdir = run / "checkpoints"
    if step is None:
        damaged: list[str] = []
        state = ckpt.load_latest(ckdir, skipped=damaged)
        if state is None:
            why = f": {len(damaged)} damaged, the newest: {damaged[0]}" if damaged else ""
            raise ValueError(f"run_dir {str(run)!r} holds no readable checkpoint{why}")
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            warnings.warn(f"{damaged[0]}{more}; using step {int(state['step'])}", stacklevel=2)
    else:
        path = ckpt.step_path(ckdir, step)
        if not path.exists():
            have = [s for s, _ in ckpt.list_checkpoints(ckdir)]
            raise ValueError(f"step = {step}: no checkpoint {path.name}; available steps: {have}")
        state = ckpt.load_checkpoint(path)
    process = make_process(config.process, config.v, config.d3pm_steps)
    model = model_for(config, process, d)
    load_weights(model, state["ema"], ckdir)
    return model, process, int(state["step"])
