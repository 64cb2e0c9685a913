"""Training loop: run directory contract, bit-exact resume, faults, memorization, DDP."""

from __future__ import annotations

import json
import math
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rhmfast.diffusion import TrainConfig, evaluation, generate_from_run, train, trainer
from rhmfast.diffusion import checkpoint as ckpt

torch.set_num_threads(1)


def token_file(tmp_path: pathlib.Path, num: int = 8, v: int = 4, d: int = 8, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    path = tmp_path / "tokens.npz"
    np.savez(path, train=rng.integers(0, v, (num, d)), heldout=rng.integers(0, v, (4, d)))
    return str(path)


def tiny(tmp_path: pathlib.Path, name: str = "run", **kw) -> TrainConfig:
    base = dict(
        run_dir=str(tmp_path / name),
        data_path=token_file(tmp_path),
        v=4,
        s=2,
        L=3,
        width=16,
        depth=1,
        heads=2,
        steps=40,
        batch_size=8,
        lr=3e-3,
        warmup=5,
        first_checkpoint=16,
        checkpoints_per_octave=2,
        eval_samples=16,
        elbo_draws=2,
        progress=False,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def final_state(run: pathlib.Path) -> dict:
    return ckpt.load_checkpoint(ckpt.step_path(run / "checkpoints", 40))


def assert_same_state(a: dict, b: dict) -> None:
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[k][name], sb[k][name])


def test_checkpoint_schedule_is_log_spaced():
    assert evaluation.checkpoint_steps(40, 16, 2) == [16, 23, 32, 40]
    steps = evaluation.checkpoint_steps(10**6, 16, 4)
    ratios = np.diff(np.log2(steps[:-1]))
    assert np.allclose(ratios, 0.25, atol=0.05)


def test_run_directory_contract(tmp_path):
    run = train(tiny(tmp_path))
    assert TrainConfig.from_toml(run / "config.toml") == tiny(tmp_path)
    with np.load(run / "data.npz", allow_pickle=False) as f:
        assert f["train"].dtype == np.uint8 and f["train"].shape == (8, 8)
        assert f["heldout"].shape == (4, 8) and np.isnan(f["train_logp"]).all()
    steps = [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")]
    assert steps == [16, 23, 32, 40]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == steps
    for r in evals:
        assert {
            "copy_fraction",
            "distinct_copies",
            "valid_fraction",
            "valid_levels",
            "train_loss",
            "heldout_loss",
            "train_nll_mean",
            "heldout_nll_mean",
            "seconds",
        } <= r.keys()
    assert all(
        {"step", "loss", "lr", "tokens_per_s"} <= r.keys() for r in records if r["kind"] == "train"
    )
    with np.load(run / "eval" / "step_00000040.npz", allow_pickle=False) as f:
        assert f["samples"].shape == (16, 8) and f["samples"].dtype == np.uint8
        assert f["copy_of"].dtype == np.int64 and f["train_nll"].shape == (8,)
        assert f["heldout_nll"].shape == (4,) and int(f["step"]) == 40
        train_arr = np.load(run / "data.npz")["train"]
        for row, c in zip(f["samples"], f["copy_of"], strict=True):
            hits = np.flatnonzero((train_arr == row).all(1))
            assert c == (hits[0] if len(hits) else -1)


class Killed(Exception):
    pass


def test_cosine_schedule_warms_up_then_decays_to_min_lr(tmp_path):
    cfg = tiny(tmp_path, "lr", schedule="cosine", min_lr=1e-4, steps=40, warmup=5)
    lrs = [trainer._lr_at(cfg, k) for k in range(cfg.steps)]
    const = [trainer._lr_at(cfg.replace(schedule="constant"), k) for k in range(cfg.steps)]
    assert lrs[:5] == const[:5] == [3e-3 * (k + 1) / 5 for k in range(5)]
    assert lrs[5] == const[5] == 3e-3 and set(const[5:]) == {3e-3}
    assert lrs[-1] == pytest.approx(1e-4)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))
    assert lrs[22] == pytest.approx(1e-4 + (3e-3 - 1e-4) * 0.5 * (1 + math.cos(math.pi / 2)))
    train(cfg)
    logged = {
        r["step"]: r["lr"]
        for r in map(json.loads, (tmp_path / "lr" / "metrics.jsonl").read_text().splitlines())
        if r["kind"] == "train"
    }
    assert logged and all(lr == pytest.approx(lrs[k - 1]) for k, lr in logged.items())


