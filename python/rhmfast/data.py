"""Data sets for any trainer: the grammar, training and held-out strings in three formats.

:func:`write` draws a data set with the trainer's own data builder
(:func:`rhmfast.trainset.build_data`, no torch needed), so a data set written with
given parameters holds exactly the strings a ``rhmfast train`` run with the same
:class:`~rhmfast.diffusion.config.TrainConfig` data keys trains on. A data set directory:

- ``grammar.json``: the grammar (:meth:`rhmfast.RHM.save`; read with :meth:`rhmfast.RHM.load`);
- ``train.npy``, ``heldout.npy``: ``(N, d)`` tokens (uint8 when ``v <= 256``, else uint16);
- ``train.txt``, ``heldout.txt``: one string per line, tokens separated by single spaces;
- ``train.jsonl``, ``heldout.jsonl``: one ``{"tokens": [...]}`` per line;
- ``train_logp.npy``, ``heldout_logp.npy``: exact ``log p(x)`` (nats, float64) of each string;
- ``dataset.json``: format, parameters and the SHA-256 of every other file;
- ``README.md``: what each file holds, every parameter and seed, and the command that
  regenerates the directory bit for bit.

:func:`read_strings` reads any of the three string formats (and users' sample files)
with one clear error naming the file and the line; :func:`load` opens a data set.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "rhm"
>>> _ = write(out, v=6, n=6, m=4, s=2, L=3, num_train=50, num_heldout=20)
>>> ds = load(out)
>>> ds.train.shape, ds.heldout.shape
((50, 8), (20, 8))
>>> bool((read_strings(out / "train.txt", v=6, d=8) == ds.train).all())
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np

from rhmfast._io.atomic import atomic_write_bytes, atomic_write_text
from rhmfast._io.untrusted import InvalidFileError, iter_jsonl, read_int_rows, read_json, read_npy
from rhmfast._tokens import check_tokens
from rhmfast.diffusion.config import TrainConfig
from rhmfast.grammar import RHM
from rhmfast.trainset import build_data

__all__ = ["DATA_KEYS", "Dataset", "write", "load", "read_strings", "regenerate_command", "FORMATS",
           "MAX_TOKENS", "MAX_TEXT_BYTES"]

#: the TrainConfig keys that decide a data set (everything else is training)
DATA_KEYS = ("v", "n", "m", "s", "L", "grammar_seed", "zipf_a", "zipf_levels", "num_train", "unique",
             "num_heldout", "data_seed")
#: file suffixes :func:`read_strings` reads
FORMATS = (".npy", ".txt", ".jsonl")
#: the most tokens one strings file (or log p file) may hold: 2**31
MAX_TOKENS = 1 << 31
#: the largest text (``.txt``) or JSON lines (``.jsonl``) strings file read: 2**31 bytes
MAX_TEXT_BYTES = 1 << 31
_FORMAT = "rhmfast.dataset"
_VERSION = 1
_SETS = ("train", "heldout")
_MAX_MANIFEST_BYTES = 1 << 20  # dataset.json: the parameters and ten checksums
_MAX_MANIFEST_DEPTH = 4  # object > params > zipf_levels
_MAX_JSONL_DEPTH = 8  # a line {"tokens": [...]} is 2 deep; deeper lines are refused unparsed
_TOKENS_LIMIT = f"the limit of {MAX_TOKENS} tokens per file (rhmfast.data.MAX_TOKENS)"
_TEXT_LIMIT = f"the limit of {MAX_TEXT_BYTES} bytes per file (rhmfast.data.MAX_TEXT_BYTES)"


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A data set directory, read and checked (:func:`load`)."""

    path: pathlib.Path
    params: dict[str, Any]
    grammar: Any  # rhmfast.RHM
    train: np.ndarray
    heldout: np.ndarray
    train_logp: np.ndarray
    heldout_logp: np.ndarray

    @property
    def d(self) -> int:
        return int(self.train.shape[1])


def _config(params: Mapping[str, Any]) -> Any:
    unknown = sorted(set(params) - set(DATA_KEYS))
    if unknown:
        raise TypeError(f"{unknown[0]!r}: not a data set parameter (they are: {', '.join(DATA_KEYS)})")
    return TrainConfig.from_dict(dict(params))


def _params(config: Any) -> dict[str, Any]:
    out = {k: getattr(config, k) for k in DATA_KEYS}
    out["zipf_levels"] = list(out["zipf_levels"])
    return out


