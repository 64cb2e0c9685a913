"""Calibration of the experiments' verdicts at the quick preset's size: the rate at
which each statistic rejects on simulated run sets that memorize every string at the
same rate (false positives; the verdict's level is 5%), and on run sets with a
moderate real effect (power), each set read against null runs fitted to it exactly as
``rhmfast experiment`` fits them (``rhmfast.knownanswers.calibration``).

``python benches/calibrate.py``            20 null and 10 effect seeds (docs/RESULTS.md's tables:
                                           ``--null-seeds 60 --effect-seeds 20``, and 200 / 40
                                           for the sweeps)
``python benches/calibrate.py --smoke``    2 + 1 seeds at the micro preset (CI)
``python benches/calibrate.py --experiment slop``   the same for slop's verdict
``python benches/calibrate.py --experiment fat-tail`` (or ``scaling``)   the sweeps' verdicts

slop: the same shape of copies and validity; the effect is an over-producer, the
grammar component's rule probabilities sharpened to ``p ** 1.5`` (``sharpen=1.5``),
which over-produces common blocks and under-produces rare ones.

The simulated model follows a trained quick run's shape: no copies for the first 300
steps, then memorized mass rising linearly to 0.35 at the last step; per-level
validity rising from 10-40% to 80-95%. The effect: the most prototypical training
string (block frequency) memorized at twice the rate of the least (``tilt="blocks"``,
strength 2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

from rhmfast.experiments import EXPERIMENTS, prototypes, slop
from rhmfast.experiments.presets import resolve_settings
from rhmfast.knownanswers.calibration import decisions
from rhmfast.knownanswers.memorizer import Memorizer


def _trained_shape(train: dict) -> tuple[list[tuple[int, float]], dict[int, list[tuple[int, float]]]]:
    """A trained quick run's shape: no copies for the first quarter (at most 300 steps),
    then memorized mass rising linearly to 0.35 at the last step; per-level validity
    rising from 10-40% to 80-95%."""
    last = int(train["steps"])
    lam = [(0, 0.0), (min(300, last // 4), 0.0), (last, 0.35)]
    validity = {lev: [(0, 0.1 * (lev + 1)), (last, min(0.8 + 0.05 * lev, 1.0))] for lev in range(int(train["L"]))}
    return lam, validity


def _decide(name: str, null: Any, effect: Any, settings: dict, null_seeds: int, effect_seeds: int) -> tuple[Any, Any]:
    """Decisions of ``name``'s statistics on ``null_seeds`` null and ``effect_seeds``
    effect run sets (each against null runs fitted to it)."""
    with tempfile.TemporaryDirectory() as root:
        d0 = decisions(EXPERIMENTS[name], null, settings, seeds=range(null_seeds), root=f"{root}/null")
        d1 = decisions(EXPERIMENTS[name], effect, settings, seeds=range(100, 100 + effect_seeds), root=f"{root}/effect")
    return d0, d1


def _table(d0: Any, d1: Any, rows: list[tuple[str, int]], right: str = "right direction",
           wrong: str = "wrong direction") -> None:
    """docs/RESULTS.md's calibration table: per statistic (name, the decision that is the
    effect's direction), its false-positive rate on the null sets and its rates of
    the right and the wrong direction on the effect sets."""
    print(f"| statistic | false positives (null, {len(d0)} seeds) | {right} (effect, {len(d1)} seeds) | {wrong} |")
    print("|---|---|---|---|")
    for k, (name, sign) in enumerate(rows):
        print(f"| {name} | {(d0[:, k] != 0).mean():.0%} | {(d1[:, k] == sign).mean():.0%} "
              f"| {(d1[:, k] == -sign).mean():.0%} |")


def main(smoke: bool = False, null_seeds: int = 20, effect_seeds: int = 10, copy_threshold: float | None = None) -> None:

    preset = "micro" if smoke else "quick"
    if smoke:
        null_seeds, effect_seeds = 2, 1
    settings = resolve_settings("prototypes", preset, prototypes.DEFAULTS,
                                {} if copy_threshold is None else {"copy_threshold": copy_threshold})
    train = settings["train"]
    lam, validity = _trained_shape(train)
    null = Memorizer(lam=lam, validity=validity)
    effect = Memorizer(lam=lam, validity=validity, tilt="blocks", strength=2.0)
    print(f"prototypes, {preset} preset (P = {train['num_train']}, d = {int(train['s']) ** int(train['L'])}, "
          f"{len(settings['seeds'])} seeds per set, {settings['null_runs']} null run sets, copy_threshold "
          f"{settings['copy_threshold']}, alpha {settings['alpha']})", flush=True)
    t0 = time.perf_counter()
    d0, d1 = _decide("prototypes", null, effect, settings, null_seeds, effect_seeds)
    # the effect's direction: a clock's rho < 0 (prototypical first), excess copies Q5 - Q1 > 0
    _table(d0, d1, [("equal-power clock rho (block frequency) [primary]", -1), ("equal-power clock rho (log p)", -1),
                    ("excess copies Q5 - Q1 (block frequency)", 1), ("excess copies Q5 - Q1 (log p)", 1)])
    print(f"wall {time.perf_counter() - t0:.0f} s", flush=True)


def main_slop(smoke: bool = False, null_seeds: int = 20, effect_seeds: int = 10) -> None:
    """slop's verdict (levels-pooled common-block ratio in the window) on known answers."""

    preset = "micro" if smoke else "quick"
    if smoke:
        null_seeds, effect_seeds = 2, 1
    settings = resolve_settings("slop", preset, slop.DEFAULTS, None)
    train = settings["train"]
    lam, validity = _trained_shape(train)
    null = Memorizer(lam=lam, validity=validity)
    effect = Memorizer(lam=lam, validity=validity, sharpen=1.5)
    print(f"slop, {preset} preset (P = {train['num_train']}, d = {int(train['s']) ** int(train['L'])}, "
          f"{len(settings['seeds'])} seeds per set, {settings['null_runs']} null run sets, valid_min "
          f"{settings['valid_min']}, copy_max {settings['copy_max']}, alpha {settings['alpha']})", flush=True)
    t0 = time.perf_counter()
    d0, d1 = _decide("slop", null, effect, settings, null_seeds, effect_seeds)
    names = slop.statistic_names(list(range(1, int(train["L"]) + 1)))
    names[0] += " [primary]"
    _table(d0, d1, [(n, 1) for n in names], right="over-produced", wrong="under-produced")
    print(f"wall {time.perf_counter() - t0:.0f} s", flush=True)


