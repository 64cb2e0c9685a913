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
import os
import pathlib
import re
import warnings
from typing import Any

import torch

# re-exported: the trainer's ckpt.atomic_write_bytes
from rhmfast._io.atomic import atomic_write_bytes

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
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} cannot be read: {_why(err)}") from None
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
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} payload cannot be read: {_why(err)}") from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(f"checkpoint {str(path)!r} payload is not a dict")
    return state


def _why(err: Exception) -> str:
    """torch's reason, without its advice to retry with ``weights_only=False`` (that
    would unpickle whatever the file holds)."""
    text = str(err)
    if "weights_only" in text or "Weights only" in text:
        return "not an archive of tensors and plain data; refused (never unpickled)"
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


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
    directory: str | pathlib.Path,
    *,
    extra: list[pathlib.Path] | None = None,
    skipped: list[str] | None = None,
) -> dict[str, Any] | None:
    """The newest readable checkpoint (highest ``state["step"]``) among the step files
    in ``directory`` and the ``extra`` files (e.g. a rolling resume file). Damaged files
    are skipped and an older one is used: their messages go to ``skipped`` when a list
    is given, else into one warning (not one per file). ``None`` when none is readable."""
    damaged: list[str] = []
    best: dict[str, Any] | None = None
    for path in extra or []:
        if path.exists():
            try:
                state = load_checkpoint(path)
            except CorruptCheckpoint as err:
                damaged.append(str(err))
                continue
            if best is None or int(state["step"]) > int(best["step"]):
                best = state
    for step, path in reversed(list_checkpoints(directory)):
        if best is not None and step <= int(best["step"]):
            break
        try:
            best = load_checkpoint(path)
            break
        except CorruptCheckpoint as err:
            damaged.append(str(err))
    if skipped is not None:
        skipped.extend(damaged)
    elif damaged:
        more = f" (and {len(damaged) - 1} more damaged)" if len(damaged) > 1 else ""
        warnings.warn(f"{damaged[0]}{more}; falling back to an earlier checkpoint", stacklevel=2)
    return best


# atomic_write_bytes's temporaries of step files and the rolling resume file
TEMP_RE = re.compile(r"^\.(step_\d{8}\.pt|resume\.pt)\.tmp(\d+)$")


def remove_stale_temporaries(directory: str | pathlib.Path) -> list[pathlib.Path]:
    """Delete the temporaries a killed checkpoint write left in ``directory`` (names
    ``.step_XXXXXXXX.pt.tmpPID``, ``.resume.pt.tmpPID``), except those of a live
    process other than this one (another writer still at work); returns those removed."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in directory.iterdir():
        m = TEMP_RE.match(p.name)
        if m is None or not p.is_file() or _alive(int(m.group(2))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:  # another resuming rank was faster
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process writes nothing while it resumes
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it there: leave the file
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # exists under another user: leave it
    return True
