"""Calibration of the experiments' verdicts on known answers at a preset's settings: how
often each statistic rejects on simulated run sets with no effect (false positives; the
verdict's level is 5%) and how often it finds a real effect (power), each set read
against null runs fitted to it exactly as ``rhmfast experiment`` fits them
(``rhmfast.knownanswers.calibration``), for several memorizer families
(``rhmfast.knownanswers.memorizer``):

- ``mixture``: the fixed-weight mixture (every string memorized at a weight, from the
  start of the memorized mass);
- ``onsets``: each training string starts being memorized at its own step, spread over
  the memorized phase (the effect orders the onsets by prototypicality);
- ``partial``: partial copies (a training string with one aligned block replaced),
  starting before whole copies appear, with no preference for any string;
- ``generalizer``: rule probabilities sharpened to ``p ** 1.5`` (over-produces common
  rules and blocks) beside uniform memorization.

``python benches/calibrate.py [--experiment NAME] [--family F ...] [--null-seeds N]
[--effect-seeds M] [--first-seed K] [--config TOML] [--record [--rates FILE]]``: the
table per family. ``--first-seed``: simulation seeds from ``K`` (more sets beside an
earlier run: record them to their own ``--rates FILE`` and add the counts). ``--config``: other settings than the preset's (e.g. an
earlier preset, for the power before and after). ``--record`` stores the rates in
``rhmfast/experiments/measured_rates.json`` (or ``FILE``, for jobs side by side), which
the verdicts at these settings quote.
``--smoke``: 2 + 1 seeds at the micro preset (CI).

The simulated model follows a trained quick run's shape: no copies for the first
quarter of the run (at most 300 steps), then memorized mass rising linearly to 0.35 at
the last step; per-level validity rising from 10-40% to 80-95%. Effects: prototypes,
the most prototypical string (block frequency) memorized at twice the rate of the least
(mixture) or its onset ordered by an 8x weight (onsets); slop, the sharpened generalizer
over each memorizing family; the sweeps, the memorized mass's time axis stretched
(fat-tail: the heaviest tail 1.25x later; scaling: proportional to P).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rhmfast.experiments import EXPERIMENTS, prototypes, scaling, slop
from rhmfast.experiments.presets import resolve_settings
from rhmfast.experiments.rates import FAMILIES, fingerprint, record
from rhmfast.knownanswers.calibration import decisions
from rhmfast.knownanswers.memorizer import Memorizer

SHARPEN = 1.5  # the generalizer's over-production (and slop's effect)
# look-alikes whose truth is the verdict's other answer: slop's partial copier
# over-produces rare training blocks more than common ones, which its verdict reads as
# "no: pieces of training strings"; only a "yes" is a false positive there
OPPOSITE_READING = {("slop", "partial"): "pieces of training strings"}
# fat-tail's effect: the heaviest tail's memorization this much later than the lightest's
# (moderate: the quick preset's pilot measured 1.19x between uniform rules and a = 1)
FAT_TAIL_DELAY = 0.25


def trained_shape(last: int, L: int, factor: float = 1.0) -> dict[str, Any]:
    """Memorizer keywords of a trained quick run's shape (its time axis stretched by
    ``factor``): no copies for the first quarter (at most 300 steps), then memorized mass
    rising linearly to 0.35 at the last step; per-level validity rising from 10-40% to
    80-95%; ``start``: where the memorized mass starts."""
    start = min(300, last // 4)
    lam = [(0, 0.0), (start * factor, 0.0), (last * factor, 0.35)]
    validity = {lev: [(0, 0.1 * (lev + 1)), (last, min(0.8 + 0.05 * lev, 1.0))] for lev in range(L)}
    return {"lam": lam, "validity": validity, "start": start * factor, "last": last * factor}


def family(name: str, shape: dict[str, Any], **effect: Any) -> Memorizer:
    """The memorizer of family ``name`` with the run's ``shape`` (and ``effect`` keywords)."""
    kw: dict[str, Any] = {"lam": shape["lam"], "validity": shape["validity"], **effect}
    if name == "onsets":
        kw["onsets"] = (shape["start"], shape["last"])
    elif name == "partial":  # pieces of training strings from the first quarter on, before whole copies
        kw["partial"] = [(0, 0.0), (shape["start"] / 2, 0.0), (shape["last"], 0.2)]
    elif name == "generalizer":
        kw["sharpen"] = SHARPEN
    return Memorizer(**kw)


