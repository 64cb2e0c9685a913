"""Checkpoints: atomic writes, integrity checks, safe loading, fallback to older ones.

A checkpoint file holds ``{"format", "sha256", "payload"}`` where ``payload`` is the
``torch.save`` bytes of the state (as a uint8 tensor) and ``sha256`` their digest, so a
truncated or altered file is detected rather than half-loaded. Both layers are read
with ``torch.load(weights_only=True)``: loading never runs code from the file.

>>> import tempfile, pathlib, torch
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> save_checkpoint(d / "step_00000001.pt", {"step": 1, "w": torch.ones(2)})
>>> load_checkpoint(d / "step_00000001.pt")["step"]
1
"""

from __future__ import annotations

import hashlib
import io
import pathlib
import re
import warnings
from typing import Any

import torch

from rhmfast._fileio import atomic_write_bytes  # re-exported: the trainer's ckpt.atomic_write_bytes

FORMAT = "rhmfast-checkpoint-1"
STEP_RE = re.compile(r"^step_(\d{8})\.pt$")


class CorruptCheckpoint(ValueError):
    """A checkpoint file is truncated, altered or not a rhmfast checkpoint."""


def step_path(directory: str | pathlib.Path, step: int) -> pathlib.Path:
    return pathlib.Path(directory) / f"step_{step:08d}.pt"


def save_checkpoint(path: str | pathlib.Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (tensors, numbers, strings, lists, dicts)."""
    inner = io.BytesIO()
    torch.save(state, inner)
    payload = inner.getvalue()
    outer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8),
        },
        outer,
    )
    atomic_write_bytes(path, outer.getvalue())


def load_checkpoint(path: str | pathlib.Path) -> dict[str, Any]:
    """Load and verify a checkpoint; raise :class:`CorruptCheckpoint` if it is damaged."""
    path = pathlib.Path(path)
    try:
        outer = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, garbage bytes, forbidden globals
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} cannot be read: {err}") from None
    if not isinstance(outer, dict) or outer.get("format") != FORMAT:
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} is not a {FORMAT} file")
    payload = outer.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8:
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} has no payload")
    data = payload.numpy().tobytes()
    if hashlib.sha256(data).hexdigest() != outer.get("sha256"):
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} fails its sha256 check")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} payload cannot be read: {err}") from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} payload is not a dict")
    return state


def list_checkpoints(directory: str | pathlib.Path) -> list[tuple[int, pathlib.Path]]:
    """``(step, path)`` of every ``step_XXXXXXXX.pt`` in ``directory``, by step."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = STEP_RE.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_latest(
    directory: str | pathlib.Path, *, extra: list[pathlib.Path] | None = None
) -> dict[str, Any] | None:
    """The newest readable checkpoint (highest ``state["step"]``) among the step files
    in ``directory`` and the ``extra`` files (e.g. a rolling resume file). Damaged files
    are skipped with a warning and an older one is used. ``None`` when none is readable."""
    best: dict[str, Any] | None = None
    for path in extra or []:
        if path.exists():
            try:
                state = load_checkpoint(path)
            except CorruptCheckpoint as err:
                warnings.warn(f"{err}; falling back to an earlier checkpoint", stacklevel=2)
                continue
            if best is None or int(state["step"]) > int(best["step"]):
                best = state
    for step, path in reversed(list_checkpoints(directory)):
        if best is not None and step <= int(best["step"]):
            break
        try:
            return load_checkpoint(path)
        except CorruptCheckpoint as err:
            warnings.warn(f"{err}; falling back to an earlier checkpoint", stacklevel=2)
    return best