def stretched_memorizer(last: int, L: int, factor: float = 1.0) -> Any:
    """:func:`_trained_shape` with its memorized mass on a time axis stretched by ``factor``."""

    lam, validity = _trained_shape({"steps": last, "L": L})
    return Memorizer(lam=[(step * factor, value) for step, value in lam], validity=validity)


def main_sweep(name: str, smoke: bool = False, null_seeds: int = 20, effect_seeds: int = 10) -> None:
    """fat-tail's or scaling's verdict (rho(swept parameter, memorized-mass clock) within
    seeds against the labels permuted within seeds) on known answers. Null: the same
    schedule for every run of the sweep. Effect: its time axis stretched, fat-tail by
    1 + (a_max - a) / (a_max - a_min) (the heaviest tail 2x later), scaling by P / P_min."""

    module = EXPERIMENTS[name]
    preset = "micro" if smoke else "quick"
    if smoke:
        null_seeds, effect_seeds = 2, 1
    settings = resolve_settings(name, preset, module.DEFAULTS, None)
    train = settings["train"]
    last, L = int(train["steps"]), int(train["L"])
    if name == "fat-tail":
        lo, hi = min(settings["exponents"]), max(settings["exponents"])

        def effect(params: Any) -> Any:
            return stretched_memorizer(last, L, 1 + (hi - params["a"]) / (hi - lo))
        swept, right = f"exponents {settings['exponents']}, tail levels {settings['tail_levels']}", -1
    else:
        smallest = min(settings["sizes"])

        def effect(params: Any) -> Any:
            return stretched_memorizer(last, L, params["P"] / smallest)
        swept, right = f"sizes {settings['sizes']}", 1
    print(f"{name}, {preset} preset ({swept}, {len(settings['seeds'])} seeds per set, {last} steps, "
          f"{train['eval_samples']} samples per checkpoint, copy_threshold {settings['copy_threshold']}, "
          f"alpha {settings['alpha']})", flush=True)
    t0 = time.perf_counter()
    d0, d1 = _decide(name, stretched_memorizer(last, L), effect, settings, null_seeds, effect_seeds)
    _table(d0, d1, [(f"{name}: rho(parameter, memorized-mass clock) [primary]", right)])
    print(f"wall {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--null-seeds", type=int, default=20)
    parser.add_argument("--effect-seeds", type=int, default=10)
    parser.add_argument("--copy-threshold", type=float, default=None)
    parser.add_argument("--experiment", choices=["prototypes", "slop", "fat-tail", "scaling"], default="prototypes")
    a = parser.parse_args()
    if a.experiment == "slop":
        main_slop(a.smoke, a.null_seeds, a.effect_seeds)
    elif a.experiment in ("fat-tail", "scaling"):
        main_sweep(a.experiment, a.smoke, a.null_seeds, a.effect_seeds)
    else:
        main(a.smoke, a.null_seeds, a.effect_seeds, a.copy_threshold)
    sys.exit(0)
