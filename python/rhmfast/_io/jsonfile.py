"""JSON-ready values and atomic JSON files: every ``results.json`` (the audit's and the
experiments') is written by :func:`write_json`, and a record compared with one read
back from JSON (the simulator's truth) is made comparable by :func:`jsonable`.

>>> import numpy as np
>>> jsonable({"x": np.arange(2), "p": np.float32(0.5), 3: (1, float("inf"))})
{'x': [0, 1], 'p': 0.5, '3': [1, 'inf']}
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rhmfast._io.atomic import atomic_write_text

__all__ = ["jsonable", "write_json"]


def _key(k: Any) -> str:
    if isinstance(k, (bool, np.bool_)):
        return "true" if k else "false"  # as json.dumps writes a boolean key
    if k is None:
        return "null"
    if isinstance(k, np.generic):
        return str(k.item())
    return str(k)


def jsonable(x: Any) -> Any:
    """``x`` with only JSON types left, equal to what ``json.loads`` gives back after
    :func:`write_json`: numpy scalars and arrays become Python numbers and lists,
    tuples become lists, mapping keys strings (as ``json.dumps`` writes them), paths
    strings, dataclasses dicts of their fields; a non-finite float becomes its
    ``str`` (``'inf'``, ``'-inf'``, ``'nan'``), which strict JSON cannot hold.
    Anything else is a TypeError naming its type.

    >>> import dataclasses, pathlib
    >>> @dataclasses.dataclass
    ... class Point:
    ...     x: float
    ...     where: pathlib.Path
    >>> jsonable([Point(np.float64("nan"), pathlib.Path("a/b")), np.bool_(True)])
    [{'x': 'nan', 'where': 'a/b'}, True]
    >>> jsonable({1, 2})
    Traceback (most recent call last):
    ...
    TypeError: jsonable: cannot write a set to JSON
    """
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return int(x)
    if isinstance(x, float):
        return float(x) if math.isfinite(x) else str(float(x))
    if isinstance(x, (np.generic, np.ndarray)):
        return jsonable(x.tolist())
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: jsonable(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, Mapping):
        return {_key(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # array-likes (a torch tensor, a 0-d array-like)
        return jsonable(x.tolist())
    raise TypeError(f"jsonable: cannot write a {type(x).__name__} to JSON")


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1) -> None:
    """Write ``jsonable(obj)`` to ``path`` as strict JSON (no NaN) and a final newline,
    atomically (:func:`rhmfast._io.atomic.atomic_write_bytes`): a reader sees the old
    file or the whole new one.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> write_json(p, {"copies": np.array([1, 2]), "p": float("nan")})
    >>> json.loads(p.read_text())
    {'copies': [1, 2], 'p': 'nan'}
    """
    text = json.dumps(jsonable(obj), indent=indent, allow_nan=False)
    atomic_write_text(os.fspath(path), text + "\n")
