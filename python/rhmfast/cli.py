"""The ``rhmfast`` command line: ``demo``, ``train``, ``generate``, ``experiment``.

Heavy modules (torch, matplotlib) are imported only by the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError) as err:
        # bad configs and arguments: the message names the key; a traceback adds nothing
        parser.exit(2, f"rhmfast {args.command}: error: {err}\n")


if __name__ == "__main__":
    sys.exit(main())
