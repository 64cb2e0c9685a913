"""Sample files for the audit: ``[step=N:]PATH`` specs, read and checked against the
data set before anything is written (:func:`rhmfast.data.read_strings`, the one reader
of string files).

>>> parse_sample_spec("step=1000:samples.npy")
(1000, PosixPath('samples.npy'))
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from rhmfast.data import read_strings

__all__ = ["SampleSet", "parse_sample_spec", "read_sample_sets"]

_MAX_STEP = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class SampleSet:
    """One file of samples: ``label``, training ``step`` (None when not given), the file."""

    label: str
    step: int | None
    path: pathlib.Path | None
    samples: np.ndarray


_SPEC = re.compile(r"step=([0-9]+):(.+)")


def parse_sample_spec(spec: str | os.PathLike[str]) -> tuple[int | None, pathlib.Path]:
    """``"step=1000:samples.npy"`` -> ``(1000, Path("samples.npy"))``; a bare path -> ``(None, path)``.

    >>> parse_sample_spec("step=1000:out/s.npy")
    (1000, PosixPath('out/s.npy'))
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"samples: expected a path or 'step=N:path', got {type(spec).__name__}")
    text = os.fspath(spec)
    m = _SPEC.fullmatch(text)
    if m:
        digits = m.group(1).lstrip("0")
        if len(digits) > 19 or int(digits or "0") > _MAX_STEP:
            raise ValueError(f"samples {text[:60]!r}: step N of step=N:PATH must be in [0, 2**63 - 1]")
        return int(m.group(1)), pathlib.Path(m.group(2))
    if text.startswith("step="):
        raise ValueError(f"samples {text!r}: expected step=N:PATH with N a non-negative integer")
    return None, pathlib.Path(text)


def read_sample_sets(specs: Sequence[str | os.PathLike[str]], dataset: Any) -> list[SampleSet]:
    """Read and check every sample file (against the data set's ``v`` and ``d``) before
    anything is computed; sets sorted by step. Either every file names its step or none."""
    if not specs:
        raise ValueError("samples: at least one sample file is needed")
    parsed = [parse_sample_spec(s) for s in specs]
    with_step = [st is not None for st, _ in parsed]
    if any(with_step) and not all(with_step):
        raise ValueError("samples: name the step of every file (step=N:PATH) or of none")
    steps = [st for st, _ in parsed if st is not None]
    if len(set(steps)) != len(steps):
        dup = next(s for s in steps if steps.count(s) > 1)
        raise ValueError(f"samples: step={dup} is given twice")
    v, d = int(dataset.grammar.v), int(dataset.grammar.d)
    sets = [SampleSet(f"step {st}" if st is not None else path.name, st, path, read_strings(path, v=v, d=d))
            for st, path in parsed]
    return sorted(sets, key=lambda s: int(s.step or 0)) if steps else sets
