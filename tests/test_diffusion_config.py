"""TrainConfig: TOML round trip, replace, and errors that name the key."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhmfast.diffusion import TrainConfig


def test_defaults_match_architecture_contract():
    c = TrainConfig()
    assert (c.v, c.n, c.m, c.s, c.L) == (6, 6, 4, 2, 4)
    assert (c.process, c.model, c.steps, c.batch_size, c.lr) == (
        "masked",
        "transformer",
        5000,
        128,
        1e-3,
    )
    assert c.d == 16


@settings(deadline=None, max_examples=50)
@given(
    width=st.integers(1, 64).map(lambda k: 2 * k),
    lr=st.floats(1e-6, 1.0),
    zipf_levels=st.lists(st.integers(0, 3), max_size=4),
    run_dir=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20),
    unique=st.booleans(),
)
def test_toml_round_trip(width, lr, zipf_levels, run_dir, unique):
    c = TrainConfig(
        width=width,
        heads=1,
        lr=lr,
        zipf_a=1.0,
        zipf_levels=tuple(zipf_levels),
        run_dir=run_dir,
        unique=unique,
    )
    assert TrainConfig.from_toml_string(c.to_toml()) == c


def test_from_toml_file_and_replace(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('run_dir = "a"\nsteps = 7\nzipf_a = 1.5\nzipf_levels = [1, 2]\nlr = 1\n')
    c = TrainConfig.from_toml(p)
    assert c.steps == 7 and c.zipf_levels == (1, 2) and c.lr == 1.0 and isinstance(c.lr, float)
    c2 = c.replace(run_dir="b")
    assert c2.run_dir == "b" and c2.steps == 7 and c.run_dir == "a"


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"width": 0}, "width"),
        ({"steps": -1}, "steps"),
        ({"s": 1}, "s"),
        ({"m": 7, "v": 2, "s": 2}, "m"),  # m*v > v**s
        ({"n": 5, "m": 1, "v": 2, "s": 2}, "n"),
        ({"process": "gaussian"}, "process"),
        ({"model": "mlp"}, "model"),
        ({"width": 130, "heads": 4}, "heads"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"ema": 1.0}, "ema"),
        ({"zipf_a": -1.5}, "zipf_a"),
        ({"zipf_levels": (4,)}, "zipf_levels"),
        ({"device": "tpu"}, "device"),
        ({"process": "d3pm", "sampling_steps": 10}, "sampling_steps"),
        ({"checkpoints_per_octave": 0}, "checkpoints_per_octave"),
        ({"num_heldout": -2}, "num_heldout"),
        ({"L": 10**9}, "L"),  # refused before s**L is computed
        ({"s": 10**9}, "s"),
        ({"seed": 2**64}, "seed"),
        ({"grammar_seed": 2**63}, "grammar_seed"),
        ({"data_seed": -1}, "data_seed"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"grad_clip": float("nan")}, "grad_clip"),
        ({"zipf_levels": (1,)}, "zipf_levels"),  # zipf_a = -1 (uniform): no tail to place
        ({"schedule": "linear"}, "schedule"),
        ({"min_lr": 0.01}, "min_lr"),  # above lr = 1e-3
        ({"min_lr": -1e-4}, "min_lr"),
        ({"block_mask": 1.5}, "block_mask"),
        ({"block_mask": float("nan")}, "block_mask"),
        ({"block_mask": 0.5, "process": "d3pm"}, "block_mask"),
        ({"block_mask": 0.5, "L": 1, "n": 2, "m": 2}, "block_mask"),
        ({"mask_sampling": "uniform"}, "mask_sampling"),
        ({"mask_sampling": "count", "process": "d3pm"}, "mask_sampling"),
        ({"mask_sampling": "count", "block_mask": 0.5}, "mask_sampling"),
    ],
)
def test_bad_values_name_the_key(changes, key):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{key} ="):
        TrainConfig().replace(**changes)


@pytest.mark.parametrize(
    "key, value",
    [("steps", 1.5), ("unique", 1), ("lr", "big"), ("process", 3), ("zipf_levels", [True])],
)
def test_bad_types_name_the_key(key, value):
    with pytest.raises(TypeError, match=rf"TrainConfig\.{key} ="):
        TrainConfig().replace(**{key: value})


def test_unknown_keys_and_tables_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown TrainConfig key.*'widht'"):
        TrainConfig.from_toml_string("widht = 3\n")
    with pytest.raises(ValueError, match="top-level keys only"):
        TrainConfig.from_toml_string("[model]\nwidth = 3\n")
    p = tmp_path / "bad.toml"
    p.write_text("steps = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        TrainConfig.from_toml(p)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().steps = 3  # type: ignore[misc]


def test_config_import_needs_no_torch():
    import subprocess
    import sys

    code = "import sys; from rhmfast.diffusion import TrainConfig; TrainConfig(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_heldout_count_defaults_to_num_train():
    assert TrainConfig(num_train=300).heldout_count == 300
    assert TrainConfig(num_train=300, num_heldout=0).heldout_count == 0
    assert TrainConfig(num_train=300, num_heldout=7).heldout_count == 7
