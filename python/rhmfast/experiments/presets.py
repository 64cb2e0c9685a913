"""Preset TrainConfigs (``micro``: seconds, for tests; ``quick``: <= 15 minutes on 2 CPU
cores; ``paper``: the study's scale, for a GPU) and the resolution of user overrides.

>>> sorted(PRESETS)
['micro', 'paper', 'quick']"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rhmfast._args import integer, number
from rhmfast._io.toml import load_toml
from rhmfast.diffusion.config import SEED_LIMIT, TrainConfig
from rhmfast.grammar import (
    STUDY_GRAMMAR,  # the study's grammar (docs/SCIENCE.md): quick and paper presets
)

__all__ = ["PRESETS", "TRAIN", "TRAIN_KEYS", "resolve_settings", "check_train"]

PRESETS = ("micro", "quick", "paper")

# TrainConfig keys (the dataclass needs no torch); used to point misplaced keys to [train].
TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def _int(lo: int, hi: int | None = None) -> Callable[[Any], int]:
    return lambda x: integer("", x, lo=lo, hi=hi)


def _bool(x: Any) -> bool:
    if not isinstance(x, bool):
        raise TypeError
    return x


def _real(lo: float, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> Callable[[Any], float]:
    return lambda x: number("", x, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


# Experiment settings: key -> (is a list, check of one value, the rule in words). Checked
# before anything is written or trained, so a typo never costs a training.
_RULES: dict[str, tuple[bool, Callable[[Any], Any], str]] = {
    "seeds": (True, _int(0, SEED_LIMIT - 1), "a non-empty list of integers in [0, 2**63)"),
    "sizes": (True, _int(1), "a non-empty list of integers >= 1"),
    "steps_per_string": (False, _int(0), "an integer >= 0"),
    "exponents": (True, _real(-1), "a list of finite numbers >= -1 (-1: uniform rules)"),
    "tail_levels": (True, _int(0), "a list of integers >= 0 (levels, 0 = root)"),
    "num_boot": (False, _int(1), "an integer >= 1"),
    "top_blocks": (False, _int(1), "an integer >= 1"),
    "alpha": (False, _real(0, 1, lo_open=True, hi_open=True), "a number in (0, 1)"),
    "copy_threshold": (False, _real(0, 1, lo_open=True), "a number in (0, 1]"),
    "nll_threshold": (False, _real(0, 1, lo_open=True), "a number in (0, 1]"),
    "copy_max": (False, _real(0, 1), "a number in [0, 1]"),
    "common_fraction": (False, _real(0, 1, lo_open=True), "a number in (0, 1]"),
    "tail_exponent": (False, _real(0, lo_open=True), "a finite number > 0"),
    "null_runs": (False, _int(19, 10_000), "an integer in [19, 10000] (fewer cannot reach p <= 0.05)"),
    "valid_min": (False, _real(0, 1), "a number in [0, 1]"),
    "nulls_over_produce": (False, _bool, "true or false"),
}
_NON_EMPTY = frozenset({"seeds", "sizes"})


def _check_setting(key: str, value: Any) -> Any:
    """``value`` checked against ``key``'s rule (numbers as Python ints and floats), or
    a ValueError naming the key and the rule."""
    rule = _RULES.get(key)
    if rule is None:
        return value
    is_list, check, words = rule
    try:
        if is_list:
            if not isinstance(value, list) or (not value and key in _NON_EMPTY):
                raise ValueError
            return [check(x) for x in value]
        return check(value)
    except (TypeError, ValueError):
        raise ValueError(f"config key {key!r} = {value!r}: must be {words}") from None


def check_train(run_name: str, train: Mapping[str, Any]) -> None:
    """Validate one run's TrainConfig settings as the trainer will, before anything is
    written or launched; the error names the run and the key."""
    try:
        TrainConfig.from_dict({**train, "run_dir": "unused"})
    except (ValueError, TypeError) as err:
        raise type(err)(f"[train] settings of run {run_name!r}: {err}") from None

TRAIN: dict[str, dict[str, Any]] = {
    # A grammar of 256 strings, 16 of them trained on: memorized within a few hundred steps.
    "micro": dict(
        v=4, n=2, m=2, s=2, L=3, grammar_seed=0, zipf_a=1.0, zipf_levels=[],
        num_train=16, num_heldout=16, width=32, depth=1, heads=2, steps=128,
        batch_size=16, lr=3e-3, warmup=8, ema=0.9, checkpoints_per_octave=2, first_checkpoint=8,
        eval_samples=64, elbo_draws=2, sampling_reveal="one", device="cpu", bf16=False, progress=False,
    ),
    # The CPU base of the quick presets (docs/SCIENCE.md, "The setups"; prototypes and
    # slop use it as it is, the sweeps adjust it): the study's grammar (d = 16) with Zipf a = 1,
    # P = 128 unique strings, batch 128, 2600 steps. The tree U-Net (width 128, depth 2,
    # lr 2e-3) replaced a small transformer: at the same cost per step it learns the
    # grammar's lower levels within a few hundred steps
    # (valid samples 50% at step 1000 against 20%) and memorizes within the budget (26%
    # copies at 2600 steps against 7.6%), so the whole trajectory (generalization,
    # over-production, copies) fits in the run. Measured: ~0.2 s per step per run with two
    # runs sharing 2 cores, 2.7 s per evaluation. Shorter strings (d = 8) were tried and
    # rejected: the model memorizes them before it learns the grammar, and chance
    # reproductions swamp the top quintiles.
    "quick": dict(
        **STUDY_GRAMMAR, zipf_a=1.0, zipf_levels=[],
        num_train=128, num_heldout=128, model="unet", width=128, depth=2, heads=4, steps=2600,
        batch_size=128, lr=2e-3, warmup=100, ema=0.99, checkpoints_per_octave=6, first_checkpoint=128,
        eval_samples=512, elbo_draws=4, sampling_reveal="one", device="auto", bf16=False, progress=True,
    ),
    # The study's setup (docs/SCIENCE.md): v=6 n=6 m=4 s=2 L=4, 20,000 unique strings, the
    # tree-matched U-Net (kernel = stride = s), at the width benches/gpu.py trains. At
    # this size the generalization baseline needs the root rule, which the 1/t loss never
    # learned in 40,000 steps and mask-count sampling learned by step ~27,000 (docs/RESULTS.md; with
    # uniform rules: with these Zipf a = 1 rules it is not yet measured).
    "paper": dict(
        **STUDY_GRAMMAR, zipf_a=1.0, zipf_levels=[],
        num_train=20000, num_heldout=-1, model="unet", width=256, depth=2, heads=8, steps=200_000,
        mask_sampling="count",
        batch_size=256, lr=1e-3, warmup=1000, ema=0.999, checkpoints_per_octave=4,
        first_checkpoint=256, eval_samples=4096, elbo_draws=8, sampling_reveal="one", device="auto", bf16=True,
        progress=True,
    ),
}


def _load_override(config: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return copy.deepcopy(dict(config))
    path = Path(config)
    if not path.is_file():
        raise ValueError(f"config={str(path)!r}: no such file")
    return load_toml(path)


def resolve_settings(
    name: str,
    preset: str,
    defaults: Mapping[str, Mapping[str, Any]],
    config: str | Path | Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The experiment's settings: preset defaults, then the override (a TOML file or a
    dict; experiment keys at top level, TrainConfig keys under ``[train]``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    settings: dict[str, Any] = copy.deepcopy(dict(defaults[preset]))
    # an experiment's preset may adjust the shared TrainConfig preset (e.g. fewer steps
    # for a sweep of many runs) under its own "train" key
    settings["train"] = {**copy.deepcopy(TRAIN[preset]), **settings.get("train", {})}
    override = _load_override(config)
    for key, value in override.items():
        if key == "train":
            if not isinstance(value, Mapping):
                raise ValueError("config key 'train' must be a table of TrainConfig keys")
            for k in value:
                if k == "run_dir":
                    raise ValueError("config key train.run_dir is set by the experiment (use --out)")
            settings["train"].update(value)
        elif key in settings:
            old = settings[key]
            if isinstance(old, list) and not isinstance(value, list):
                raise ValueError(f"config key {key!r} must be a list, got {value!r}")
            settings[key] = _check_setting(key, value)
        elif key in TRAIN_KEYS:
            raise ValueError(f"config key {key!r} is a TrainConfig key: put it under [train]")
        else:
            known = sorted(k for k in settings if k != "train")
            raise ValueError(f"config key {key!r} is not a setting of experiment {name!r} (known: {known}, [train])")
    return settings
