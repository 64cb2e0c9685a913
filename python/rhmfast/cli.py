"""The ``rhmfast`` command line: ``demo``, ``train``, ``generate``, ``experiment``, ``simulate``,
``data``, ``audit``.

The subcommands that train or simulate import :mod:`rhmfast.diffusion`,
:mod:`rhmfast.experiments` and :mod:`rhmfast.knownanswers` (torch) when they run, so
that ``rhmfast --help``, ``demo``, ``data`` and ``audit`` start in milliseconds and need
numpy only; everything else is imported here.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rhmfast.audit
import rhmfast.data
from rhmfast.demo import run_demo
from rhmfast.diffusion.config import TrainConfig
from rhmfast.knownanswers.memorizer import Memorizer, parse_schedule


def _demo(args: argparse.Namespace) -> int:
    run_demo(seed=args.seed)
    return 0


def _train(args: argparse.Namespace) -> int:
    from rhmfast.diffusion import train

    config = TrainConfig.from_toml(args.config)
    if args.run_dir is not None:
        config = config.replace(run_dir=args.run_dir)
    train(config)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from rhmfast.diffusion import generate_from_run

    path = generate_from_run(
        args.run_dir, step=args.step, num=args.num, seed=args.seed, out=args.out, device=args.device,
        reference=args.reference, lam=args.lam,
    )
    print(path)
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from rhmfast.experiments import run_experiment_cli

    return run_experiment_cli(args)


def _simulate(args: argparse.Namespace) -> int:
    from rhmfast.knownanswers.simulate import simulate_run

    validity = {}
    for item in args.validity:
        level, sep, sched = item.partition("=")
        if not sep or not level.strip().isdigit():
            raise ValueError(f"--validity {item!r}: expected LEVEL=SCHEDULE, e.g. 0=0:0.1,2600:0.6")
        validity[int(level)] = parse_schedule(sched, f"--validity {level}")
    memorizer = Memorizer(lam=parse_schedule(args.lam, "--lam"), tilt=args.tilt, strength=args.strength,
                          validity=validity)
    if args.target.endswith(".toml"):
        config = TrainConfig.from_toml(args.target)
        if args.out is not None:
            config = config.replace(run_dir=args.out)
        print(simulate_run(config, memorizer))
        return 0
    from rhmfast.experiments import EXPERIMENTS, simulate

    if args.target not in EXPERIMENTS:
        raise ValueError(f"target = {args.target!r}: an experiment ({', '.join(sorted(EXPERIMENTS))}) "
                         "or a TrainConfig .toml file")
    exp_dir = simulate(args.target, memorizer, preset=args.preset, config=args.config, out=args.out)
    print(f"report: {Path(exp_dir) / 'report.md'} and {Path(exp_dir) / 'report.html'}")
    return 0


def _data(args: argparse.Namespace) -> int:
    params = {k: getattr(args, k) for k in rhmfast.data.DATA_KEYS if getattr(args, k) is not None}
    if "zipf_levels" in params:
        params["zipf_levels"] = _int_list(params["zipf_levels"], "--zipf-levels")
    out = rhmfast.data.write(args.out_dir, **params)
    print(f"data set: {out} (README.md says what each file holds)")
    return 0


def _int_list(text: str, flag: str) -> list[int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"{flag} {text!r}: expected comma-separated non-negative integers, e.g. 0,2")
    return [int(p) for p in parts]


def _audit(args: argparse.Namespace) -> int:
    dataset = rhmfast.data.load(args.dataset)
    sets = rhmfast.audit.read_sample_sets(args.samples, dataset)  # every file checked before anything is written
    out = Path(args.out) if args.out is not None else Path(f"audit_{Path(args.dataset).resolve().name}")
    results = rhmfast.audit.audit(dataset, sets, out=out, num_null=args.num_null, seed=args.seed,
                                  progress=None if args.progress else False)
    for line in results["verdicts"]:
        print(line)
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rhmfast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="sample, parse and score strings of the study's grammar")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)

    p = sub.add_parser("train", help="train a diffusion model from a TOML config")
    p.add_argument("config", help="TrainConfig as TOML")
    p.add_argument("--run-dir", default=None, help="override the config's run_dir")
    p.set_defaults(func=_train)

    p = sub.add_parser("generate", help="generate samples from a run's checkpoint")
    p.add_argument("run_dir")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    p.add_argument("--num", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output .npy path")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default: the run's)")
    p.add_argument("--reference", choices=["grammar", "train", "mixture"], default=None,
                   help="sample from an exact denoiser of the run's grammar, training set or their mixture")
    p.add_argument("--lam", type=float, default=0.0, help="training-set weight of --reference mixture")
    p.set_defaults(func=_generate)

    p = sub.add_parser("experiment", help="run a memorization experiment end to end")
    p.add_argument("name", choices=["prototypes", "fat-tail", "slop", "scaling"])
    p.add_argument("--preset", choices=["micro", "quick", "paper"], default="quick")
    p.add_argument("--config", default=None, help="TOML overriding the preset")
    p.add_argument("--out", default=None, help="experiment directory")
    p.add_argument("--jobs", type=int, default=None, help="parallel training processes")
    p.add_argument("--nproc-per-node", type=int, default=1,
                   help="processes per training under torchrun (data-parallel, e.g. one per GPU)")
    p.add_argument("--emit-commands", action="store_true", help="print one command per run and exit")
    p.add_argument("--no-train", action="store_true",
                   help="only merge and analyse the run directories already there (runs trained elsewhere)")
    p.set_defaults(func=_experiment)

    p = sub.add_parser("simulate", help="known-answer memorizers: run directories from exact denoisers, no training")
    p.add_argument("target", help="an experiment (its whole plan, then its report) or a TrainConfig .toml (one run)")
    p.add_argument("--preset", choices=["micro", "quick", "paper"], default="quick")
    p.add_argument("--config", default=None, help="TOML overriding the experiment's preset")
    p.add_argument("--out", default=None, help="experiment directory (or run directory for a .toml)")
    p.add_argument("--lam", default="0", help="weight of the training set: a number or step:value knots "
                   "(e.g. 0:0,2600:0.3)")
    p.add_argument("--tilt", choices=["none", "logp", "blocks"], default="none",
                   help="what the weights over training strings favour (none: uniform, the null)")
    p.add_argument("--strength", type=float, default=1.0,
                   help="weight of the most prototypical string over the least (1: uniform)")
    p.add_argument("--validity", action="append", default=[], metavar="LEVEL=SCHEDULE",
                   help="fraction of samples whose LEVEL parses (0 = whole string), per step; repeatable")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("data", help="write a data set (grammar, training and held-out strings) for any trainer")
    p.add_argument("out_dir", help="new directory (an existing one must hold the same data set)")
    for key, kind, text in (
        ("v", int, "vocabulary size"), ("n", int, "root symbols"), ("m", int, "rules per symbol"),
        ("s", int, "children per rule"), ("L", int, "levels (d = s**L tokens)"),
        ("grammar_seed", int, "seed of the rules"), ("zipf_a", float, "rule probabilities k**-(1+a); -1: uniform"),
        ("zipf_levels", str, "levels with Zipf rules, e.g. 0,2"),
        ("num_train", int, "training strings"),
        ("num_heldout", int, "held-out strings (-1: as many as num_train)"), ("data_seed", int, "seed of the strings"),
    ):
        default = getattr(TrainConfig(), key)
        shown = ("all" if not default else ",".join(map(str, default))) if key == "zipf_levels" else default
        p.add_argument("--" + key.replace("_", "-"), dest=key, type=kind, default=None,
                       help=f"{text} (default: {shown})")
    p.add_argument("--unique", action=argparse.BooleanOptionalAction, default=None,
                   help="distinct training strings (default) or drawn with replacement (--no-unique)")
    p.set_defaults(func=_data)

    p = sub.add_parser("audit", help="judge any model's samples against a data set written by `rhmfast data`")
    p.add_argument("dataset", help="data set directory")
    p.add_argument("samples", nargs="+", metavar="SAMPLES",
                   help="sample files (.npy, .txt, .jsonl), optionally by training step: step=1000:samples.npy")
    p.add_argument("--out", default=None, help="report directory (default: audit_<dataset name>)")
    p.add_argument("--num-null", type=int, default=199, help="null run sets per statistic (a model that learned the grammar and memorized "
                   "nothing, or one fitted to copy as often with no preference; default 199)")
    p.add_argument("--seed", type=int, default=0, help="seed of the nulls, bootstrap and grammar draws")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=_audit)
    return parser


# OSErrors that a wrong path or permission causes: user errors, reported in one line
_USER_OS_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    print(f"rhmfast: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"rhmfast {args.command}: error:"
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning  # a warning is one line, as errors are
        try:
            return int(args.func(args))
        except (ValueError, TypeError) as err:
            # bad configs and arguments (UnicodeDecodeError included): the message names
            # the key or the file; a traceback adds nothing
            parser.exit(2, f"{prefix} {_first_line(err)}\n")
        except _USER_OS_ERRORS as err:
            where = err.filename if err.filename is not None else ""
            other = f" -> {err.filename2!r}" if err.filename2 is not None else ""
            text = f"{where!r}{other}: {err.strerror or err}" if where else str(err)
            parser.exit(2, f"{prefix} {text}\n")


def _first_line(err: BaseException) -> str:
    """The message on one line (a multi-line one joined), or the error's type."""
    text = " ".join(part.strip() for part in str(err).splitlines() if part.strip())
    return text or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