def train_losses(run: pathlib.Path) -> list[tuple[int, float]]:
    """(step, loss) of every train line of metrics.jsonl (tokens/s is wall-clock)."""
    recs = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [(r["step"], r["loss"]) for r in recs if r["kind"] == "train"]


@pytest.mark.parametrize(
    "rolling, schedule, block_mask, sampling",
    [(False, "constant", 0.0, "time"), (True, "cosine", 0.5, "time"), (False, "cosine", 0.0, "count")],
)
def test_resume_after_interruption_is_bit_exact(tmp_path, monkeypatch, rolling, schedule, block_mask, sampling):
    # 3 steps per metrics line: the resume points (23, 31) fall inside a window
    monkeypatch.setattr(trainer, "_log_every", lambda steps: 3)
    ref = train(tiny(tmp_path, "ref", schedule=schedule, block_mask=block_mask, mask_sampling=sampling))
    if rolling:  # write checkpoints/resume.pt after every step between checkpoints
        monkeypatch.setattr(trainer, "RESUME_EVERY_S", -1.0)
    real = trainer.evaluate

    def dying(model, process, data, config, step, *a, **k):
        if step == 32:
            raise Killed
        return real(model, process, data, config, step, *a, **k)

    monkeypatch.setattr(trainer, "evaluate", dying)
    cfg = tiny(tmp_path, "killed", schedule=schedule, block_mask=block_mask, mask_sampling=sampling)
    with pytest.raises(Killed):
        train(cfg)
    monkeypatch.setattr(trainer, "evaluate", real)
    run = pathlib.Path(cfg.run_dir)
    assert [s for s, _ in ckpt.list_checkpoints(run / "checkpoints")] == [16, 23]
    resume = run / "checkpoints" / "resume.pt"
    assert resume.exists() == rolling
    if rolling:
        assert ckpt.load_checkpoint(resume)["step"] == 31
    train(cfg)  # resumes from step 23 (or 31 from the rolling file)
    assert_same_state(final_state(ref), final_state(run))
    with (
        np.load(ref / "eval" / "step_00000040.npz") as a,
        np.load(run / "eval" / "step_00000040.npz") as b,
    ):
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps)  # no duplicated lines from the interrupted part
    assert train_losses(run) == train_losses(ref)  # same windows, same means
    assert [s for s, _ in train_losses(ref)][:3] == [3, 6, 9]


KILL_CHILD = """
import sys, time, torch
from rhmfast.diffusion import TrainConfig, train, trainer
from rhmfast.diffusion import checkpoint as ckpt
torch.set_num_threads(1)
trainer.RESUME_EVERY_S = -1.0  # the rolling resume.pt after every step
save = ckpt.save_checkpoint
def slow_save(*a, **k):
    save(*a, **k)
    time.sleep(0.05)  # slow enough for the parent to kill it mid-run
ckpt.save_checkpoint = slow_save
train(TrainConfig.from_toml(sys.argv[1]))
"""


def test_a_killed_process_resumes_bit_exactly(tmp_path):
    """SIGKILL a training process mid-run (no cleanup runs), then resume in this one."""
    ref = train(tiny(tmp_path, "ref"))
    cfg = tiny(tmp_path, "killed")
    (tmp_path / "killed.toml").write_text(cfg.to_toml())
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(tmp_path / "killed.toml")],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    run = pathlib.Path(cfg.run_dir)
    resume = run / "checkpoints" / "resume.pt"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if ckpt.step_path(run / "checkpoints", 16).exists() and resume.exists():
                break
            time.sleep(0.01)
        assert child.poll() is None, "the child finished before it could be killed"
        child.kill()
    finally:
        child.wait()
    assert not ckpt.step_path(run / "checkpoints", 40).exists()
    train(cfg)
    assert_same_state(final_state(ref), final_state(run))
    assert train_losses(run) == train_losses(ref)


