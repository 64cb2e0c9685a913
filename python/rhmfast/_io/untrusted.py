r"""The one reader of untrusted files (numpy only): ``.npy`` arrays, ``.npz`` archives,
JSON documents, JSON lines and text files of integer rows.

Every reader checks sizes before it allocates: a ``.npy`` header (parsed with
:mod:`numpy.lib.format`, never unpickled) must declare a plain dtype, a shape within
the stated element limit and exactly as many data bytes as the file holds; an ``.npz``
member's ZIP sizes, compression ratio and position are checked, then its ``.npy``
header, before a byte is inflated; a JSON text is bounded in size, its bracket nesting
(outside strings) is bounded before :func:`json.loads` recurses, and its integer
tokens must fit in 64 bits. Every failure of the content is one
:class:`InvalidFileError` (a ``ValueError``) whose message names the file, and the
line for text; an ``OSError`` from opening the file (missing, a directory, no
permission) passes through unchanged, naming the path itself.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "x.npy"
>>> np.save(p, np.arange(6, dtype=np.uint8).reshape(2, 3))
>>> read_npy(p, max_elements=100).tolist()
[[0, 1, 2], [3, 4, 5]]
>>> read_npy(p, max_elements=4)
Traceback (most recent call last):
...
rhmfast._io.untrusted.InvalidFileError: '...x.npy': its header declares shape (2, 3), 6 elements, more than the limit of 4 elements
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import struct
import tokenize
import warnings
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np

__all__ = [
    "InvalidFileError",
    "NpzArchive",
    "json_depth",
    "read_bytes",
    "read_text",
    "read_json",
    "iter_jsonl",
    "read_int_rows",
    "read_npy",
    "read_npz",
    "NPY_HEADER_MAX",
    "PLAIN_KINDS",
]

#: the longest ``.npy`` header read (numpy writes about 128 bytes)
NPY_HEADER_MAX = 4096
#: dtype kinds read by default: booleans, integers, floats, complex, byte and text strings
PLAIN_KINDS = "biufcSU"
#: deflate inflates at most about 1032 bytes from one compressed byte
DEFLATE_MAX_RATIO = 1032
_ZIP_SLACK = 1 << 16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_CHUNK = 1 << 20
_SHOWN = 40  # characters of an offending token shown in a message
_FILE = "the array"  # how messages name a .npy file's array (a member is "member 'NAME'")

PathLike = str | os.PathLike[str]

# What a damaged or hostile file can make the parsing layers below raise; each becomes
# one InvalidFileError naming the file (never a bare `except Exception`).
_READ_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # numpy header parsing, JSON, UnicodeDecodeError
    TypeError,
    KeyError,
    EOFError,
    OSError,  # reading (not opening) the file
    SyntaxError,
    tokenize.TokenError,  # numpy re-tokenizes a header it cannot parse (Python 2 headers)
    OverflowError,
    RuntimeError,  # RecursionError, NotImplementedError, encrypted ZIP members
    MemoryError,
    zipfile.BadZipFile,
    zlib.error,
    struct.error,
)


class InvalidFileError(ValueError):
    """A file that cannot be what it claims: ``str(err)`` is ``"LABEL: [line N: ]REASON"``
    where ``LABEL`` names the file (its path, quoted, unless the caller named it).
    ``label``, ``line`` (or None) and ``reason`` (the message after the label, with the
    line) let a caller re-word the message.

    >>> str(InvalidFileError("'a.txt'", "token 'x' is not an integer", line=3))
    "'a.txt': line 3: token 'x' is not an integer"
    """

    def __init__(self, label: str, what: str, line: int | None = None) -> None:
        self.label, self.line, self.what = label, line, what
        self.reason = what if line is None else f"line {line}: {what}"
        super().__init__(f"{label}: {self.reason}")

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # picklable across processes
        return (type(self), (self.label, self.what, self.line))


def _label(path: Any, name: str | None) -> str:
    return name if name is not None else repr(os.fspath(path) if not isinstance(path, bytes) else path)


def _first_line(err: BaseException) -> str:
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    text = text or type(err).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _wrap(label: str, err: BaseException, prefix: str = "") -> InvalidFileError:
    if isinstance(err, InvalidFileError):
        return err
    kind = "" if isinstance(err, ValueError) else f"{type(err).__name__}: "
    return InvalidFileError(label, f"{prefix}{kind}{_first_line(err)}")


def _show(token: str) -> str:
    return repr(token if len(token) <= _SHOWN else token[: _SHOWN // 2] + "..." + token[-8:])


def _regular_size(f: IO[bytes]) -> int | None:
    """The size of a regular file, or None (a pipe, a device, a stream without a file)."""
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


# -- bytes and text ---------------------------------------------------------------------


def _read_limited(f: IO[bytes], label: str, max_bytes: int, limit_text: str | None) -> bytes:
    limit = limit_text or f"the limit of {max_bytes} bytes"
    size = _regular_size(f)
    if size is not None and size > max_bytes:
        raise InvalidFileError(label, f"{size} bytes, more than {limit}")
    parts, total = [], 0
    while chunk := f.read(min(_CHUNK, max_bytes + 1 - total)):
        parts.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise InvalidFileError(label, f"more than {limit}")
    return b"".join(parts)


def read_bytes(
    path: PathLike, *, max_bytes: int, name: str | None = None, limit_text: str | None = None
) -> bytes:
    """The whole file, refused unread when it holds more than ``max_bytes`` bytes
    (``limit_text`` words the limit in the message; ``name`` replaces the quoted path).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
    >>> _ = p.write_bytes(b"12345")
    >>> read_bytes(p, max_bytes=5)
    b'12345'
    >>> read_bytes(p, max_bytes=4)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...b.bin': 5 bytes, more than the limit of 4 bytes
    """
    label = _label(path, name)
    with open(path, "rb") as f:  # OSError (a missing file...) passes through
        try:
            return _read_limited(f, label, max_bytes, limit_text)
        except _READ_ERRORS as err:
            raise _wrap(label, err, "cannot be read: ") from None


def _decode(raw: bytes, label: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InvalidFileError(label, "is not UTF-8 text", line=line) from None


def read_text(
    path: PathLike, *, max_bytes: int, name: str | None = None, limit_text: str | None = None
) -> str:
    """The file as UTF-8 text (see :func:`read_bytes`); bytes that are not UTF-8 are
    refused with the line they are on.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
    >>> _ = p.write_bytes(b"ok\\nbad \\xff\\n")
    >>> read_text(p, max_bytes=100)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...t.txt': line 2: is not UTF-8 text
    """
    label = _label(path, name)
    return _decode(read_bytes(path, max_bytes=max_bytes, name=name, limit_text=limit_text), label)


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    return lines


# -- JSON ---------------------------------------------------------------------------------


def json_depth(raw: bytes | bytearray | memoryview | np.ndarray) -> int:
    """The deepest bracket nesting (``[`` and ``{``) outside JSON strings, found by a
    vectorized scan (no recursion, constant memory per 1 MiB chunk). Up to the first
    error it is exact, so bounding it bounds the recursion of :func:`json.loads`.

    >>> json_depth(b'{"a": [[1], "]]]"], "b\\\\"": [[[]]]}')
    4
    """
    a = raw if isinstance(raw, np.ndarray) else np.frombuffer(raw, dtype=np.uint8)
    depth = worst = 0
    in_string, backslashes = 0, 0  # the state at the end of the previous chunk
    for off in range(0, a.size, _CHUNK):
        c = a[off : off + _CHUNK]
        idx = np.arange(c.size)
        is_bs = c == 0x5C
        last_other = np.maximum.accumulate(np.where(is_bs, -1, idx))
        run = idx - last_other  # backslashes ending at each byte
        run[last_other < 0] += backslashes
        before = np.empty(c.size, np.int64)
        before[0] = backslashes
        before[1:] = run[:-1]
        quote = (c == 0x22) & (before % 2 == 0)  # a quote no backslash escapes
        inside = (np.cumsum(quote) + in_string) % 2 == 1
        delta = ((c == 0x5B) | (c == 0x7B)).astype(np.int64)
        delta -= (c == 0x5D) | (c == 0x7D)
        delta[inside] = 0
        level = np.cumsum(delta) + depth
        worst, depth = max(worst, int(level.max())), int(level[-1])
        in_string, backslashes = int(inside[-1]), int(run[-1])
    return worst


class _BadToken(Exception):
    def __init__(self, token: str, what: str) -> None:
        super().__init__(token)
        self.token, self.what = token, what


def _json_int(token: str) -> int:
    digits = token.lstrip("-").lstrip("0")
    if len(digits) > 19 or not _INT64_MIN <= int(token) <= _INT64_MAX:
        raise _BadToken(token, "is outside the 64-bit integer range [-2**63, 2**63)")
    return int(token)


def _json_constant(token: str) -> Any:
    raise _BadToken(token, "is not a JSON number (NaN and infinities are refused)")


def _loads(text: str, label: str, line: int | None, max_depth: int, allow_nan: bool = False) -> Any:
    if text.count("[") + text.count("{") > max_depth and json_depth(text.encode()) > max_depth:
        raise InvalidFileError(label, f"nested deeper than {max_depth} levels of brackets", line)
    try:
        return json.loads(text, parse_int=_json_int, parse_constant=float if allow_nan else _json_constant)
    except _BadToken as err:
        raise InvalidFileError(label, f"number {_show(err.token)} {err.what}", line) from None
    except json.JSONDecodeError as err:
        where = f"column {err.colno}" if line is not None else f"line {err.lineno} column {err.colno}"
        raise InvalidFileError(label, f"is not JSON ({err.msg} at {where})", line) from None
    except RecursionError:  # not reached after the depth check; kept as a last guard
        raise InvalidFileError(label, "nested too deeply", line) from None


def read_json(
    source: PathLike | bytes,
    *,
    max_bytes: int,
    max_depth: int,
    name: str | None = None,
    limit_text: str | None = None,
) -> Any:
    """A JSON document from a file (or from ``bytes``, then ``name`` labels it): at most
    ``max_bytes`` bytes of UTF-8, nested at most ``max_depth`` brackets deep, every
    integer within 64 bits and no NaN or infinity.

    >>> read_json(b'{"a": [1, 2]}', max_bytes=100, max_depth=2)
    {'a': [1, 2]}
    >>> read_json(b"[" * 100000, max_bytes=10**6, max_depth=8, name="doc")
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: doc: nested deeper than 8 levels of brackets
    >>> read_json(b"[1180591620717411303424]", max_bytes=100, max_depth=8, name="doc")
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: doc: number '1180591620717411303424' is outside the 64-bit integer range [-2**63, 2**63)
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name if name is not None else "JSON text"
        raw = bytes(source)
        if len(raw) > max_bytes:
            raise InvalidFileError(label, f"{len(raw)} bytes, more than {limit_text or f'the limit of {max_bytes} bytes'}")
    else:
        label = _label(source, name)
        raw = read_bytes(source, max_bytes=max_bytes, name=label, limit_text=limit_text)
    return _loads(_decode(raw, label), label, None, max_depth)


def iter_jsonl(
    path: PathLike,
    *,
    max_bytes: int,
    max_depth: int,
    name: str | None = None,
    limit_text: str | None = None,
    allow_nan: bool = False,
    torn_tail: bool = False,
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of every line of a JSON lines file (each line as
    :func:`read_json` reads a document); an error names the line. ``allow_nan``: the
    ``NaN`` and ``Infinity`` that :func:`json.dumps` writes are read as floats.
    ``torn_tail``: a last line that is not JSON (cut short by a writer killed while
    appending it) is left out instead of refused.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
    >>> _ = p.write_text('{"tokens": [1]}\\n' + "[" * 100000 + "\\n")
    >>> it = iter_jsonl(p, max_bytes=10**6, max_depth=4)
    >>> next(it)
    (1, {'tokens': [1]})
    >>> next(it)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...s.jsonl': line 2: nested deeper than 4 levels of brackets
    """
    label = _label(path, name)
    text = read_text(path, max_bytes=max_bytes, name=label, limit_text=limit_text)
    lines = _lines(text)
    for i, line in enumerate(lines, 1):
        try:
            value = _loads(line, label, i, max_depth, allow_nan)
        except InvalidFileError as err:
            if torn_tail and i == len(lines) and err.what.startswith("is not JSON"):
                return
            raise
        yield i, value


# -- text rows of integers ----------------------------------------------------------------

_INT = re.compile(r"[+-]?[0-9]+")


def _bad_row(label: str, line: int, toks: Sequence[str]) -> InvalidFileError:
    """The error for the first token of a row that is not a 64-bit integer."""
    for j, tok in enumerate(toks):
        if not _INT.fullmatch(tok):
            return InvalidFileError(label, f"token {_show(tok)} (position {j}) is not an integer", line)
        digits = tok.lstrip("+-").lstrip("0")
        if len(digits) > 19 or not _INT64_MIN <= int(tok) <= _INT64_MAX:
            return InvalidFileError(
                label,
                f"token {_show(tok)} (position {j}) is outside the 64-bit integer range "
                "[-2**63, 2**63)",
                line,
            )
    raise AssertionError("a row with no bad token")  # pragma: no cover


def read_int_rows(
    path: PathLike,
    *,
    max_bytes: int,
    max_elements: int,
    name: str | None = None,
    limit_text: str | None = None,
) -> np.ndarray:
    """``(N, w)`` int64: one row per line, integer tokens separated by whitespace, every
    line as long as the first. Refused with the line: an empty line, ragged lines, a
    token that is not an ASCII integer or not within 64 bits; refused before it is
    parsed: a file over ``max_bytes`` bytes or of more than ``max_elements`` tokens.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.txt"
    >>> _ = p.write_text("0 1\\n2 3\\n")
    >>> read_int_rows(p, max_bytes=100, max_elements=10).tolist()
    [[0, 1], [2, 3]]
    >>> _ = p.write_text("0 1\\n2 1180591620717411303424\\n")
    >>> read_int_rows(p, max_bytes=100, max_elements=10)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...r.txt': line 2: token '1180591620717411303424' (position 1) is outside the 64-bit integer range [-2**63, 2**63)
    """
    label = _label(path, name)
    lines = _lines(read_text(path, max_bytes=max_bytes, name=label, limit_text=limit_text))
    if not lines:
        return np.zeros((0, 0), np.int64)
    width = len(lines[0].split())
    if len(lines) * width > max_elements:
        raise InvalidFileError(
            label,
            f"{len(lines)} lines of {width} tokens, more than the limit of {max_elements} tokens",
        )
    out = np.empty((len(lines), width), np.int64)
    for i, line in enumerate(lines, 1):
        toks = line.split()
        if not toks:
            raise InvalidFileError(
                label, "is empty (one string per line, tokens separated by spaces)", i
            )
        if len(toks) != width:
            raise InvalidFileError(
                label, f"{len(toks)} tokens, but line 1 has {width} (ragged lines)", i
            )
        if not all(map(_INT.fullmatch, toks)) or (
            max(map(len, toks)) > 19 and any(len(t.lstrip("+-").lstrip("0")) > 19 for t in toks)
        ):
            raise _bad_row(label, i, toks)
        try:
            out[i - 1] = [int(t) for t in toks]
        except OverflowError:
            raise _bad_row(label, i, toks) from None
    return out


# -- .npy -----------------------------------------------------------------------------------


def _npy_header(f: IO[bytes], label: str, subject: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, header bytes)`` of the ``.npy`` stream at ``f``;
    the header's length is checked before it is read."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY":
        lead = "" if subject == _FILE else f"{subject} "
        raise InvalidFileError(label, f"{lead}is not a .npy array (no NumPy header)")
    version = (magic[6], magic[7])
    if version not in ((1, 0), (2, 0)):
        raise InvalidFileError(
            label, f"{subject}: .npy format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)"
        )
    width = 2 if version == (1, 0) else 4
    length_bytes = f.read(width)
    if len(length_bytes) != width:
        raise InvalidFileError(label, f"{subject} is truncated in its header")
    length = int.from_bytes(length_bytes, "little")
    if length > NPY_HEADER_MAX:
        raise InvalidFileError(
            label, f"{subject}: a .npy header of {length} bytes, more than the limit of {NPY_HEADER_MAX}"
        )
    header = f.read(length)
    if len(header) != length:
        raise InvalidFileError(label, f"{subject} is truncated in its header")
    parse = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    try:
        with warnings.catch_warnings():  # a hostile header's SyntaxWarning, numpy's Python 2 note
            warnings.simplefilter("ignore")
            shape, fortran, dtype = parse(io.BytesIO(length_bytes + header), max_header_size=NPY_HEADER_MAX)
    except _READ_ERRORS as err:
        raise InvalidFileError(label, f"{subject} has an unreadable .npy header ({_first_line(err)})") from None
    return tuple(shape), bool(fortran), dtype, 8 + width + length


_KIND_WORDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats",
               "c": "complex numbers", "S": "byte strings", "U": "strings"}


def _kind_words(kinds: str) -> str:
    """``"iuf"`` -> ``"integers or floats"``."""
    words = list(dict.fromkeys(_KIND_WORDS.get(k, repr(k)) for k in kinds))
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _check_dtype(
    dt: np.dtype, label: str, subject: str, dtype: str | None, kinds: str, max_itemsize: int | None
) -> None:
    if dt.hasobject:
        raise InvalidFileError(
            label,
            f"{subject} holds Python objects; refused (only plain numeric and string arrays "
            "are read: pickled data are never loaded, they can run code)",
        )
    if dt.fields is not None or dt.subdtype is not None:
        raise InvalidFileError(label, f"{subject} has dtype {dt.str}: structured dtypes are refused")
    if dtype is not None:
        if dt.str != np.dtype(dtype).str:
            raise InvalidFileError(label, f"{subject} has dtype {dt.str}, expected {np.dtype(dtype).str}")
    elif dt.kind not in kinds:
        raise InvalidFileError(label, f"{subject} has dtype {dt}; expected {_kind_words(kinds)}")
    if max_itemsize is not None and dt.itemsize > max_itemsize:
        raise InvalidFileError(
            label, f"{subject} has dtype {dt.str} of {dt.itemsize} bytes, more than {max_itemsize}"
        )


def _check_shape(
    shape: tuple[int, ...],
    fortran: bool,
    label: str,
    subject: str,
    expected: tuple[int, ...] | None,
    ndim: int | None,
    allow_fortran: bool,
    max_elements: int,
    limit_text: str | None,
) -> int:
    """The number of elements, once the shape is allowed."""
    if any(d < 0 for d in shape):
        raise InvalidFileError(label, f"{subject}: its header declares the negative shape {shape}")
    if expected is not None and shape != expected:
        raise InvalidFileError(label, f"{subject} has shape {shape}, expected {expected}")
    if ndim is not None and len(shape) != ndim:
        raise InvalidFileError(label, f"{subject} has shape {shape}: expected {ndim} dimensions")
    if fortran and not allow_fortran:
        raise InvalidFileError(label, f"{subject} is in Fortran order; expected C order")
    count = math.prod(shape)
    if count > max_elements:
        limit = limit_text or f"the limit of {max_elements} elements"
        lead = "" if subject == _FILE else f"{subject}: "
        raise InvalidFileError(
            label, f"{lead}its header declares shape {shape}, {count} elements, more than {limit}"
        )
    return count


def _read_npy_stream(
    f: IO[bytes],
    label: str,
    subject: str,
    size: int | None,
    *,
    dtype: str | None,
    kinds: str,
    shape: tuple[int, ...] | None,
    ndim: int | None,
    max_elements: int,
    max_itemsize: int | None,
    allow_fortran: bool,
    limit_text: str | None,
) -> np.ndarray:
    """The array of the ``.npy`` stream at ``f`` (``size``: its bytes, None when
    unknown): header and sizes checked, then exactly the declared bytes read."""
    got_shape, fortran, dt, header_len = _npy_header(f, label, subject)
    _check_dtype(dt, label, subject, dtype, kinds, max_itemsize)
    count = _check_shape(
        got_shape, fortran, label, subject, shape, ndim, allow_fortran, max_elements, limit_text
    )
    nbytes = count * dt.itemsize
    if size is not None:
        held = size - header_len
        if held < nbytes:
            raise InvalidFileError(
                label,
                f"{subject} is truncated: its header declares shape {got_shape} of {dt.str}, "
                f"{nbytes} bytes, and {held} follow the header",
            )
        if held > nbytes:
            raise InvalidFileError(
                label,
                f"{subject} holds {held - nbytes} bytes after the {nbytes} its header declares "
                "(damaged, or not a .npy array)",
            )
    buf = bytearray(nbytes)
    view, pos = memoryview(buf), 0
    while pos < nbytes:
        got = f.readinto(view[pos : pos + _CHUNK])  # type: ignore[attr-defined]
        if not got:
            raise InvalidFileError(label, f"{subject} is truncated: {pos} of {nbytes} data bytes")
        pos += got
    if f.read(1):  # also ends a ZIP member's stream, where its CRC is checked
        raise InvalidFileError(label, f"{subject} holds bytes after the {nbytes} its header declares")
    if dt.itemsize == 0:
        return np.zeros(got_shape, dt)
    a = np.frombuffer(buf, dtype=dt)
    return a.reshape(got_shape[::-1]).T if fortran else a.reshape(got_shape)


def read_npy(
    path: PathLike,
    *,
    max_elements: int,
    kinds: str = PLAIN_KINDS,
    dtype: str | None = None,
    shape: tuple[int, ...] | None = None,
    ndim: int | None = None,
    allow_fortran: bool = True,
    name: str | None = None,
    limit_text: str | None = None,
) -> np.ndarray:
    """A ``.npy`` array, its header checked before anything is allocated: a plain dtype
    (of ``kinds``, or exactly ``dtype``; objects, pickles and structures are refused),
    ``shape`` / ``ndim`` when given, at most ``max_elements`` elements (``limit_text``
    words that limit), and exactly the data bytes the header declares. Fortran-ordered
    files are read as numpy writes them (``allow_fortran=False`` refuses them).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "f.npy"
    >>> np.save(p, np.array([0.5, 1.5]))
    >>> read_npy(p, max_elements=10, kinds="iu")
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...f.npy': the array has dtype float64; expected integers
    """
    label = _label(path, name)
    with open(path, "rb") as f:  # OSError (a missing file...) passes through
        try:
            return _read_npy_stream(
                f, label, _FILE, _regular_size(f), dtype=dtype, kinds=kinds, shape=shape,
                ndim=ndim, max_elements=max_elements, max_itemsize=None,
                allow_fortran=allow_fortran, limit_text=limit_text,
            )
        except _READ_ERRORS as err:
            raise _wrap(label, err) from None


# -- .npz --------------------------------------------------------------------------------------


class NpzArchive:
    """An ``.npz`` archive opened for reading member by member (a context manager).

    Opening checks the file is a ZIP (a pickle or a bare ``.npy`` is named as such),
    that every member is a ``NAME.npy`` appearing once, and that members do not overlap
    (an overlapping-entries ZIP bomb). :meth:`read` checks a member's compression, its
    sizes (inflated at most ``DEFLATE_MAX_RATIO`` times its compressed size, and at most
    what its header and the limits allow) before inflating it, then reads it as
    :func:`read_npy` does; the ZIP layer checks its CRC.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> np.savez_compressed(p, x=np.arange(3), y=np.eye(2))
    >>> with NpzArchive(p) as z:
    ...     z.names, z.read("x", max_elements=10).tolist()
    (('x', 'y'), [0, 1, 2])
    """

    def __init__(self, path: PathLike, *, name: str | None = None, max_members: int = 4096) -> None:
        self.label = _label(path, name)
        self._file = open(path, "rb")  # OSError (a missing file...) passes through
        try:
            self._open(max_members)
        except BaseException:
            self._file.close()
            raise

    def _open(self, max_members: int) -> None:
        label = self.label
        try:
            head = self._file.read(8)
            if head.startswith(b"\x93NUMPY"):
                raise InvalidFileError(label, "is a single .npy array, not an .npz archive of named arrays")
            if head[:1] == b"\x80":  # pickle protocol >= 2
                raise InvalidFileError(
                    label,
                    "is a Python pickle, not an .npz archive; refused (pickles are never loaded: "
                    "they can run code)",
                )
            if not head.startswith(b"PK"):
                raise InvalidFileError(label, "is not an .npz archive (a ZIP of .npy arrays)")
            self._file.seek(0)
            size = _regular_size(self._file)
            self._zip = zipfile.ZipFile(self._file)
            infos = self._zip.infolist()
        except InvalidFileError:
            raise
        except _READ_ERRORS as err:
            raise _wrap(label, err, "not a readable .npz archive: ") from None
        if len(infos) > max_members:
            raise InvalidFileError(label, f"{len(infos)} members, more than the limit of {max_members}")
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise InvalidFileError(label, f"a member name appears twice ({dup!r})")
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise InvalidFileError(
                    label, f"unexpected member {info.filename!r} (an .npz holds only .npy arrays)"
                )
            self._infos[info.filename[: -len(".npy")]] = info
        # members must not overlap: each one's local header and data end before the next
        end = getattr(self._zip, "start_dir", None)
        end = end if isinstance(end, int) else size
        ordered = sorted(infos, key=lambda i: i.header_offset)
        following: list[int | None] = [*(i.header_offset for i in ordered[1:]), end]
        for info, limit in zip(ordered, following, strict=True):
            stop = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size
            if limit is not None and stop > limit:
                raise InvalidFileError(
                    label, f"member {info.filename!r} overlaps what follows it (damaged or a ZIP bomb)"
                )

    @property
    def names(self) -> tuple[str, ...]:
        """The member names (without ``.npy``), in archive order."""
        return tuple(self._infos)

    def __contains__(self, member: object) -> bool:
        return member in self._infos

    def read(
        self,
        member: str,
        *,
        max_elements: int,
        kinds: str = PLAIN_KINDS,
        dtype: str | None = None,
        shape: tuple[int, ...] | None = None,
        ndim: int | None = None,
        max_itemsize: int | None = None,
        allow_fortran: bool = True,
        limit_text: str | None = None,
    ) -> np.ndarray:
        """Member ``member`` (as :func:`read_npy` reads a file; ``max_itemsize`` bounds
        string dtypes). Missing members are an error naming what the archive holds."""
        label, subject = self.label, f"member {member!r}"
        if member not in self._infos:
            raise InvalidFileError(label, f"no {member!r} array (the archive holds {sorted(self._infos)})")
        info = self._infos[member]
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidFileError(label, f"{subject}: unsupported compression {info.compress_type}")
        if info.flag_bits & 0x1:
            raise InvalidFileError(label, f"{subject} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise InvalidFileError(
                label, f"{subject}: stored with {info.compress_size} bytes but declares {info.file_size}"
            )
        if info.file_size > DEFLATE_MAX_RATIO * info.compress_size + _ZIP_SLACK:
            raise InvalidFileError(
                label,
                f"{subject}: declares {info.file_size} bytes inflated from {info.compress_size}, "
                "more than deflate can give (damaged, or a ZIP bomb)",
            )
        # the most its header and the limits allow, before anything is inflated
        if shape is not None and (dtype is not None or max_itemsize is not None):
            itemsize = np.dtype(dtype).itemsize if dtype is not None else int(max_itemsize or 0)
            allowed, what = math.prod(shape) * itemsize, f"its shape {shape}"
        else:
            itemsize = max_itemsize or (np.dtype(dtype).itemsize if dtype is not None else 16)
            allowed, what = max_elements * itemsize, limit_text or f"the limit of {max_elements} elements"
        if info.file_size > NPY_HEADER_MAX + 12 + allowed:
            raise InvalidFileError(label, f"{subject}: {info.file_size} bytes, more than {what} allows")
        try:
            with self._zip.open(info) as m:
                return _read_npy_stream(
                    m, label, subject, info.file_size, dtype=dtype, kinds=kinds, shape=shape,
                    ndim=ndim, max_elements=max_elements, max_itemsize=max_itemsize,
                    allow_fortran=allow_fortran, limit_text=limit_text,
                )
        except _READ_ERRORS as err:
            raise _wrap(label, err, f"{subject}: ") from None

    def close(self) -> None:
        zf = getattr(self, "_zip", None)
        if zf is not None:
            zf.close()
        self._file.close()

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_npz(
    path: PathLike,
    *,
    max_elements: int,
    keys: Sequence[str] | None = None,
    optional: Sequence[str] = (),
    kinds: str = PLAIN_KINDS,
    name: str | None = None,
    limit_text: str | None = None,
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (all members when None) and those of ``optional`` present,
    each read by :meth:`NpzArchive.read` with ``max_elements`` and ``kinds``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(p, train=np.zeros((2, 3), np.uint8))
    >>> {k: v.shape for k, v in read_npz(p, max_elements=100).items()}
    {'train': (2, 3)}
    >>> read_npz(p, keys=("heldout",), max_elements=100)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...d.npz': no 'heldout' array (the archive holds ['train'])
    """
    with NpzArchive(path, name=name) as z:
        want = list(z.names if keys is None else keys) + [k for k in optional if k in z]
        return {
            k: z.read(k, max_elements=max_elements, kinds=kinds, limit_text=limit_text) for k in want
        }
