"""Saved grammars: the ``.json`` and ``.npz`` formats of :meth:`rhmfast.RHM.save` and
their reader (:meth:`rhmfast.RHM.load`), which treats the file as untrusted
(:mod:`rhmfast._io.untrusted`).

Both formats (version 2) hold the five dimensions ``v, n, m, s, L``, the rule tables
(``rules_l``: ``(symbols_l, m, s)`` little-endian int64), the rule probabilities
(``rule_probs_l``: ``(symbols_l, m)`` float64), the root prior (``(n,)`` float64), a
format tag and version, and a SHA-256 of everything else (:func:`json_digest`,
:func:`_npz_digest`). Files are written atomically. Version-1 files (no checksum)
still load.

>>> import tempfile, pathlib, rhmfast
>>> g = rhmfast.RHM(3, 2, 2, 2, 2, seed=0)
>>> p = pathlib.Path(tempfile.mkdtemp()) / "g.npz"
>>> save(g, p)
>>> load(p, rhmfast.RHM.from_rules) == g
True
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rhmfast._args import integer
from rhmfast._io.atomic import atomic_write_bytes, atomic_write_text
from rhmfast._io.untrusted import InvalidFileError, NpzArchive, read_bytes, read_json

__all__ = ["FILE_FORMAT", "FILE_VERSION", "save", "load", "json_digest"]

FILE_FORMAT = "rhmfast.RHM"
FILE_VERSION = 2  # 2: with a SHA-256 of the contents; 1 (no checksum) is still read

# --- saved-file limits and checks (mirror rust/grammar/rules.rs) ------------------------

_PARAMS = ("v", "n", "m", "s", "L")
_READ_VERSIONS = (1, 2)
_MAX_V = 1 << 31  # MAX_V: symbols per level
_MAX_D = 1 << 24  # MAX_D: tokens per string
_MAX_L = 64
_MAX_RULE_ENTRIES = 1 << 28  # MAX_RULE_ENTRIES: sum_l symbols_l * m * s
# The largest JSON a grammar within those limits gives: at most 2**28 rule entries of
# <= 10 digits and ", ", 2**27 tuples' brackets, 2**27 rule and 2**27 root
# probabilities of <= 24 characters and ", ", and the keys.
_MAX_JSON_BYTES = (1 << 28) * 12 + (1 << 27) * 4 + 2 * (1 << 27) * 26 + (1 << 16)
_MAX_JSON_DEPTH = 6  # object > rules > level > symbol > rule > tuple
_JSON_KEYS = {"format", "version", *_PARAMS, "rules", "rule_probs", "root_prior"}
_NPZ_FORMAT_CHARS = 64  # the longest format tag read (ours has 11 characters)

Tables = tuple[dict[str, int], list[np.ndarray], list[np.ndarray], np.ndarray]


def save(grammar: Any, path: str | os.PathLike[str]) -> None:
    """Write ``grammar`` (an :class:`rhmfast.RHM`) to ``path``, ``.json`` or ``.npz``
    (chosen by the suffix), atomically (temporary file, fsync, rename)."""
    path = os.fspath(path)
    params = {k: getattr(grammar, k) for k in _PARAMS}
    if path.endswith(".json"):
        doc: dict[str, Any] = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            **params,
            "rules": [r.tolist() for r in grammar.rules],
            "rule_probs": [p.tolist() for p in grammar.rule_probs],
            "root_prior": grammar.root_prior.tolist(),
        }
        doc["sha256"] = json_digest(doc)
        atomic_write_text(path, json.dumps(doc))
    elif path.endswith(".npz"):
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FILE_FORMAT, dtype=f"<U{len(FILE_FORMAT)}"),
            "version": np.array(FILE_VERSION, dtype="<i8"),
            "params": np.array([params[k] for k in _PARAMS], dtype="<i8"),
            "root_prior": np.ascontiguousarray(grammar.root_prior, dtype="<f8"),
        }
        for level, (r, p) in enumerate(zip(grammar.rules, grammar.rule_probs, strict=True)):
            arrays[f"rules_{level}"] = np.ascontiguousarray(r, dtype="<i8")
            arrays[f"rule_probs_{level}"] = np.ascontiguousarray(p, dtype="<f8")
        arrays["sha256"] = np.frombuffer(_npz_digest(arrays), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(path, buf.getvalue())
    else:
        raise ValueError(f"path: {path!r} must end in .json or .npz")


def load(path: str | os.PathLike[str], build: Callable[..., Any]) -> Any:
    """The grammar saved at ``path``, built by ``build(rules, v=, rule_probs=,
    root_prior=)`` (:meth:`rhmfast.RHM.from_rules`, which re-validates it). Any damaged,
    truncated, edited or foreign file is one ValueError ``invalid grammar file PATH:
    ...``; an ``OSError`` from opening it (a missing file...) passes through."""
    path = os.fspath(path)
    if not path.endswith((".json", ".npz")):
        raise ValueError(f"path: {path!r} must end in .json or .npz")
    label = f"invalid grammar file {path!r}"
    try:
        params, rules, probs, prior = (
            _read_json(path, label) if path.endswith(".json") else _read_npz(path, label)
        )
        g = build(rules, v=params["v"], rule_probs=probs, root_prior=prior)
    except InvalidFileError:  # the reader's message already names the file
        raise
    except (ValueError, TypeError, OverflowError, MemoryError) as e:
        # any damage is one ValueError, whatever layer noticed it
        what = str(e) if isinstance(e, (ValueError, TypeError)) else f"{type(e).__name__}: {e}"
        raise ValueError(f"{label}: {what}") from None
    got = {k: getattr(g, k) for k in _PARAMS}
    if got != params:
        raise ValueError(f"{label}: header says {params}, tables give {got}")
    return g


def _check_header(fmt: Any, version: Any) -> int:
    """The file's version (1 or 2) once its format tag is ours, else ValueError."""
    if fmt != FILE_FORMAT:
        raise ValueError(f"format tag is {fmt!r}, expected {FILE_FORMAT!r}")
    try:
        return integer("version", version, lo=min(_READ_VERSIONS), hi=max(_READ_VERSIONS))
    except (TypeError, ValueError):
        raise ValueError(f"version is {version!r}, this rhmfast reads {list(_READ_VERSIONS)}") from None


