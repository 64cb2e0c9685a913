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