def regenerate_command(params: Mapping[str, Any], out_dir: str | os.PathLike[str]) -> str:
    """The ``rhmfast data`` command that writes this data set.

    >>> regenerate_command({"v": 6, "unique": True, "zipf_levels": [0, 2]}, "d")
    'rhmfast data d --v 6 --unique --zipf-levels 0,2'
    """
    parts = ["rhmfast", "data", str(out_dir)]
    for key, value in params.items():
        flag = "--" + key.replace("_", "-")
        if key == "unique":
            parts.append("--unique" if value else "--no-unique")
        elif key == "zipf_levels":
            if value:
                parts += [flag, ",".join(str(int(v)) for v in value)]
        else:
            parts += [flag, repr(float(value)) if key == "zipf_a" else str(int(value))]
    return " ".join(parts)


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _text(x: np.ndarray) -> str:
    return "".join(" ".join(map(str, row)) + "\n" for row in x.tolist())


def _jsonl(x: np.ndarray) -> str:
    return "".join(json.dumps({"tokens": row}, separators=(",", ":")) + "\n" for row in x.tolist())


def _readme(params: Mapping[str, Any], out_dir: pathlib.Path, train: np.ndarray, heldout: np.ndarray) -> str:
    P, d = train.shape
    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in params.items())
    return f"""# RHM data set

Drawn by rhmfast from a Random Hierarchy Model grammar: {P} training strings and
{len(heldout)} held-out strings (disjoint from the training set) of d = {d} tokens each,
tokens in [0, v = {params['v']}).

| file | holds |
|---|---|
| `grammar.json` | the grammar (`rhmfast.RHM.load`): rules, rule probabilities, root prior, checksum |
| `train.npy`, `heldout.npy` | `(N, d)` token arrays ({train.dtype}) |
| `train.txt`, `heldout.txt` | one string per line, tokens separated by single spaces |
| `train.jsonl`, `heldout.jsonl` | one JSON object `{{"tokens": [...]}}` per line |
| `train_logp.npy`, `heldout_logp.npy` | exact log p(x) under the grammar (nats, float64), row by row |
| `dataset.json` | format, the parameters below and the SHA-256 of every other file |

Line k of the text and JSON lines files is row k-1 of the `.npy` array.

## Parameters (rhmfast TrainConfig data keys)

| key | value |
|---|---|
{rows}

`grammar_seed` draws the rules, `data_seed` the training and held-out strings; a
`rhmfast train` run whose TrainConfig has these keys trains on exactly these strings.

## Regenerate (bit for bit)

```
{regenerate_command(params, out_dir)}
```

Judge a model's samples against this data set with `rhmfast audit {out_dir} SAMPLES...`.
"""


