"""Writing synthetic run directories per the contract in docs/ARCHITECTURE.md (numpy only),
so the analysis and the experiment pipeline are tested with known answers, without torch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def write_run(
    path: Path,
    *,
    train: np.ndarray,
    heldout: np.ndarray,
    train_logp: np.ndarray,
    heldout_logp: np.ndarray,
    evals: Sequence[dict[str, Any]],
    config_toml: str = "",
    num_levels: int = 1,
) -> Path:
    """``evals``: dicts with ``step``, ``copy_of`` (B,), ``train_nll`` (P,), ``heldout_nll``
    (H,), optional ``samples`` (B, d) (default: the copied string, or an all-zero string
    when no copy), ``valid`` (B,), ``valid_levels`` (B, L)."""
    path = Path(path)
    (path / "eval").mkdir(parents=True, exist_ok=True)
    np.savez(path / "data.npz", train=train, heldout=heldout, train_logp=train_logp,
             heldout_logp=heldout_logp)
    if config_toml:
        (path / "config.toml").write_text(config_toml)
    lines = []
    for ev in evals:
        copy_of = np.asarray(ev["copy_of"], np.int64)
        samples = ev.get("samples")
        if samples is None:
            samples = np.where((copy_of >= 0)[:, None], train[np.maximum(copy_of, 0)], 0).astype(train.dtype)
        b = len(copy_of)
        valid = np.asarray(ev.get("valid", copy_of >= 0), bool)
        valid_levels = np.asarray(ev.get("valid_levels", np.repeat(valid[:, None], num_levels, 1)), bool)
        np.savez_compressed(
            path / "eval" / f"step_{ev['step']:08d}.npz",
            samples=samples, copy_of=copy_of, valid=valid, valid_levels=valid_levels,
            train_nll=np.asarray(ev["train_nll"], np.float64),
            heldout_nll=np.asarray(ev["heldout_nll"], np.float64),
            step=np.int64(ev["step"]),
        )
        lines.append(json.dumps({"kind": "eval", "step": int(ev["step"]),
                                 "copy_fraction": float((copy_of >= 0).mean()) if b else 0.0}))
    (path / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


def checkpoint_steps(first: int, per_octave: int, last: int) -> list[int]:
    """Log-spaced checkpoint steps from ``first`` to ``last`` (inclusive)."""
    out, j = set(), 0
    while True:
        s = int(round(first * 2 ** (j / per_octave)))
        if s >= last:
            break
        out.add(s)
        j += 1
    out.add(last)
    return sorted(out)


def fake_train(config_path: Path) -> Path:
    """A stand-in trainer with known behaviour, writing a contract run directory.

    Training string i (ranked by log p, most probable first) is memorized from step
    ``T0 * (1 + rank / P)``, ``T0 = 2 * num_train / max(1 + zipf_a, 1/4) * (1 + level)``
    (``level`` = the single tail level, 0 when all levels): prototypical strings first,
    time proportional to P, heavier tails (smaller a) later. Before that the generator
    emits the per-position modal string of the training set (a block over-producer).
    """
    from rhmfast._io.toml import load_toml

    cfg = load_toml(Path(config_path))
    run = Path(cfg["run_dir"])
    p, v, s, L = int(cfg["num_train"]), int(cfg["v"]), int(cfg["s"]), int(cfg["L"])
    d = s**L
    rng = np.random.default_rng([int(cfg["seed"]), int(cfg["data_seed"])])
    pool = rng.integers(0, v, size=(4 * (p + 64), d))
    pool = np.unique(pool, axis=0)
    pool = pool[rng.permutation(len(pool))]
    train = pool[:p]
    mode = np.array([np.bincount(train[:, j], minlength=v).argmax() for j in range(d)])
    keep = ~(train == mode).all(axis=1)
    train = np.concatenate([train[keep], pool[p:p + (p - keep.sum())]])[:p].astype(np.uint8)
    heldout = pool[-int(cfg["num_heldout"]):].astype(np.uint8)
    logp = np.log(0.01 / p) - 0.05 * np.arange(p)
    hlogp = np.log(0.01 / p) - 0.05 * np.arange(len(heldout))
    level = (cfg.get("zipf_levels") or [0])[0]
    t0 = 2 * p / max(1 + float(cfg["zipf_a"]), 0.25) * (1 + level)  # zipf_a = -1 (uniform): latest
    onset = t0 * (1 + np.arange(p) / p)
    b = int(cfg["eval_samples"])
    evals = []
    for step in checkpoint_steps(int(cfg["first_checkpoint"]), int(cfg["checkpoints_per_octave"]), int(cfg["steps"])):
        mem = np.flatnonzero(onset <= step)
        n_copy = int(round(b * len(mem) / p))
        copy_of = np.full(b, -1, np.int64)
        if len(mem):
            copy_of[:n_copy] = rng.choice(mem, size=n_copy)
        samples = np.where((copy_of >= 0)[:, None], train[np.maximum(copy_of, 0)], mode).astype(np.uint8)
        nll = -logp + np.where(onset <= step, -1.0, 1.0)
        evals.append(dict(step=step, copy_of=copy_of, samples=samples, train_nll=nll,
                          heldout_nll=-hlogp + 0.5))
    config_text = Path(config_path).read_text()
    write_run(run, train=train, heldout=heldout, train_logp=logp, heldout_logp=hlogp, evals=evals,
              config_toml=config_text, num_levels=L)
    return run