def _check_params(raw: Mapping[str, Any]) -> dict[str, int]:
    """The five dimensions, each an int within the core's limits, or ValueError."""
    p = {
        k: integer(k, raw[k], lo=lo, hi=hi)
        for k, lo, hi in (("v", 1, _MAX_V), ("n", 1, _MAX_V), ("m", 1, _MAX_V), ("s", 2, _MAX_D), ("L", 1, _MAX_L))
    }
    v, n, m, s, L = (p[k] for k in _PARAMS)
    if s**L > _MAX_D:
        raise ValueError(f"d = s**L = {s}**{L} exceeds {_MAX_D}")
    entries = (n + (L - 1) * v) * m * s
    if entries > _MAX_RULE_ENTRIES:
        raise ValueError(
            f"the rule tables would hold {entries} entries (more than {_MAX_RULE_ENTRIES})"
        )
    return p


def _shapes(p: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """The shape of every content array of a grammar with dimensions ``p``."""
    out: dict[str, tuple[int, ...]] = {"root_prior": (p["n"],)}
    for level in range(p["L"]):
        syms = p["n"] if level == 0 else p["v"]
        out[f"rules_{level}"] = (syms, p["m"], p["s"])
        out[f"rule_probs_{level}"] = (syms, p["m"])
    return out


def json_digest(doc: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of every field but ``sha256``: keys
    sorted, no spaces (``json.dumps(..., sort_keys=True, separators=(",", ":"))``),
    UTF-8. Floats print as ``repr``, which reads back to the same float, so the
    digest of a loaded document equals the digest it was saved with."""
    content = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _npz_digest(arrays: Mapping[str, np.ndarray]) -> bytes:
    """SHA-256 over every member but ``sha256``, in name order: the line
    ``name dtype shape`` (e.g. ``rules_0 <i8 (6, 4, 2)``) then the C-order bytes."""
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != "sha256"):
        a = arrays[name]
        h.update(f"{name} {a.dtype.str} {tuple(a.shape)}\n".encode())
        h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
    return h.digest()


def _read_json(path: str, label: str) -> Tables:
    limit = f"any grammar within the limits ({_MAX_JSON_BYTES} bytes)"
    raw = read_bytes(path, max_bytes=_MAX_JSON_BYTES, name=label, limit_text=limit)
    # Python's JSON reads true as 1 inside an integer list; a grammar file has none.
    for word in (b"true", b"false", b"null"):
        if word in raw:
            raise ValueError(f"contains {word.decode()}, which no grammar file holds")
    doc = read_json(raw, max_bytes=_MAX_JSON_BYTES, max_depth=_MAX_JSON_DEPTH, name=label,
                    limit_text=limit)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    version = _check_header(doc.get("format"), doc.get("version"))
    keys = _JSON_KEYS | ({"sha256"} if version >= 2 else set())
    if set(doc) != keys:
        missing, extra = sorted(keys - set(doc)), sorted(set(doc) - keys)
        raise ValueError(f"version-{version} keys: missing {missing}, unexpected {extra}")
    if version >= 2 and doc["sha256"] != json_digest(doc):
        raise ValueError("checksum mismatch: the file changed after it was saved")
    params = _check_params(doc)
    shapes = _shapes(params)
    L = params["L"]
    tables: dict[str, np.ndarray] = {}
    for key, kinds in (("rules", "iu"), ("rule_probs", "iuf")):
        levels = doc[key]
        if not isinstance(levels, list) or len(levels) != L:
            got = len(levels) if isinstance(levels, list) else type(levels).__name__
            raise ValueError(f"{key}: {got} levels, expected L = {L}")
        for level, entry in enumerate(levels):
            tables[f"{key}_{level}"] = _json_array(
                f"{key}[{level}]", entry, kinds, shapes[f"{key}_{level}"]
            )
    prior = _json_array("root_prior", doc["root_prior"], "iuf", shapes["root_prior"])
    rules = [tables[f"rules_{level}"] for level in range(L)]
    probs = [tables[f"rule_probs_{level}"] for level in range(L)]
    return params, rules, probs, prior


def _json_array(name: str, value: Any, kinds: str, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    if a.dtype.kind not in kinds:
        raise ValueError(
            f"{name}: expected {'integers' if kinds == 'iu' else 'numbers'}, got dtype {a.dtype}"
        )
    return a


def _read_npz(path: str, label: str) -> Tables:
    """Reads an ``.npz`` member by member (:class:`~rhmfast._io.untrusted.NpzArchive`):
    each ``.npy`` header is parsed and its dtype, shape and sizes checked against the
    grammar's dimensions before any data is inflated."""
    arrays: dict[str, np.ndarray] = {}
    with NpzArchive(path, name=label) as z:

        def read(name: str, dtype: str | None, shape: tuple[int, ...]) -> np.ndarray:
            if name not in z:
                raise ValueError(f"member {name!r} is missing")
            arrays[name] = a = z.read(
                name,
                dtype=dtype,
                kinds="U",
                shape=shape,
                max_elements=math.prod(shape),
                max_itemsize=4 * _NPZ_FORMAT_CHARS if dtype is None else None,
                allow_fortran=False,
            )
            return a

        fmt = read("format", None, ()).item() if "format" in z else None
        version = _check_header(fmt, int(read("version", "<i8", ())) if "version" in z else None)
        params = _check_params(
            dict(zip(_PARAMS, (int(x) for x in read("params", "<i8", (5,))), strict=True))
        )
        shapes = _shapes(params)
        expected = {"format", "version", "params", *shapes} | (
            {"sha256"} if version >= 2 else set()
        )
        if set(z.names) != expected:
            missing, extra = sorted(expected - set(z.names)), sorted(set(z.names) - expected)
            raise ValueError(f"version-{version} members: missing {missing}, unexpected {extra}")
        for name, shape in shapes.items():
            read(name, "<i8" if name.startswith("rules_") else "<f8", shape)
        if version >= 2:
            digest = read("sha256", "|u1", (32,)).tobytes()
            if digest != _npz_digest({k: a for k, a in arrays.items() if k != "sha256"}):
                raise ValueError("checksum mismatch: the file changed after it was saved")
    L = params["L"]
    rules = [arrays[f"rules_{level}"] for level in range(L)]
    probs = [arrays[f"rule_probs_{level}"] for level in range(L)]
    return params, rules, probs, arrays["root_prior"]
