"""The experiments' pipeline: plan the runs, train (or simulate) them, analyse, write
the report; and the ``rhmfast experiment`` command.

>>> from rhmfast.experiments.pipeline import EXPERIMENTS
>>> sorted(EXPERIMENTS)
['fat-tail', 'prototypes', 'scaling', 'slop']
>>> exp_dir = run("prototypes", preset="micro")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from rhmfast._io.atomic import atomic_write_text
from rhmfast._io.jsonfile import write_json
from rhmfast._io.toml import dump_toml, load_toml, tomllib
from rhmfast.diffusion.config import TrainConfig
from rhmfast.experiments import fat_tail, prototypes, scaling, slop
from rhmfast.experiments.presets import PRESETS, check_train, resolve_settings
from rhmfast.experiments.runner import (
    RunSpec,
    check_parallel,
    config_path,
    format_commands,
    is_done,
    mark_done,
    run_dir,
    run_trainings,
    write_configs,
)
from rhmfast.knownanswers.memorizer import Memorizer
from rhmfast.knownanswers.simulate import simulate_run
from rhmfast.report import Report

__all__ = ["EXPERIMENTS", "PRESETS", "run", "plan", "simulate", "run_experiment_cli"]

EXPERIMENTS: dict[str, ModuleType] = {
    "prototypes": prototypes,
    "fat-tail": fat_tail,
    "slop": slop,
    "scaling": scaling,
}


def _module(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"name must be one of {sorted(EXPERIMENTS)}, got {name!r}")
    return EXPERIMENTS[name]


def _default_out(name: str, preset: str) -> Path:
    return Path("runs") / f"{name}-{preset}"


def plan(
    name: str,
    *,
    preset: str = "quick",
    config: str | Path | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
) -> tuple[Path, dict[str, Any], list[RunSpec]]:
    """Resolve settings, claim the experiment directory and write one TrainConfig per
    run (``configs/NAME.toml``); returns ``(exp_dir, settings, runs)``.

    A directory that holds the same experiment with other settings is refused, so a
    rerun resumes rather than mixes experiments.
    """
    module = _module(name)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path (str or os.PathLike), got {type(out).__name__}")
    settings = resolve_settings(name, preset, module.DEFAULTS, config)
    exp_dir = Path(out) if out is not None else _default_out(name, preset)
    specs = module.plan(settings)
    for spec in specs:
        check_train(spec.name, spec.train)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"experiment {name!r}: duplicate runs in the sweep ({names}); remove repeated values")
    if not specs:
        raise ValueError(f"experiment {name!r}: the settings give no run to train")
    _claim(exp_dir, name, preset, settings)
    write_configs(exp_dir, specs)
    return exp_dir, settings, specs


def _claim(exp_dir: Path, name: str, preset: str, settings: dict[str, Any]) -> None:
    text = dump_toml({"experiment": name, "preset": preset, **settings})
    path = exp_dir / "experiment.toml"
    if path.exists():
        old, new = load_toml(path), tomllib.loads(text)
        if old != new:
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(
                f"out={str(exp_dir)!r} holds another experiment or other settings (differs in {diff}); "
                "use another --out, or remove the directory to start over"
            )
        return
    atomic_write_text(path, text)


def run(
    name: str,
    *,
    preset: str = "quick",
    config: str | Path | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    jobs: int | None = None,
    nproc_per_node: int = 1,
    train: bool = True,
    train_fn: Callable[[Path], object] | None = None,
    progress: bool = True,
) -> Path:
    """Run experiment ``name`` end to end and return its directory (holding
    ``report.md``, ``report.html``, ``results.json``, ``figures/`` and ``runs/``).

    ``jobs``: parallel training processes (default: one per GPU, else per CPU core);
    ``nproc_per_node``: processes per training, each training data-parallel under
    ``torchrun`` (DistributedDataParallel; the same code path as one process);
    ``train=False`` only merges and analyses the run directories already there (for
    runs trained elsewhere, e.g. from ``--emit-commands``); ``train_fn`` replaces the
    rhmfast trainer (a callable taking a TrainConfig TOML path; runs in this process).
    Rerunning the same call resumes an interrupted experiment.
    """
    module = _module(name)
    check_parallel(jobs, nproc_per_node)
    exp_dir, settings, specs = plan(name, preset=preset, config=config, out=out)
    for spec in specs:  # DDP splits each batch evenly over the processes
        if int(spec.train["batch_size"]) % nproc_per_node:
            raise ValueError(f"nproc_per_node = {nproc_per_node} must divide [train] batch_size = "
                             f"{spec.train['batch_size']} (run {spec.name!r})")
    if train:
        run_trainings(exp_dir, specs, jobs=jobs, nproc_per_node=nproc_per_node, train_fn=train_fn,
                      progress=progress)
    else:
        missing = [s.name for s in specs if not (run_dir(exp_dir, s) / "data.npz").exists()]
        if missing:
            raise ValueError(f"train=False but runs {missing} have no run directory under {exp_dir / 'runs'}")
        unfinished = [s.name for s in specs if not is_done(exp_dir, s)]
        if unfinished:
            print(f"note: runs {unfinished} look unfinished; analysing what they hold", file=sys.stderr)
    if progress:
        print(f"{exp_dir.name}: analysing {len(specs)} run(s), writing figures and report", file=sys.stderr)
    report = Report(exp_dir, f"{module.TITLE} ({name}, preset {preset})")
    simulated = [s.name for s in specs if (run_dir(exp_dir, s) / "simulation.json").exists()]
    if simulated:
        report.text(
            f"**Simulated runs** ({len(simulated)} of {len(specs)}): written by known-answer memorizers "
            "(`rhmfast simulate`), not trained; each run's `simulation.json` holds the truth."
        )
    results = module.analyse(exp_dir, specs, settings, report)
    report.heading("Runs")
    report.text(
        f"Run directories under `{(exp_dir / 'runs').as_posix()}`, one TrainConfig each under "
        f"`{(exp_dir / 'configs').as_posix()}`; the experiment's settings in `experiment.toml`; every number "
        f"above in `results.json`. Reproduce with `rhmfast experiment {name} --preset {preset} --out {exp_dir}`."
    )
    report.table(["run", "swept values"], [[s.name, ", ".join(f"{k}={v}" for k, v in s.params.items())] for s in specs])
    report.write()
    results = {"experiment": name, "preset": preset, "verdicts": report.verdicts, **results}
    write_json(exp_dir / "results.json", results, indent=2)
    for line in report.verdicts:
        print(line)
    return exp_dir


def simulate(
    name: str,
    memorizer: Any,
    *,
    preset: str = "quick",
    config: str | Path | Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Experiment ``name`` on known-answer memorizers instead of trainings: every run of
    the plan (same data, checkpoints and analysis) is written by
    :func:`rhmfast.knownanswers.simulate.simulate_run`, then analysed as
    ``rhmfast experiment NAME --no-train`` would. ``memorizer``: a
    :class:`~rhmfast.knownanswers.memorizer.Memorizer` for every run, or a function of the
    run's TrainConfig returning one (e.g. a delay that grows with ``zipf_a``). Default
    directory ``runs/NAME-PRESET-simulated``.

    >>> from rhmfast.knownanswers.memorizer import Memorizer
    >>> exp = simulate("prototypes", Memorizer(lam=0.2), preset="micro")  # doctest: +SKIP
    """
    if isinstance(memorizer, Memorizer):
        fixed = memorizer
        memorizer = lambda cfg: fixed  # noqa: E731
    elif not callable(memorizer):
        raise TypeError(f"memorizer: expected a Memorizer or a function of a TrainConfig, got {type(memorizer).__name__}")
    out = Path(out) if out is not None else Path("runs") / f"{name}-{preset}-simulated"
    exp_dir, _, specs = plan(name, preset=preset, config=config, out=out)
    for spec in specs:
        cfg = TrainConfig.from_toml(config_path(exp_dir, spec))
        mem = memorizer(cfg)
        if not isinstance(mem, Memorizer):
            raise TypeError(f"memorizer({spec.name}): returned {type(mem).__name__}, not a Memorizer")
        if progress:
            print(f"{exp_dir.name}: simulating {spec.name}", file=sys.stderr)
        simulate_run(cfg, mem)
        mark_done(exp_dir, spec)
    return run(name, preset=preset, config=config, out=exp_dir, train=False, progress=progress)


