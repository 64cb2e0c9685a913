"""The experiment pipeline end to end on the micro preset, with a stand-in trainer of
known behaviour (tests/rundirs.py: fake_train), so no torch is needed: report and
figures exist, quote the numbers the analysis computes, and resume/merge work."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from rundirs import fake_train

from rhmfast import experiments
from rhmfast.cli import main as cli_main
from rhmfast.experiments import slop


def _run(name, tmp_path, **kw):
    return experiments.run(name, preset="micro", out=tmp_path / name, train_fn=fake_train, progress=False, **kw)


def _figures_ok(exp_dir):
    md = (exp_dir / "report.md").read_text()
    page = (exp_dir / "report.html").read_text()
    stems = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\.png\)", md)
    assert stems, "report has no figure"
    for stem in stems:
        png, svg = exp_dir / f"{stem}.png", exp_dir / f"{stem}.svg"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in svg.read_text()
    # self-contained: every figure inlined as SVG, no link to a file
    assert page.count("<svg") == len(stems)
    assert 'src="figures/' not in page and "href=\"figures/" not in page
    return md, page


def test_prototypes_without_null_runs_says_not_measurable(tmp_path, capsys):
    # the stand-in's strings are not its config's grammar draw, so no null run can be
    # fitted to them: the verdict says so instead of quoting an uncalibrated statistic
    exp_dir = _run("prototypes", tmp_path)
    res = json.loads((exp_dir / "results.json").read_text())
    verdict = res["verdicts"][0]
    assert verdict.startswith("prototypical samples memorized first: not measurable (no null runs could be fitted")
    assert verdict in (exp_dir / "report.md").read_text() and verdict in capsys.readouterr().out
    assert "primary" not in res


def test_fat_tail_scaling_verdicts(tmp_path):
    from rhmfast.analysis import load_run
    from rhmfast.analysis.sweeps import CopyCounts
    from rhmfast.experiments.common import sampler_probability

    ft_dir = _run("fat-tail", tmp_path)
    ft = json.loads((ft_dir / "results.json").read_text())
    # stand-in: onset ~ 1/max(1+a, 1/4): smaller a memorized later (a = -1 never, tied
    # last), in both seeds: rho = -1, and the exact permutation p of 4 exponents x 2 seeds is 3/577
    assert ft["verdict"].startswith("fat tails (smaller a) delay memorization: yes: rho(a, memorization time) = -1.00 [")
    assert ft["primary"]["value"] == -1.0 and ft["primary"]["p"] == pytest.approx(3 / 577)
    # never calibrated at these settings: no false-positive rate is quoted (none is fixed by the null count)
    assert len(ft["primary"]["null"]) == 576 and "false-positive rate" not in ft["verdict"]
    clocks = [float(c) for c in ft["clock_by_exponent"]]  # "inf": never
    assert clocks == sorted(clocks, reverse=True) and clocks[0] > clocks[-1]
    # the verdict's clock is the memorized mass of the run directories themselves
    runs = [load_run(ft_dir / "runs" / f"a{a:g}-all-seed0") for a in ft["exponents"]]
    mine = [CopyCounts.of(r, sampler_probability(r)).clock(0.1) for r in runs]
    assert [float(r["clock"]) for r in ft["runs"] if r["level"] == "all" and r["seed"] == 0] == pytest.approx(mine)
    # the tail level (stand-in: factor 1 + level): later at level 2, but 2 levels x 2 seeds
    # allow only 4 permutations, which can never reach p <= 0.05
    assert float(ft["clock_by_level"][1]) > float(ft["clock_by_level"][0])
    assert "tail level (power law a=1 at one level, 0 = root): no effect detected (too few null values" in (
        ft["verdict_level"])
    # 4 sizes x 2 seeds: 576 permutations (the micro preset's 2 runs cannot decide)
    sc_dir = _run("scaling", tmp_path, config={"sizes": [8, 12, 16, 24], "seeds": [0, 1]})
    sc = json.loads((sc_dir / "results.json").read_text())
    assert sc["verdict"].startswith("memorization time grows with training-set size: yes: rho(P, memorization time)")
    assert sc["primary"]["value"] == 1.0 and sc["primary"]["decision"] == 1
    lo, hi = sc["exponent_interval"]
    assert 0.7 < sc["exponent"] < 1.3 and lo <= sc["exponent"] <= hi  # stand-in: onset proportional to P
    assert f"time ~ P^{sc['exponent']:.2f} [{lo:.2f}, {hi:.2f}]" in (sc_dir / "report.md").read_text()
    for d in ("fat-tail", "scaling"):
        md, _ = _figures_ok(tmp_path / d)
        assert "figures/null_tests.png" in md


def test_slop_without_a_grammar_says_not_measurable(tmp_path):
    # slop reads exact block probabilities (grammar.json), which the stand-in's runs lack:
    # it says so instead of quoting an uncalibrated ratio (its verdict on known answers:
    # tests/test_known_answers_slop.py)
    sl_dir = _run("slop", tmp_path)
    sl = json.loads((sl_dir / "results.json").read_text())
    assert sl["verdict"] == (f"{slop.QUESTION}: not measurable "
                             "(the runs have no grammar.json, so no exact block probabilities)")
    assert sl["verdict"] in (sl_dir / "report.md").read_text() and "primary" not in sl


def test_resume_skips_finished_runs_and_retrains_the_rest(tmp_path):
    calls = []

    def flaky(cfg):
        calls.append(cfg.stem)
        if cfg.stem == "seed1" and calls.count("seed1") == 1:
            raise KeyboardInterrupt  # killed in the middle of the second run
        return fake_train(cfg)

    with pytest.raises(KeyboardInterrupt):
        experiments.run("prototypes", preset="micro", out=tmp_path / "p", train_fn=flaky, progress=False)
    assert calls == ["seed0", "seed1"]
    assert not (tmp_path / "p" / "report.md").exists()
    experiments.run("prototypes", preset="micro", out=tmp_path / "p", train_fn=flaky, progress=False)
    assert calls == ["seed0", "seed1", "seed1"]  # seed0 not retrained
    experiments.run("prototypes", preset="micro", out=tmp_path / "p", train_fn=flaky, progress=False)
    assert calls == ["seed0", "seed1", "seed1"]  # all done: analysis only
    assert (tmp_path / "p" / "report.md").exists()


def test_emit_commands_then_merge(tmp_path, capsys):
    out = tmp_path / "sc"
    assert cli_main(["experiment", "scaling", "--preset", "micro", "--out", str(out), "--emit-commands"]) == 0
    text = capsys.readouterr().out
    cmds = [line for line in text.splitlines() if line.startswith("rhmfast train ")]
    assert len(cmds) == 2 and all(c.endswith(".toml") for c in cmds)
    assert not (out / "runs").exists()  # nothing trained
    merge = text.splitlines()[-1]
    assert merge.startswith("# merge: rhmfast experiment scaling") and "--no-train" in merge
    # "the cluster" trains each config, then the merge analyses the run directories
    for c in cmds:
        fake_train(c.split(" ", 2)[2])
    assert cli_main(["experiment", "scaling", "--preset", "micro", "--out", str(out), "--no-train"]) == 0
    assert (out / "report.html").exists()
    assert "memorization time grows with training-set size: " in capsys.readouterr().out


def test_bad_settings_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="name must be one of"):
        experiments.run("nope", preset="micro", out=tmp_path)
    with pytest.raises(ValueError, match="preset must be one of"):
        experiments.run("slop", preset="huge", out=tmp_path)
    with pytest.raises(ValueError, match="'steps' is a TrainConfig key: put it under \\[train\\]"):
        experiments.run("slop", preset="micro", config={"steps": 10}, out=tmp_path / "a")
    with pytest.raises(ValueError, match="'sizes' is not a setting of experiment 'slop'"):
        experiments.run("slop", preset="micro", config={"sizes": [1]}, out=tmp_path / "a")
    with pytest.raises(ValueError, match="'seeds' must be a list"):
        experiments.run("slop", preset="micro", config={"seeds": 3}, out=tmp_path / "a")
    with pytest.raises(ValueError, match="tail_levels must lie in"):
        experiments.run("fat-tail", preset="micro", config={"tail_levels": [5]}, out=tmp_path / "a")
    with pytest.raises(ValueError, match="duplicate runs"):
        experiments.run("scaling", preset="micro", config={"sizes": [8, 8]}, out=tmp_path / "a")
    with pytest.raises(ValueError, match=r"jobs = 0 must be in \[1, "):
        experiments.run("slop", preset="micro", out=tmp_path / "j", jobs=0)
    # the same directory with other settings is not silently mixed
    _run("slop", tmp_path)
    with pytest.raises(ValueError, match="holds another experiment or other settings"):
        experiments.run("slop", preset="micro", out=tmp_path / "slop", config={"train": {"steps": 64}},
                        train_fn=fake_train)
    # a TOML override file, and the CLI's error path
    cfg = tmp_path / "o.toml"
    cfg.write_text("seeds = [3]\n[train]\nsteps = 64\n")
    exp_dir, settings, specs = experiments.plan("slop", preset="micro", config=cfg, out=tmp_path / "o")
    assert [s.name for s in specs] == ["seed3"] and settings["train"]["steps"] == 64
    assert "steps = 64" in (exp_dir / "configs" / "seed3.toml").read_text()
    assert cli_main(["experiment", "slop", "--preset", "micro", "--out", str(tmp_path / "x"),
                     "--config", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "override", "match"),
    [
        ("prototypes", {"alpha": 1.5}, r"'alpha' = 1.5: must be a number in \(0, 1\)"),
        ("prototypes", {"num_boot": 0}, r"'num_boot' = 0: must be an integer >= 1"),
        ("prototypes", {"seeds": [1.5]}, r"'seeds' = \[1.5\]: must be a non-empty list of integers"),
        ("prototypes", {"seeds": []}, r"'seeds' = \[\]: must be a non-empty list"),
        ("fat-tail", {"exponents": ["x"]}, r"'exponents' = \['x'\]: must be a list of finite numbers >= -1"),
        ("fat-tail", {"tail_levels": [0.5]}, r"'tail_levels' = \[0.5\]: must be a list of integers"),
        ("fat-tail", {"copy_threshold": 0}, r"'copy_threshold' = 0: must be a number in \(0, 1\]"),
        ("scaling", {"sizes": [0, 8]}, r"'sizes' = \[0, 8\]: must be a non-empty list of integers >= 1"),
        ("slop", {"valid_min": 1.5}, r"'valid_min' = 1.5: must be a number in \[0, 1\]"),
        ("slop", {"top_blocks": True}, r"'top_blocks' = True: must be an integer >= 1"),
        # [train] keys are checked as the trainer will, before anything is written
        ("slop", {"train": {"stpes": 10}}, r"\[train\] settings of run 'seed0': unknown TrainConfig key\(s\) \['stpes'\]"),
        ("slop", {"train": {"lr": -1.0}}, r"\[train\] settings of run 'seed0': TrainConfig.lr = -1.0: must be finite and > 0"),
        ("scaling", {"train": {"width": 33, "model": "transformer"}}, r"run 'P8-seed0': TrainConfig.heads"),
    ],
)
def test_bad_experiment_settings_fail_before_anything_is_written(tmp_path, name, override, match):
    out = tmp_path / "e"
    with pytest.raises(ValueError, match=match):
        experiments.run(name, preset="micro", config=override, out=out, train_fn=fake_train, progress=False)
    assert not out.exists()  # the corrected rerun is not refused as "another experiment"


def test_bad_run_arguments_name_the_parameter(tmp_path, capsys):
    with pytest.raises(TypeError, match="out must be a path"):
        experiments.run("slop", preset="micro", out=5)
    with pytest.raises(TypeError, match=r"\[train\] settings of run 'seed0': TrainConfig.steps = '9': expected int"):
        experiments.run("slop", preset="micro", config={"train": {"steps": "9"}}, out=tmp_path / "t")
    with pytest.raises(ValueError, match=r"nproc_per_node = 0 must be in \[1, "):
        experiments.run("slop", preset="micro", out=tmp_path / "n", nproc_per_node=0)
    with pytest.raises(ValueError, match=r"nproc_per_node = 3 must divide \[train\] batch_size = 16"):
        experiments.run("slop", preset="micro", out=tmp_path / "n", nproc_per_node=3)
    assert cli_main(["experiment", "slop", "--preset", "micro", "--out", str(tmp_path / "c"),
                     "--nproc-per-node", "0", "--emit-commands"]) == 2
    assert "nproc_per_node = 0 must be in [1, " in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_emit_commands_under_torchrun(tmp_path, capsys):
    out = tmp_path / "sc"
    assert cli_main(["experiment", "scaling", "--preset", "micro", "--out", str(out), "--emit-commands",
                     "--nproc-per-node", "4"]) == 0
    cmds = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    assert len(cmds) == 2
    for c in cmds:
        assert c.startswith("torchrun --standalone --nproc_per_node=4 -m rhmfast train ") and c.endswith(".toml")
    from rhmfast.experiments.runner import train_command

    cmd = train_command(out / "configs" / "P8-seed0.toml", 2)
    assert cmd[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert cmd[5:8] == ["-m", "rhmfast", "train"]
    assert train_command(out / "configs" / "P8-seed0.toml")[1:4] == ["-m", "rhmfast", "train"]


def test_no_train_without_runs_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="have no run directory"):
        experiments.run("slop", preset="micro", out=tmp_path / "s", train=False)


def test_failed_training_process_is_reported_and_resumable(tmp_path, monkeypatch, capsys):
    from rhmfast.experiments import runner

    # a "trainer" command that fails for one run: the others are marked done, the CLI says so
    tests_dir = str(Path(__file__).parent)

    def command(cfg, nproc_per_node=1):
        if cfg.stem == "P16-seed0":
            return [sys.executable, "-c", "import sys; sys.exit(3)"]
        code = f"import sys; sys.path.insert(0, {tests_dir!r}); import rundirs; rundirs.fake_train({str(cfg)!r})"
        return [sys.executable, "-c", code]

    monkeypatch.setattr(runner, "train_command", command)
    rc = cli_main(["experiment", "scaling", "--preset", "micro", "--out", str(tmp_path / "s"), "--jobs", "2"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "training failed for: P16-seed0 (exit 3" in err and "rerun the same command" in err
    assert (tmp_path / "s" / "done" / "P8-seed0").exists()
    assert not (tmp_path / "s" / "done" / "P16-seed0").exists()
    assert (tmp_path / "s" / "logs" / "P16-seed0.log").exists()


def test_interrupt_terminates_training_processes(tmp_path, monkeypatch):
    import os
    import signal
    import threading
    import time

    from rhmfast.experiments import runner

    started = []

    def command(cfg, nproc_per_node=1):
        started.append(cfg.stem)
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    monkeypatch.setattr(runner, "train_command", command)
    # Python leaves SIGINT ignored when started with it ignored (a background job of a
    # non-interactive shell, as CI may run us): install the Ctrl-C handler for this test
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # interrupt the experiment once both "trainings" run
        threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            experiments.run("scaling", preset="micro", out=tmp_path / "s", jobs=2, progress=False)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - t0 < 30  # the sleeping children were terminated, not waited for
    assert sorted(started) == ["P16-seed0", "P8-seed0"]
    assert not (tmp_path / "s" / "done").exists()


def test_experiment_presets_adjust_the_shared_train_preset(tmp_path):
    from rhmfast.experiments import fat_tail, prototypes, scaling, slop
    from rhmfast.experiments.presets import TRAIN, resolve_settings

    ft_steps = fat_tail.DEFAULTS["quick"]["train"]["steps"]
    assert ft_steps != TRAIN["quick"]["steps"]
    ft = resolve_settings("fat-tail", "quick", fat_tail.DEFAULTS, None)
    assert ft["train"]["steps"] == ft_steps and ft["train"]["model"] == TRAIN["quick"]["model"]
    assert resolve_settings("scaling", "quick", scaling.DEFAULTS, None)["train"] == dict(
        TRAIN["quick"], **scaling.DEFAULTS["quick"]["train"])
    # prototypes and slop: the quick CPU base itself (the study's tail, P = 128), 99 null run sets
    for module, name in ((prototypes, "prototypes"), (slop, "slop")):
        quick = resolve_settings(name, "quick", module.DEFAULTS, None)
        assert quick["train"] == TRAIN["quick"] and quick["null_runs"] == 99
    assert TRAIN["quick"]["sampling_reveal"] == "one"
    # the user's override still wins over the experiment's adjustment
    ft = resolve_settings("fat-tail", "quick", fat_tail.DEFAULTS, {"train": {"steps": 99}})
    assert ft["train"]["steps"] == 99
    # the experiment defaults themselves are not mutated
    assert fat_tail.DEFAULTS["quick"]["train"]["steps"] == ft_steps