def plan(name: str, settings: dict[str, Any], fam: str) -> tuple[Any, Any, str]:
    """(null memorizer, effect memorizer or None, the effect's strength) of experiment
    ``name`` in family ``fam``; a memorizer may be a function of a run's parameters."""
    train = settings["train"]
    last, L = int(train["steps"]), int(train["L"])
    if name == "scaling":  # each run trains its own steps: the shape of the smallest, so every run reaches it
        last = scaling.run_steps(settings, min(settings["sizes"]))
    shape = trained_shape(last, L)
    null = family(fam, shape)
    if name == "prototypes":
        if fam == "mixture":
            return null, family(fam, shape, tilt="blocks", strength=2.0), "2x tilt (block frequency)"
        if fam == "onsets":
            return null, family(fam, shape, tilt="blocks", strength=8.0), "onsets ordered by an 8x tilt"
        return null, None, ""  # look-alikes: no preference for any string
    if name == "slop":
        if fam in ("mixture", "onsets"):
            return null, family(fam, shape, sharpen=SHARPEN), f"rules sharpened to p**{SHARPEN}"
        return null, None, ""
    # the sweeps: the same schedule for every run, or stretched by the swept parameter
    if name == "fat-tail":
        lo, hi = min(settings["exponents"]), max(settings["exponents"])

        def stretch(params: Any) -> float:  # the pilot's size: uniform rules 1.19x later than a = 1
            return 1 + FAT_TAIL_DELAY * (hi - params["a"]) / (hi - lo)
        strength = f"heaviest tail {1 + FAT_TAIL_DELAY:g}x later"
    else:
        smallest = min(settings["sizes"])

        def stretch(params: Any) -> float:
            return params["P"] / smallest
        strength = "memorization time proportional to P"
    if fam not in ("mixture", "onsets"):
        return null, None, ""

    def effect(params: Any) -> Memorizer:
        return family(fam, trained_shape(last, L, stretch(params)))
    return null, effect, strength


def statistics(name: str, settings: dict[str, Any]) -> list[tuple[str, int]]:
    """(statistic name, the effect's direction) in the order ``null_tests`` returns them."""
    if name == "prototypes":
        return list(zip(prototypes.STATISTICS, prototypes.EFFECT_SIGNS, strict=True))
    if name == "slop":
        return [(n, 1) for n in slop.statistic_names(list(range(1, int(settings["train"]["L"]) + 1)))]
    if name == "fat-tail":
        out = [("rho(a, memorization time)", -1)]
        return out + ([("rho(tail level, memorization time)", -1)] if len(settings["tail_levels"]) > 1 else [])
    return [("rho(P, memorization time)", 1)]


