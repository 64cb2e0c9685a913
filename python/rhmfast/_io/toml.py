r"""The one TOML writer and the bounded TOML reader (no torch): a run's ``config.toml``
(:meth:`rhmfast.diffusion.TrainConfig.to_toml`) and an experiment's
``experiment.toml`` and ``configs/NAME.toml``. :mod:`tomllib` reads its text back to
the same values; infinities and NaN are written as the TOML floats ``inf``, ``-inf``
and ``nan``. :func:`load_toml` reads a TOML file as an untrusted one (size bounded,
one ValueError naming the file).

>>> print(dump_toml({"steps": 10, "train": {"lr": 0.001, "zipf_levels": [0]}}), end="")
steps = 10
<BLANKLINE>
[train]
lr = 0.001
zipf_levels = [0]
>>> toml_value(float("-inf")), toml_value(float("nan")), toml_value((1, 2.5))
('-inf', 'nan', '[1, 2.5]')
>>> print(toml_value('a\tb "c"'))
"a\tb \"c\""
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from rhmfast._io.untrusted import InvalidFileError, read_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["dump_toml", "toml_value", "load_toml", "tomllib", "MAX_TOML_BYTES"]

#: the largest TOML file read (configs are a few hundred bytes)
MAX_TOML_BYTES = 1 << 24

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
# what a TOML basic string cannot hold as itself: the quote, the backslash and the
# control characters (U+0000-U+001F, U+007F)
_SPECIAL = re.compile(r'["\\\x00-\x1f\x7f]')


def _string(s: str) -> str:
    return '"' + _SPECIAL.sub(lambda c: _ESCAPES.get(c[0]) or f"\\u{ord(c[0]):04X}", s) + '"'


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"cannot write a {type(k).__name__} key to TOML")
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def toml_value(v: Any) -> str:
    """One TOML value: a bool, int, float, str, or a list or tuple of them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write a {type(v).__name__} to TOML")


def dump_toml(data: Mapping[str, Any], *, sort_keys: bool = True) -> str:
    """TOML text for a dict of values (see :func:`toml_value`) and one level of tables
    (mappings of values): the top-level keys first, then each table; keys sorted, or
    in the dict's order with ``sort_keys=False``."""

    def items(m: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return sorted(m.items()) if sort_keys else list(m.items())

    flat = [(k, v) for k, v in items(data) if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in items(data) if isinstance(v, Mapping)]
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in flat]
    for name, table in tables:
        lines += ["", f"[{_key(name)}]"]
        lines += [f"{_key(k)} = {toml_value(v)}" for k, v in items(table)]
    return "\n".join(lines) + "\n"


def load_toml(path: str | os.PathLike[str], *, max_bytes: int = MAX_TOML_BYTES) -> dict[str, Any]:
    """A TOML file as a dict, read as an untrusted file: at most ``max_bytes`` bytes of
    UTF-8; a file that is not TOML (or nests past the parser's recursion) is one
    :class:`~rhmfast._io.untrusted.InvalidFileError` (a ValueError) naming the file.
    An ``OSError`` from opening it passes through.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.toml"
    >>> _ = p.write_text("steps = 10\\n[train]\\nlr = 0.001\\n")
    >>> load_toml(p)
    {'steps': 10, 'train': {'lr': 0.001}}
    >>> _ = p.write_text("steps = = 10\\n")
    >>> load_toml(p)
    Traceback (most recent call last):
    ...
    rhmfast._io.untrusted.InvalidFileError: '...c.toml': is not valid TOML (Invalid value (at line 1, column 9))
    """
    label = repr(os.fspath(path))
    text = read_text(path, max_bytes=max_bytes, name=label,
                     limit_text=f"the limit for a TOML file (MAX_TOML_BYTES = {max_bytes} bytes)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InvalidFileError(label, f"is not valid TOML ({err})") from None
    except RecursionError:
        raise InvalidFileError(label, "is not valid TOML (nested too deeply)") from None
    except ValueError as err:  # e.g. an integer of more digits than Python converts
        raise InvalidFileError(label, f"is not valid TOML ({err})") from None
