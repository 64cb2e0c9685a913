"""The command line on user errors: exit 2 with one line naming the key or the file,
never a traceback, and no run files left that would block the corrected rerun."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("torch")

from cli_errors import fails

from rhmfast.cli import main  # noqa: E402
from rhmfast.diffusion import TrainConfig  # noqa: E402
from rhmfast.diffusion import config as config_mod  # noqa: E402


def tiny(tmp_path: pathlib.Path, **kw) -> TrainConfig:
    tokens = tmp_path / "tokens.npz"
    if not tokens.exists():
        rng = np.random.default_rng(0)
        np.savez(tokens, train=rng.integers(0, 4, (8, 8)), heldout=rng.integers(0, 4, (4, 8)))
    base = dict(
        run_dir=str(tmp_path / "run"), data_path=str(tokens), v=4, s=2, L=3, width=16, depth=1,
        heads=2, steps=4, batch_size=8, first_checkpoint=4, eval_samples=8, elbo_draws=1,
        progress=False, device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def write(tmp_path: pathlib.Path, cfg: TrainConfig, name: str = "c.toml") -> str:
    path = tmp_path / name
    path.write_text(cfg.to_toml())
    return str(path)


@pytest.fixture
def little_memory(monkeypatch):
    """1 GiB free, whatever the machine has: the memory checks refuse the same sizes
    everywhere, and a big machine never starts an impossible training."""
    monkeypatch.setattr(config_mod, "available_memory", lambda: 2**30)


# ---- train: files ---------------------------------------------------------------------
def test_missing_config_file(tmp_path, capsys):
    line = fails(capsys, "train", str(tmp_path / "nope.toml"))
    assert "nope.toml" in line and "No such file" in line


def test_config_that_is_a_directory(tmp_path, capsys):
    assert str(tmp_path) in fails(capsys, "train", str(tmp_path))


def test_run_dir_that_is_a_regular_file(tmp_path, capsys):
    cfg = write(tmp_path, tiny(tmp_path))
    line = fails(capsys, "train", cfg, "--run-dir", cfg)
    assert "run_dir" in line and "c.toml" in line and "not a directory" in line


def test_run_dir_below_a_regular_file(tmp_path, capsys):
    cfg = write(tmp_path, tiny(tmp_path))
    assert "c.toml" in fails(capsys, "train", cfg, "--run-dir", cfg + "/sub")


def test_config_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "latin.toml"
    path.write_bytes(tiny(tmp_path).to_toml().encode() + b'# caf\xe9\n')
    line = fails(capsys, "train", str(path))
    assert "latin.toml" in line and "UTF-8" in line


def test_config_that_is_not_toml(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("width = = 3\n")
    line = fails(capsys, "train", str(path))
    assert "bad.toml" in line and "not valid TOML" in line


def test_cli_subprocess_prints_no_traceback(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rhmfast", "train", str(tmp_path / "missing.toml")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"rhmfast train: error: {str(tmp_path / 'missing.toml')!r}: No such file or directory"
    ]


# ---- train: sizes ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, value, match",
    [
        ("width", 2**31, "must be <= 2\\*\\*16"),
        ("width", 2**16, "bytes"),  # within the bound, far beyond memory
        ("batch_size", 2**40, "must be <= 2\\*\\*24"),
        ("batch_size", 2**22, "bytes"),
        ("eval_samples", 2**40, "must be <= 2\\*\\*20"),
        ("num_train", 10**9, "bytes"),
    ],
)
def test_impossible_sizes_are_refused_before_any_file(tmp_path, capsys, little_memory, key, value, match):
    extra = {"data_path": "", "v": 6, "n": 6, "m": 4, "L": 4} if key == "num_train" else {}
    cfg = tiny(tmp_path, **extra)
    if key == "width":
        cfg = cfg.replace(heads=1)
    # written by hand: the bounds keep the constructor from building such a config
    text = cfg.to_toml().replace(f"\n{key} = {getattr(cfg, key)}\n", f"\n{key} = {value}\n")
    path = tmp_path / "c.toml"
    path.write_text(text)
    t0 = time.perf_counter()
    line = fails(capsys, "train", str(path))
    assert time.perf_counter() - t0 < 30
    assert f"TrainConfig.{key} = {value}" in line
    assert re_search(match, line)
    run = pathlib.Path(cfg.run_dir)
    assert not (run / "config.toml").exists()
    assert not (run / "data.npz").exists()
    # the corrected config trains in the same run directory
    assert main(["train", write(tmp_path, cfg, "fixed.toml")]) == 0
    assert TrainConfig.from_toml(run / "config.toml") == cfg


def re_search(pattern: str, text: str) -> bool:
    import re

    return re.search(pattern, text) is not None


def test_num_heldout_beyond_the_strings_left_is_refused_at_once(tmp_path, capsys):
    # RHM(4, 2, 2, 2, 3) has 256 strings: 16 train, 240 are left
    cfg = tiny(tmp_path, data_path="", v=4, n=2, m=2, L=3, num_train=16, num_heldout=10**6)
    t0 = time.perf_counter()
    line = fails(capsys, "train", write(tmp_path, cfg))
    assert time.perf_counter() - t0 < 10
    assert "TrainConfig.num_heldout = 1000000" in line and "only 240 are left" in line
    assert "256" in line and "num_train = 16" in line
    assert not (pathlib.Path(cfg.run_dir) / "config.toml").exists()
    fixed = cfg.replace(num_heldout=240)
    assert main(["train", write(tmp_path, fixed, "fixed.toml")]) == 0


def test_sampling_errors_name_num_train_and_num_heldout(tmp_path, monkeypatch):
    import rhmfast
    from rhmfast.trainset import build_data

    def refuse(self, num, **kw):
        raise ValueError(f"num: cannot allocate {num} elements")

    monkeypatch.setattr(rhmfast.RHM, "sample", refuse)
    cfg = tiny(tmp_path, data_path="", v=4, n=2, m=2, L=3, num_train=16)
    with pytest.raises(ValueError, match="^TrainConfig.num_train = 16: "):
        build_data(cfg)
    calls = []

    def heldout_only(self, num, **kw):
        calls.append(num)
        if len(calls) > 1:
            raise ValueError(f"num: cannot allocate {num} elements")
        return np.zeros((num, 8), np.uint8)

    monkeypatch.setattr(rhmfast.RHM, "sample", heldout_only)
    with pytest.raises(ValueError, match="^TrainConfig.num_heldout = -1: "):
        build_data(cfg)


def test_pickle_as_data_path_is_refused_without_advice_to_unpickle(tmp_path, capsys):
    path = tmp_path / "tokens.npz"
    with open(path, "wb") as f:
        pickle.dump({"train": np.zeros((8, 8), np.int64)}, f)
    line = fails(capsys, "train", write(tmp_path, tiny(tmp_path, data_path=str(path))))
    assert "data_path" in line and "pickle" in line and "refused" in line
    assert "allow_pickle" not in line and "unsafely" not in line


def test_object_array_in_data_path_is_refused(tmp_path, capsys):
    path = tmp_path / "obj.npz"
    np.savez(path, train=np.array([[1, "a"]], dtype=object))
    line = fails(capsys, "train", write(tmp_path, tiny(tmp_path, data_path=str(path))))
    assert "'train' holds Python objects; refused" in line and "allow_pickle" not in line


# ---- generate -------------------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path) -> pathlib.Path:
    cfg = tiny(tmp_path, steps=40, first_checkpoint=4, checkpoints_per_octave=4, eval_samples=0,
               elbo_draws=0)
    assert main(["train", write(tmp_path, cfg)]) == 0
    return pathlib.Path(cfg.run_dir)


def test_generate_user_errors(run_dir, tmp_path, capsys):
    data = run_dir / "data.npz"
    good = data.read_bytes()
    data.write_bytes(good[: len(good) // 2])
    line = fails(capsys, "generate", str(run_dir), "--num", "3")
    assert "data.npz" in line and "not a readable .npz" in line
    data.unlink()
    assert "data.npz': no such file" in fails(capsys, "generate", str(run_dir))
    with open(data, "wb") as f:
        pickle.dump({"train": np.zeros((2, 8))}, f)
    line = fails(capsys, "generate", str(run_dir))
    assert "pickle" in line and "refused" in line and "allow_pickle" not in line
    data.write_bytes(good)

    line = fails(capsys, "generate", str(run_dir), "--num", "3", "--out", str(tmp_path))
    assert "out = " in line and "is a directory" in line
    line = fails(capsys, "generate", str(run_dir), "--num", str(10**11))
    assert line.startswith("rhmfast generate: error: num = 100000000000:") and "bytes" in line
    assert not (run_dir / "generated").exists()


def test_generate_with_every_checkpoint_corrupt_prints_one_line(run_dir, capsys):
    paths = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    assert len(paths) >= 5
    for p in paths:
        p.write_bytes(b"garbage")
    line = fails(capsys, "generate", str(run_dir), "--num", "3")
    assert f"holds no readable checkpoint: {len(paths)} damaged" in line
    assert "weights_only" not in line


def test_generate_past_damaged_checkpoints_warns_once(run_dir, capsys):
    paths = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    for p in paths[2:]:
        p.write_bytes(p.read_bytes()[:100])
    assert main(["generate", str(run_dir), "--num", "3"]) == 0
    captured = capsys.readouterr()
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("rhmfast: warning: checkpoint")
    assert f"and {len(paths) - 3} more" in warning[0]
    assert "step_00000005_seed_0.npy" in captured.out  # the second checkpoint: step 5