def run(name: str, fams: list[str], smoke: bool, null_seeds: int, effect_seeds: int, keep: bool,
        out: Callable[[str], None] = print, rates: Path | None = None,
        config: Path | None = None, first_seed: int = 0) -> None:
    module = EXPERIMENTS[name]
    preset = "micro" if smoke else "quick"
    if smoke:
        null_seeds, effect_seeds = 2, 1
    # the bootstrap gives the interval only, never the decision: a few draws suffice here
    # (rates.NOT_DECISIVE: the stored rates still belong to the preset's settings)
    settings = {**resolve_settings(name, preset, module.DEFAULTS, config), "num_boot": 20}
    if keep and config:
        raise ValueError("--record stores rates with a preset's own settings: not with --config")
    train = settings["train"]
    stats = statistics(name, settings)
    sizes = (f"P = {', '.join(map(str, settings['sizes']))}, steps {', '.join(str(scaling.run_steps(settings, p)) for p in settings['sizes'])}"
             if name == "scaling" else f"P = {train['num_train']}, {train['steps']} steps")
    out(f"{name}, {preset} preset ({sizes}, d = {int(train['s']) ** int(train['L'])}, "
        f"{len(settings['seeds'])} seeds per set, {settings.get('null_runs', 0)} null run "
        f"sets, alpha {settings['alpha']}; settings {fingerprint(settings)})")
    for fam in fams:
        null, effect, strength = plan(name, settings, fam)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as root:
            d0 = decisions(module, null, settings, seeds=range(first_seed, first_seed + null_seeds), root=f"{root}/null")
            d1 = (decisions(module, effect, settings, seeds=range(100 + first_seed, 100 + first_seed + effect_seeds),
                            root=f"{root}/effect")
                  if effect is not None and effect_seeds else np.zeros((0, len(stats)), np.int64))
        opposite = OPPOSITE_READING.get((name, fam))
        out(f"\nfamily: {FAMILIES[fam]}" + (f"; effect: {strength}" if effect is not None else "; no effect set")
            + (f"; its true reading: {opposite} (only 'yes' is false)" if opposite else ""))
        out(f"| statistic | false positives (null, {len(d0)} sets) | found (effect, {len(d1)} sets) | "
            "wrong direction |" + (" read as the look-alike |" if opposite else ""))
        out("|---|---|---|---|" + ("---|" if opposite else ""))
        for k, (stat, sign) in enumerate(stats):
            if opposite:  # the verdict's other answer is this family's truth: only its "yes" is false
                fp, seen = int((d0[:, k] == sign).sum()), int((d0[:, k] == -sign).sum())
                out(f"| {stat}{' [primary]' if k == 0 else ''} | {fp / len(d0):.0%} ({fp}) | - | - | "
                    f"{seen / len(d0):.0%} ({seen}) |")
                if keep and not smoke and k == 0:  # the other statistics' directions mean other things
                    record(name, fingerprint(settings), stat, fam, null=(fp, len(d0)), effect=(seen, len(d0)),
                           strength=f"read as {opposite}", path=rates)
                continue
            fp = int((d0[:, k] != 0).sum())
            found = int((d1[:, k] == sign).sum()) if len(d1) else 0
            wrong = int((d1[:, k] == -sign).sum()) if len(d1) else 0
            tag = " [primary]" if k == 0 else ""
            eff = f"{found / len(d1):.0%}" if len(d1) else "-"
            wr = f"{wrong / len(d1):.0%}" if len(d1) else "-"
            out(f"| {stat}{tag} | {fp / len(d0):.0%} ({fp}) | {eff} | {wr} |")
            if keep and not smoke:
                record(name, fingerprint(settings), stat, fam, null=(fp, len(d0)),
                       effect=(found, len(d1)) if len(d1) else None, strength=strength, path=rates)
        out(f"wall {time.perf_counter() - t0:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), default="prototypes")
    parser.add_argument("--family", choices=sorted(FAMILIES), nargs="+", default=["mixture"])
    parser.add_argument("--null-seeds", type=int, default=20)
    parser.add_argument("--effect-seeds", type=int, default=10)
    parser.add_argument("--record", action="store_true", help="store the rates with the preset")
    parser.add_argument("--rates", type=Path, default=None,
                        help="store them in this file instead (one per job when jobs run side by side)")
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML overriding the preset (as `rhmfast experiment --config`), e.g. an earlier preset")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="simulation seeds from here (more sets beside an earlier run; add the counts)")
    a = parser.parse_args()
    run(a.experiment, a.family, a.smoke, a.null_seeds, a.effect_seeds, a.record, out=lambda s: print(s, flush=True),
        rates=a.rates, config=a.config, first_seed=a.first_seed)


if __name__ == "__main__":
    main()
    sys.exit(0)