def _sha256(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _read_manifest(path: pathlib.Path) -> dict[str, Any]:
    where = f"data set {str(path)!r}"
    try:
        doc = read_json(path / "dataset.json", max_bytes=_MAX_MANIFEST_BYTES, max_depth=_MAX_MANIFEST_DEPTH)
    except FileNotFoundError:
        raise ValueError(f"{where}: no dataset.json (not a directory written by `rhmfast data`)") from None
    except OSError as err:
        raise ValueError(f"{where}: dataset.json is unreadable ({err})") from None
    except InvalidFileError as err:
        raise ValueError(f"{where}: dataset.json is unreadable ({err.reason})") from None
    ok = (isinstance(doc, dict) and doc.get("format") == _FORMAT and doc.get("version") == _VERSION
          and isinstance(doc.get("params"), dict) and isinstance(doc.get("files"), dict))
    if not ok:
        raise ValueError(f"{where}: dataset.json is not a {_FORMAT} version {_VERSION} manifest")
    for name, digest in doc["files"].items():  # plain file names of this directory, never a path
        if name in ("", ".", "..") or "/" in name or "\\" in name or not isinstance(digest, str):
            raise ValueError(f"{where}: dataset.json lists {name!r}, which is not a file of the data set")
    return doc


def write(out_dir: str | os.PathLike[str], config: Any = None, **params: Any) -> pathlib.Path:
    """Draw a data set and write it to the new directory ``out_dir``; return its path.

    ``params`` are :class:`~rhmfast.diffusion.config.TrainConfig` data keys
    (:data:`DATA_KEYS`, TrainConfig's defaults for the rest), or pass a whole
    ``config`` (its data keys are used). The directory appears complete or not at all
    (written to a temporary sibling, then renamed). An existing ``out_dir`` holding the
    same data set is left as it is; any other existing, non-empty ``out_dir`` is refused.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "rhm"
    >>> sorted(p.name for p in write(out, L=2, num_train=10, num_heldout=5).iterdir())[:4]
    ['README.md', 'dataset.json', 'grammar.json', 'heldout.jsonl']
    >>> write(out, L=2, num_train=11)
    Traceback (most recent call last):
    ...
    ValueError: out_dir = ...: holds a different data set (num_train = 10, not 11); choose another directory
    """
    if config is not None:
        if params:
            raise TypeError("write: pass either config or data keys, not both")
        params = {k: getattr(config, k) for k in DATA_KEYS}
    cfg = _config(params)
    want = _params(cfg)
    out = pathlib.Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir = {str(out)!r}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "dataset.json").exists():
            raise ValueError(f"out_dir = {str(out)!r}: exists, is not empty and holds no data set; "
                             "choose another directory")
        have = _read_manifest(out)["params"]
        diff = [k for k in DATA_KEYS if have.get(k) != want[k]]
        if diff:
            k = diff[0]
            raise ValueError(f"out_dir = {str(out)!r}: holds a different data set ({k} = "
                             f"{json.dumps(have.get(k))}, not {json.dumps(want[k])}); choose another directory")
        load(out)  # the same parameters: check it is intact, then leave it
        return out

    data = build_data(cfg)  # the trainer's builder: one sampler of training sets
    files: dict[str, bytes] = {}
    for name, x, logp in (("train", data.train, data.train_logp), ("heldout", data.heldout, data.heldout_logp)):
        files[f"{name}.npy"] = _npy_bytes(x)
        files[f"{name}.txt"] = _text(x).encode()
        files[f"{name}.jsonl"] = _jsonl(x).encode()
        files[f"{name}_logp.npy"] = _npy_bytes(np.asarray(logp, np.float64))
    files["README.md"] = _readme(want, out, data.train, data.heldout).encode()

    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        for name, blob in files.items():
            atomic_write_bytes(tmp / name, blob)
        data.grammar.save(tmp / "grammar.json")
        digests = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        manifest = {"format": _FORMAT, "version": _VERSION, "params": want, "files": digests}
        atomic_write_text(tmp / "dataset.json", json.dumps(manifest, indent=1) + "\n")
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def load(path: str | os.PathLike[str]) -> Dataset:
    """Open a data set directory written by :func:`write`: every file's checksum is
    verified and the strings re-checked against the grammar (tokens, length, log p)."""
    root = pathlib.Path(path)
    where = f"data set {str(root)!r}"
    if not root.is_dir():
        raise ValueError(f"{where}: not a directory")
    doc = _read_manifest(root)
    for name, digest in doc["files"].items():
        f = root / str(name)
        if not f.is_file():
            raise ValueError(f"{where}: {name} is missing")
        if _sha256(f) != digest:
            raise ValueError(f"{where}: {name} does not match its checksum in dataset.json (modified or damaged)")
    for name in ("grammar.json", *(f"{s}{e}" for s in _SETS for e in (".npy", "_logp.npy"))):
        if name not in doc["files"]:
            raise ValueError(f"{where}: dataset.json lists no {name}")
    grammar = RHM.load(root / "grammar.json")
    arrays = {}
    for s in _SETS:
        arrays[s] = read_strings(root / f"{s}.npy", v=grammar.v, d=grammar.d, allow_empty=s == "heldout")
        try:
            logp = read_npy(root / f"{s}_logp.npy", max_elements=MAX_TOKENS, kinds="f", limit_text=_TOKENS_LIMIT)
        except OSError as err:
            raise ValueError(f"{where}: {s}_logp.npy is unreadable ({err})") from None
        except InvalidFileError as err:
            raise ValueError(f"{where}: {s}_logp.npy is unreadable ({err.reason})") from None
        if logp.shape != (len(arrays[s]),) or logp.dtype != np.float64:
            raise ValueError(f"{where}: {s}_logp.npy has shape {logp.shape}, expected ({len(arrays[s])},) float64")
        arrays[f"{s}_logp"] = logp
    return Dataset(root, dict(doc["params"]), grammar, arrays["train"], arrays["heldout"],
                   arrays["train_logp"], arrays["heldout_logp"])


# -- reading strings -----------------------------------------------------------------------


def _fail(path: pathlib.Path, where: str, what: str) -> ValueError:
    return ValueError(f"{str(path)!r}: {where}: {what}" if where else f"{str(path)!r}: {what}")


