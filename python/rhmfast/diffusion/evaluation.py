"""The evaluation record of a run: checkpoint steps, the copy lookup, and what each
evaluation writes (``eval/step_XXXXXXXX.npz`` and a ``metrics.jsonl`` line).

Training (:mod:`rhmfast.diffusion.trainer`) and the known-answer memorizers
(:mod:`rhmfast.knownanswers.simulate`) both evaluate through :func:`evaluate`, so a
simulated run and a trained one hold the same record; :mod:`rhmfast.analysis` reads it.

>>> checkpoint_steps(64, 16, 1)
[16, 32, 64]
"""

from __future__ import annotations

import io
import pathlib
from typing import Any

import numpy as np
import torch
from torch import nn

from rhmfast._io.atomic import atomic_write_bytes
from rhmfast.diffusion.config import TrainConfig
from rhmfast.diffusion.elbo import elbo_nll
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess
from rhmfast.diffusion.sampling import sample
from rhmfast.index import TrainingIndex, memorized
from rhmfast.trainset import RunData

__all__ = ["IGNORED_ON_RESTART", "checkpoint_steps", "check_run_dir", "copy_lookup", "evaluate", "save_eval"]

IGNORED_ON_RESTART = ("run_dir", "progress")  # keys a restart may change


def checkpoint_steps(steps: int, first: int, per_octave: int) -> list[int]:
    """Log-spaced steps ``round(first * 2**(k / per_octave))`` up to ``steps``, plus ``steps``.

    >>> checkpoint_steps(100, 16, 2)
    [16, 23, 32, 45, 64, 91, 100]
    """
    out = set()
    k = 0
    while True:
        s = int(round(first * 2 ** (k / per_octave)))
        if s > steps:
            break
        out.add(s)
        k += 1
    out.add(steps)
    return sorted(out)


def check_run_dir(config: TrainConfig, run: pathlib.Path) -> None:
    """Refuse a run directory whose stored config.toml differs from ``config``."""
    path = run / "config.toml"
    if path.exists():
        stored = TrainConfig.from_toml(path)
        diffs = [
            f"{k} = {getattr(stored, k)!r} (stored) vs {getattr(config, k)!r}"
            for k in stored.to_dict()
            if k not in IGNORED_ON_RESTART and getattr(stored, k) != getattr(config, k)
        ]
        if diffs:
            raise ValueError(
                f"run_dir {str(run)!r} already holds a different config: " + "; ".join(diffs)
            )


def copy_lookup(data: RunData) -> Any:
    """``lookup(samples) -> copy_of (B,) int64``: the smallest index of the training
    string each sample copies, -1 if none (suffix index over the training set)."""
    index = TrainingIndex(data.train)

    def lookup(samples: np.ndarray) -> np.ndarray:
        _, which = memorized(samples, index, return_index=True)
        return np.asarray(which, dtype=np.int64)

    return lookup


def evaluate(
    model: nn.Module,
    process: MaskedProcess | D3PMProcess,
    data: RunData,
    config: TrainConfig,
    step: int,
    device: torch.device,
    copy_lookup: Any,
    samples: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Sample (unless ``samples`` are given), check copies and validity, and bound every
    string's likelihood. Any ``Denoiser`` goes: the trainer passes its EMA model,
    :mod:`rhmfast.knownanswers.simulate` an exact reference denoiser."""
    bf16 = config.bf16 and device.type == "cuda"
    d, L = data.d, config.L
    model.eval()
    if samples is None:
        samples = sample(
            model,
            process,
            num=config.eval_samples,
            d=d,
            seed=config.seed * 1_000_003 + step,
            steps=config.sampling_steps,
            reveal=config.sampling_reveal,
            device=device,
            bf16=bf16,
        ).astype(data.train.dtype)
    B = len(samples)
    copy_of = copy_lookup(samples) if B else np.zeros(0, np.int64)
    if data.grammar is not None and B:
        parsed = data.grammar.check(samples)
        valid = np.asarray(parsed.valid, dtype=bool)
        valid_levels = np.asarray(parsed.valid_levels, dtype=bool).reshape(B, L)
    else:
        valid = np.zeros(B, dtype=bool)
        valid_levels = np.zeros((B, L if data.grammar is not None else 0), dtype=bool)

    def nll(x: np.ndarray, salt: int) -> np.ndarray:
        if config.elbo_draws == 0 or len(x) == 0:
            return np.full(len(x), np.nan)
        return elbo_nll(
            model,
            process,
            x,
            draws=config.elbo_draws,
            seed=config.seed * 1_000_003 + salt,
            device=device,
            bf16=bf16,
        )

    train_nll = nll(data.train, 1)  # fixed noise seeds: checkpoints are compared on equal terms
    heldout_nll = nll(data.heldout, 2)
    model.train()

    def mean(a: np.ndarray) -> float | None:
        return float(a.mean()) if len(a) and np.isfinite(a).all() else None

    tm, hm = mean(train_nll), mean(heldout_nll)
    record = {
        "kind": "eval",
        "step": step,
        "copy_fraction": float((copy_of >= 0).mean()) if B else None,
        "distinct_copies": int(len(np.unique(copy_of[copy_of >= 0]))),
        "valid_fraction": float(valid.mean()) if (B and data.grammar is not None) else None,
        "valid_levels": [float(x) for x in valid_levels.mean(0)] if B else [],
        "train_loss": None if tm is None else tm / d,
        "heldout_loss": None if hm is None else hm / d,
        "train_nll_mean": tm,
        "heldout_nll_mean": hm,
    }
    arrays = {
        "samples": samples,
        "copy_of": copy_of,
        "valid": valid,
        "valid_levels": valid_levels,
        "train_nll": train_nll,
        "heldout_nll": heldout_nll,
        "step": np.int64(step),
    }
    return record, arrays


def save_eval(path: pathlib.Path, arrays: dict[str, np.ndarray], *, durable: bool = True) -> None:
    """Write one evaluation's arrays to ``eval/step_XXXXXXXX.npz`` atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path, buf.getvalue(), durable=durable)
