"""Atomic file writes (no torch, no numpy): the trainer's checkpoints and run files,
saved grammars, data sets, the experiments' settings, configs and tables and every
``results.json`` (:func:`rhmfast._io.jsonfile.write_json`) all go through here."""

from __future__ import annotations

import os
import pathlib

__all__ = ["atomic_write_bytes", "atomic_write_text"]


def atomic_write_bytes(path: str | pathlib.Path, data: bytes, *, durable: bool = True) -> None:
    """Write to a temporary file in the same folder, fsync, rename over ``path``, fsync
    the folder: a reader sees the old file or the complete new one, never a part.
    ``durable=False`` skips both fsyncs (still atomic for readers, but not kept across a
    power loss): for files that are recomputed when lost, such as simulated runs.

    >>> import tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "sub" / "x.txt"
    >>> atomic_write_bytes(p, b"ok"); p.read_bytes(), sorted(q.name for q in p.parent.iterdir())
    (b'ok', ['x.txt'])
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if not durable:
        return
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | pathlib.Path, text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8.

    >>> import tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.toml"
    >>> atomic_write_text(p, "x = 1\\n"); atomic_write_text(p, "x = 2\\n"); p.read_text()
    'x = 2\\n'
    """
    atomic_write_bytes(path, text.encode("utf-8"))