def _read_jsonl(path: pathlib.Path) -> np.ndarray:
    """Lines ``{"tokens": [...]}`` (:func:`~rhmfast._io.untrusted.iter_jsonl`: bounded
    size and nesting, integers within 64 bits), one int64 row each."""
    rows: list[np.ndarray] = []
    total = 0
    for i, doc in iter_jsonl(path, max_bytes=MAX_TEXT_BYTES, max_depth=_MAX_JSONL_DEPTH, limit_text=_TEXT_LIMIT):
        if not isinstance(doc, dict) or not isinstance(doc.get("tokens"), list):
            raise _fail(path, f"line {i}", 'expected a JSON object {"tokens": [...]}')
        toks = doc["tokens"]
        if not all(type(t) is int for t in toks):
            j, tok = next((j, t) for j, t in enumerate(toks) if type(t) is not int)
            raise _fail(path, f"line {i}", f"token {json.dumps(tok)} (position {j}) is not an integer")
        if not toks:
            raise _fail(path, f"line {i}", "holds no tokens")
        if rows and len(toks) != len(rows[0]):
            raise _fail(path, f"line {i}", f"{len(toks)} tokens, but line 1 has {len(rows[0])} (ragged lines)")
        total += len(toks)
        if total > MAX_TOKENS:
            raise _fail(path, f"line {i}", f"more than {_TOKENS_LIMIT}")
        rows.append(np.array(toks, dtype=np.int64))  # each within 64 bits: the reader checked
    return np.stack(rows) if rows else np.zeros((0, 0), np.int64)


def _read_npy(path: pathlib.Path) -> np.ndarray:
    """An ``(N, d)`` integer array (:func:`~rhmfast._io.untrusted.read_npy`: the header,
    dtype and sizes checked before anything is allocated)."""
    x = read_npy(path, max_elements=MAX_TOKENS, kinds="iu", limit_text=_TOKENS_LIMIT)
    if x.ndim != 2:
        raise _fail(path, "", f"shape {x.shape}: expected (N, d), one string per row")
    if x.dtype.kind == "u" and x.dtype.itemsize == 8 and x.size and int(x.max()) >= 2**63:
        r, c = np.argwhere(x >= np.uint64(2**63))[0]
        raise _fail(path, f"row {int(r)}", f"token {int(x[r, c])} (position {int(c)}) does not fit in 64-bit signed integers")
    return x


def read_strings(path: str | os.PathLike[str], *, v: int | None = None, d: int | None = None,
                 allow_empty: bool = False) -> np.ndarray:
    """``(N, d)`` int64 tokens of a ``.npy``, text (``.txt``) or JSON lines (``.jsonl``)
    file of strings. ``v`` / ``d`` (when given): tokens must lie in ``[0, v)`` and every
    string have ``d`` tokens. Anything else is one ``ValueError`` naming the file and the
    line (row, for ``.npy``): ragged lines, tokens out of range or not integers, the
    wrong length, an unreadable JSON line, an empty file (unless ``allow_empty``). Files
    are untrusted (:mod:`rhmfast._io.untrusted`): a ``.npy`` header is checked against the
    file's size before anything is allocated, and no file may hold more than
    :data:`MAX_TOKENS` tokens (text files: :data:`MAX_TEXT_BYTES` bytes).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.txt"
    >>> _ = p.write_text("0 1 2 3\\n3 2 1 0\\n")
    >>> read_strings(p, v=4, d=4).tolist()
    [[0, 1, 2, 3], [3, 2, 1, 0]]
    >>> _ = p.write_text("0 1 2 3\\n3 2 9 0\\n")
    >>> read_strings(p, v=4, d=4)
    Traceback (most recent call last):
    ...
    ValueError: '...s.txt': line 2: token 9 (position 2) is outside the alphabet [0, v=4)
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise _fail(path, "", f"unknown format {suffix or '(no suffix)'!r}: expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise _fail(path, "", "no such file")
    try:
        if suffix == ".npy":
            x = _read_npy(path)
        elif suffix == ".txt":
            x = read_int_rows(path, max_bytes=MAX_TEXT_BYTES, max_elements=MAX_TOKENS, limit_text=_TEXT_LIMIT)
        else:
            x = _read_jsonl(path)
    except OSError as err:
        raise _fail(path, "", f"cannot be read ({err.strerror or err})") from None
    if not len(x):
        if allow_empty:
            return np.zeros((0, d or x.shape[1]), np.int64)
        raise _fail(path, "", "is empty: no strings")
    unit, first = ("row", 0) if suffix == ".npy" else ("line", 1)  # where a string is in the file
    return check_tokens(x, repr(str(path)), v=v, d=d, unit=unit, first=first, type_error=ValueError).astype(np.int64)
