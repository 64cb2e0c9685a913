"""False-positive rates and power measured on known answers, stored with the presets.

``benches/calibrate.py`` runs an experiment's statistics on simulated run sets of known
truth (several memorizer families, :mod:`rhmfast.knownanswers`) at a preset's settings
and records, per statistic and family, how many null sets it rejected and how many effect
sets it found, in ``measured_rates.json`` beside this module. A verdict quotes these
rates only when its settings are exactly the ones they were measured at (same
fingerprint); otherwise it quotes none. A rate is never a number fixed by the null
count.

>>> rates = {"prototypes": {"abc": {"stat": {"mixture": {"null": [3, 60]}}}}}
>>> quote("prototypes", "abc", "stat", rates)
'false-positive rate measured on known answers at these settings: 5% of 60 null sets (fixed-weight mixture)'
>>> quote("prototypes", "other settings", "stat", rates)
''
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rhmfast._io.jsonfile import write_json
from rhmfast._io.toml import dump_toml
from rhmfast._io.untrusted import read_json

__all__ = ["RATES_FILE", "FAMILIES", "fingerprint", "load_rates", "quote", "quoted", "null_cell", "record"]

RATES_FILE = Path(__file__).with_name("measured_rates.json")

# the memorizer families benches/calibrate.py runs (rhmfast.knownanswers.memorizer)
FAMILIES = {
    "mixture": "fixed-weight mixture",
    "onsets": "per-string onsets",
    "partial": "partial copies",
    "generalizer": "sharpened generalizer",
}


# settings that cannot change a decision: the bootstrap draws give the interval only (a
# verdict's p and decision come from the null values)
NOT_DECISIVE = ("num_boot",)


def fingerprint(settings: Mapping[str, Any]) -> str:
    """A short digest of resolved settings (:func:`rhmfast.experiments.presets.resolve_settings`)
    without those that cannot change a decision (``NOT_DECISIVE``): equal settings, equal
    fingerprint.

    >>> fingerprint({"a": 1}) == fingerprint({"a": 1, "num_boot": 5}) != fingerprint({"a": 2})
    True
    """
    kept = {k: v for k, v in settings.items() if k not in NOT_DECISIVE}
    return hashlib.sha256(dump_toml(kept).encode()).hexdigest()[:16]


def load_rates(path: Path | None = None) -> dict[str, Any]:
    """The stored rates (``{}`` when none were measured yet); default ``RATES_FILE``."""
    path = RATES_FILE if path is None else path
    return read_json(path, max_bytes=1 << 24, max_depth=8) if path.exists() else {}


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}% of {n}"


def quote(name: str, key: str, statistic: str, rates: Mapping[str, Any] | None = None) -> str:
    """The measured rates of ``statistic`` of experiment ``name`` at the settings with
    fingerprint ``key``: the false-positive rate per null family and the power per effect
    family, each with the number of simulated run sets behind it; ``""`` when none were
    measured at these settings."""
    rates = load_rates() if rates is None else rates
    per_family = rates.get(name, {}).get(key, {}).get(statistic, {})
    nulls = [f"{_pct(*v['null'])} null sets ({FAMILIES.get(f, f)})" for f, v in per_family.items() if "null" in v]
    effects = [f"{_pct(*v['effect'])} effect sets ({FAMILIES.get(f, f)}, {v.get('strength', 'effect')})"
               for f, v in per_family.items() if "effect" in v]
    out = []
    if nulls:
        out.append("false-positive rate measured on known answers at these settings: " + ", ".join(nulls))
    if effects:
        out.append("power: " + ", ".join(effects))
    return "; ".join(out)


def quoted(name: str, key: str, test: Any) -> str:
    """``"; "`` and :func:`quote` for a verdict's test (a :class:`rhmfast.stats.NullTest`),
    or ``""`` when it is not measurable or nothing was measured at these settings."""
    text = quote(name, key, test.name) if math.isfinite(test.p) else ""
    return f"; {text}" if text else ""


def null_cell(name: str, key: str, statistic: str, rates: Mapping[str, Any] | None = None) -> str:
    """A report table's cell: the measured false-positive rate per null family, or "not
    measured" (at other settings than the stored ones).

    >>> null_cell("x", "k", "s", {"x": {"k": {"s": {"onsets": {"null": [1, 20]}}}}})
    '5% of 20 (per-string onsets)'
    """
    rates = load_rates() if rates is None else rates
    per_family = rates.get(name, {}).get(key, {}).get(statistic, {})
    cells = [f"{_pct(*v['null'])} ({FAMILIES.get(f, f)})" for f, v in per_family.items() if "null" in v]
    return ", ".join(cells) if cells else "not measured"


def record(name: str, key: str, statistic: str, family: str, *, null: tuple[int, int] | None = None,
           effect: tuple[int, int] | None = None, strength: str = "", path: Path | None = None) -> None:
    """Store ``null = (false positives, null sets)`` and/or ``effect = (found, effect
    sets)`` for one statistic and family (atomically; other entries are kept)."""
    rates = load_rates(path)
    entry = rates.setdefault(name, {}).setdefault(key, {}).setdefault(statistic, {}).setdefault(family, {})
    if null is not None:
        entry["null"] = [int(null[0]), int(null[1])]
    if effect is not None:
        entry["effect"] = [int(effect[0]), int(effect[1])]
        entry["strength"] = strength
    write_json(RATES_FILE if path is None else path, rates, indent=1)