def test_corrupt_checkpoint_falls_back_and_stays_exact(tmp_path, monkeypatch):
    ref = train(tiny(tmp_path, "ref"))
    cfg = tiny(tmp_path, "run", steps=40)
    train(cfg.replace(steps=40))
    run = pathlib.Path(cfg.run_dir)
    # damage the last two checkpoints and the metrics tail; the run restarts from step 23
    for s in (32, 40):
        p = ckpt.step_path(run / "checkpoints", s)
        p.write_bytes(p.read_bytes()[:100])
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')
    with pytest.warns(UserWarning, match="falling back"):
        train(cfg)
    assert_same_state(final_state(ref), final_state(run))
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line)


def test_a_different_config_is_refused(tmp_path):
    cfg = tiny(tmp_path, steps=16)
    train(cfg)
    with pytest.raises(ValueError, match="different config: lr"):
        train(cfg.replace(lr=1e-2))
    train(cfg.replace(progress=True))  # runtime-only keys may change; nothing to do


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"v": 3}, r"array 'train': row \d+: token \d+ \(position \d+\) is outside the alphabet \[0, v=3\)"),
        ({"model": "unet", "L": 2}, "model = 'unet' needs strings of length s\\*\\*L = 4"),
        ({"batch_size": 7}, None),
    ],
)
def test_data_errors_name_the_key(tmp_path, changes, match):
    cfg = tiny(tmp_path, **changes)
    if match is None:  # batch 7 is fine on one process
        train(cfg.replace(steps=2, first_checkpoint=2))
        return
    with pytest.raises(ValueError, match=match):
        train(cfg)


def test_a_config_error_leaves_the_run_dir_reusable(tmp_path):
    bad = tiny(tmp_path, model="unet", L=2)  # the token file has d = 8, not 2**2
    with pytest.raises(ValueError, match="needs strings of length"):
        train(bad)
    assert not (pathlib.Path(bad.run_dir) / "config.toml").exists()
    fixed = bad.replace(L=3, steps=16)
    train(fixed)
    assert TrainConfig.from_toml(pathlib.Path(fixed.run_dir) / "config.toml") == fixed


def test_too_many_unique_strings_names_num_train(tmp_path):
    cfg = tiny(tmp_path, data_path="", v=2, n=1, m=1, L=2, num_train=3)  # 1 string exists
    with pytest.raises(ValueError, match="TrainConfig.num_train = 3: the grammar has only 1"):
        train(cfg)
    assert not (pathlib.Path(cfg.run_dir) / "config.toml").exists()


def test_missing_data_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="TrainConfig.data_path = .*no such file"):
        train(tiny(tmp_path, data_path=str(tmp_path / "nope.npz")))


@pytest.mark.parametrize(
    "model, process", [("unet", "masked"), ("transformer", "d3pm"), ("unet", "d3pm")]
)
def test_other_models_and_processes_train(tmp_path, model, process):
    cfg = tiny(
        tmp_path,
        model=model,
        process=process,
        d3pm_steps=20,
        steps=60,
        first_checkpoint=60,
        eval_samples=8,
        batch_size=32,
    )
    run = train(cfg)
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rec if r["kind"] == "train"]
    assert len(losses) == 60 and np.isfinite(losses).all()
    assert np.mean(losses[-15:]) < np.mean(losses[:15])
    with np.load(run / "eval" / "step_00000060.npz") as f:
        assert f["samples"].shape == (8, 8) and (f["samples"] < 4).all()
        assert np.isfinite(f["train_nll"]).all()


