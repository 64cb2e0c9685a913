"""The ``rhmfast`` command line: ``demo``, ``train``, ``generate``, ``experiment``.

Heavy modules (torch, matplotlib) are imported only by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    from rhmfast.demo import run_demo

    run_demo(seed=args.seed)
    return 0


def _train(args: argparse.Namespace) -> int:
    from rhmfast.diffusion import TrainConfig, train

    config = TrainConfig.from_toml(args.config)
    if args.run_dir is not None:
        config = config.replace(run_dir=args.run_dir)
    train(config)
    return 0


def _generate(args: argparse.Namespace) -> int:
    from rhmfast.diffusion import generate_from_run

    path = generate_from_run(
        args.run_dir, step=args.step, num=args.num, seed=args.seed, out=args.out, device=args.device
    )
    print(path)
    return 0


def _experiment(args: argparse.Namespace) -> int:
    from rhmfast.experiments import run_experiment_cli

    return run_experiment_cli(args)


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