def run_experiment_cli(args: argparse.Namespace) -> int:
    """``rhmfast experiment NAME [--preset P] [--config FILE] [--out DIR] [--jobs N]
    [--nproc-per-node K] [--emit-commands] [--no-train]``; returns the exit status."""
    try:
        nproc = getattr(args, "nproc_per_node", 1)
        if getattr(args, "emit_commands", False):
            check_parallel(None, nproc)  # run() checks both itself
            exp_dir, _, specs = plan(args.name, preset=args.preset, config=args.config, out=args.out)
            merge = ["rhmfast", "experiment", args.name, "--preset", args.preset, "--out", str(exp_dir), "--no-train"]
            if args.config:
                merge[5:5] = ["--config", str(args.config)]
            sys.stdout.write(format_commands(exp_dir, specs, merge, nproc))
            return 0
        exp_dir = run(args.name, preset=args.preset, config=args.config, out=args.out, jobs=args.jobs,
                      nproc_per_node=nproc, train=not getattr(args, "no_train", False))
    except (ValueError, TypeError) as exc:
        print(f"rhmfast experiment: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a training process failed; finished runs are kept
        print(f"rhmfast experiment: {exc}; rerun the same command to resume", file=sys.stderr)
        return 1
    print(f"report: {exp_dir / 'report.md'} and {exp_dir / 'report.html'}")
    return 0