def test_generate_from_run(tmp_path):
    run = train(tiny(tmp_path))
    path = generate_from_run(run, num=10, seed=3)
    assert path == run / "generated" / "step_00000040_seed_3.npy"
    x = np.load(path, allow_pickle=False)
    assert x.shape == (10, 8) and x.dtype == np.uint8
    again = generate_from_run(run, step=23, num=10, seed=3, out=tmp_path / "g.npy")
    assert np.load(again).shape == (10, 8)
    np.testing.assert_array_equal(np.load(generate_from_run(run, num=10, seed=3)), x)
    with pytest.raises(ValueError, match="step = 5: no checkpoint"):
        generate_from_run(run, step=5)
    with pytest.raises(ValueError, match="no config.toml"):
        generate_from_run(tmp_path)
    with pytest.raises(TypeError, match="step: expected an integer, got str"):
        generate_from_run(run, step="40")
    with pytest.raises(ValueError, match=r"num = -1 must be in \[0, "):
        generate_from_run(run, num=-1)
    with pytest.raises(TypeError, match="seed: expected an integer, got float"):
        generate_from_run(run, seed=1.5)
    with pytest.raises(ValueError, match="device = 'tpu': must be one of"):
        generate_from_run(run, device="tpu")


def grammar_cfg(tmp_path: pathlib.Path, **kw) -> TrainConfig:
    """A run on grammar data (4 training strings) long enough to memorize them."""
    data = dict(data_path="", n=2, m=2, num_train=4, num_heldout=16)
    model = dict(width=64, depth=2, heads=4)
    optimisation = dict(steps=300, batch_size=128, warmup=20, ema=0.99)
    evaluation = dict(first_checkpoint=300, checkpoints_per_octave=4, eval_samples=256)
    sampling = dict(sampling_steps=128, elbo_draws=8)
    return tiny(
        tmp_path, "gram", **{**data, **model, **optimisation, **evaluation, **sampling, **kw}
    )


def test_grammar_data_and_validity(tmp_path):
    import rhmfast

    cfg = grammar_cfg(
        tmp_path, num_train=32, steps=4, first_checkpoint=4, eval_samples=64, elbo_draws=1
    )
    run = train(cfg)
    g = rhmfast.RHM.load(run / "grammar.json")
    assert g == rhmfast.RHM(4, 2, 2, 2, 3, seed=cfg.grammar_seed)
    with np.load(run / "data.npz", allow_pickle=False) as f:
        tr, ho = f["train"], f["heldout"]
        assert tr.shape == (32, 8) and ho.shape == (16, 8)
        assert len({r.tobytes() for r in tr}) == 32  # unique
        assert not {r.tobytes() for r in tr} & {r.tobytes() for r in ho}  # disjoint
        np.testing.assert_allclose(f["train_logp"], g.log_prob(tr))
        np.testing.assert_allclose(f["heldout_logp"], g.log_prob(ho))
    with np.load(run / "eval" / "step_00000004.npz", allow_pickle=False) as f:
        chk = g.check(f["samples"])
        np.testing.assert_array_equal(f["valid"], chk.valid)
        np.testing.assert_array_equal(f["valid_levels"], chk.valid_levels)
        assert f["valid_levels"].shape == (64, 3)
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert rec["valid_fraction"] == pytest.approx(float(chk.valid.mean()))
    assert len(rec["valid_levels"]) == 3


def test_zipf_tail_levels_reach_the_grammar(tmp_path):
    import rhmfast

    cfg = grammar_cfg(
        tmp_path,
        zipf_a=1.0,
        zipf_levels=(1,),
        num_train=8,
        steps=2,
        first_checkpoint=2,
        eval_samples=0,
        elbo_draws=0,
    )
    run = train(cfg)
    g = rhmfast.RHM.load(run / "grammar.json")
    np.testing.assert_allclose(g.rule_probs[1][0], rhmfast.zipf(2, 1.0))
    np.testing.assert_allclose(g.rule_probs[0][0], [0.5, 0.5])


def test_tiny_grammar_training_set_is_memorized(tmp_path):
    # 4 of the grammar's 256 strings: a small transformer learns to reproduce them
    run = train(grammar_cfg(tmp_path))
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rec if r["kind"] == "eval"][-1]
    assert last["copy_fraction"] >= 0.9
    assert last["distinct_copies"] == 4
    with np.load(run / "data.npz") as f:
        chance = float(np.exp(f["train_logp"]).sum())  # copies a perfect grammar model would make
        assert chance < 0.05
        # the model finds training strings far likelier than the grammar does
        with np.load(run / "eval" / "step_00000300.npz") as e:
            assert (e["train_nll"] < -f["train_logp"]).all()
            assert e["heldout_nll"].mean() > -f["heldout_logp"].mean()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = """
import sys, torch
torch.set_num_threads(1)
from rhmfast.diffusion import TrainConfig, train
train(TrainConfig.from_toml(sys.argv[1]))
"""


def test_ddp_two_gloo_processes_match_one(tmp_path):
    one = train(tiny(tmp_path, "one", steps=16, first_checkpoint=16, batch_size=8))
    cfg = tiny(tmp_path, "two", steps=16, first_checkpoint=16, batch_size=8)
    cfg_path = tmp_path / "two.toml"
    cfg_path.write_text(cfg.to_toml())
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DDP_SCRIPT, str(cfg_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    a = ckpt.load_checkpoint(ckpt.step_path(one / "checkpoints", 16))
    b = ckpt.load_checkpoint(ckpt.step_path(pathlib.Path(cfg.run_dir) / "checkpoints", 16))
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-5, atol=1e-6)


def test_cli_train_and_generate(tmp_path, capsys):
    from rhmfast.cli import main

    cfg = tiny(tmp_path, steps=16, first_checkpoint=16, run_dir=str(tmp_path / "ignored"))
    toml = tmp_path / "c.toml"
    toml.write_text(cfg.to_toml())
    assert main(["train", str(toml), "--run-dir", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "checkpoints" / "step_00000016.pt").exists()
    assert not (tmp_path / "ignored").exists()
    assert main(["generate", str(tmp_path / "cli"), "--num", "5", "--seed", "1"]) == 0
    out = pathlib.Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.load(out, allow_pickle=False).shape == (5, 8)
    args = ["generate", str(tmp_path / "cli"), "--num", "5", "--seed", "1", "--device", "cpu"]
    assert main([*args, "--out", str(tmp_path / "again.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"), np.load(out))


def test_cli_config_errors_exit_2_naming_the_key(tmp_path, capsys):
    from rhmfast.cli import main

    toml = tmp_path / "bad.toml"
    toml.write_text(tiny(tmp_path).to_toml().replace("width = 16", "width = 0"))
    with pytest.raises(SystemExit) as exc:
        main(["train", str(toml)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "rhmfast train: error: TrainConfig.width = 0: must be >= 1" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["generate", str(tmp_path / "nothing")])
    assert "holds no config.toml" in capsys.readouterr().err


def test_checkpoint_from_another_model_gives_a_clear_error(tmp_path):
    from rhmfast.diffusion.models import Transformer
    from rhmfast.diffusion.trainer import load_weights

    model = Transformer(input_vocab=5, v=4, d=8, width=16, depth=1, heads=2)
    other = Transformer(input_vocab=5, v=4, d=8, width=32, depth=1, heads=2)
    with pytest.raises(ValueError, match="does not match the model this config builds"):
        load_weights(model, other.state_dict(), tmp_path)
    load_weights(model, model.state_dict(), tmp_path)  # its own weights load


def test_compiled_training_matches_eager(tmp_path):
    """``compile = true`` (torch.compile, inductor on CPU) trains the same trajectory."""
    eager = train(tiny(tmp_path, "eager", steps=12, first_checkpoint=12))
    compiled = train(tiny(tmp_path, "compiled", steps=12, first_checkpoint=12, compile=True))

    def losses(run: pathlib.Path) -> list[float]:
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if r["kind"] == "train"]

    assert len(losses(eager)) >= 2
    assert losses(compiled) == pytest.approx(losses(eager), rel=1e-4, abs=1e-5)
    a = ckpt.load_checkpoint(ckpt.step_path(eager / "checkpoints", 12))
    b = ckpt.load_checkpoint(ckpt.step_path(compiled / "checkpoints", 12))
    assert a["model"].keys() == b["model"].keys()  # saved from the module, not the compiled wrapper
    for name in a["model"]:
        torch.testing.assert_close(a["model"][name], b["model"][name], rtol=1e-4, atol=1e-5)
