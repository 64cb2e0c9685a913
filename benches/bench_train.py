"""Trainer benchmarks: cached vs plain masked sampler, CPU training throughput of the
transformer and the tree U-Net, and (``--preset``) the quick preset on the study's
grammar.

``python benches/run.py train [--smoke]``; ``python benches/bench_train.py --preset``
trains the quick preset (the study's grammar and 20,000 unique strings, from the
experiments' ``paper`` preset; the model and optimiser settings are this bench's) for
``--max-steps`` steps (a cosine schedule over the whole run) and reports the validity
curve and the first step, and minutes, at which at least 90% of generated samples were
valid.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
import time

import numpy as np
import torch

from rhmfast.diffusion.config import tomllib  # tomli on Python 3.10
from rhmfast.diffusion.models import build_model, count_params
from rhmfast.diffusion.processes import MaskedProcess
from rhmfast.diffusion.sampling import sample_masked
from rhmfast.experiments.presets import TRAIN
from rhmfast.grammar import STUDY_GRAMMAR

# the study's grammar and training-set size (v=6 n=6 m=4 s=2 L=4, 20,000 strings): the
# experiments' paper preset, whose other settings (Zipf tails, width, batch...) are not used
STUDY = {**STUDY_GRAMMAR, "num_train": TRAIN["paper"]["num_train"]}


def _model(kind: str, width: int, depth: int) -> torch.nn.Module:
    v, s, L = STUDY["v"], STUDY["s"], STUDY["L"]
    torch.manual_seed(0)
    return build_model(
        kind,
        input_vocab=v + 1,
        v=v,
        d=s**L,
        s=s,
        L=L,
        width=width,
        depth=depth,
        heads=4,
        time_conditioned=False,
    )


def bench_sampler(smoke: bool) -> None:
    d, v = STUDY["s"] ** STUDY["L"], STUDY["v"]
    model = _model("transformer", 32 if smoke else 128, 1 if smoke else 4).eval()
    num = 32 if smoke else 1024
    print(f"sampler: transformer {count_params(model) / 1e6:.2f}M params, {num} strings, d={d}")
    print(
        f"{'steps':>6} {'plain evals/str':>16} {'cached evals/str':>17} {'plain s':>8} {'cached s':>9} {'speed-up':>9}"
    )
    for steps in (d, 4 * d) if smoke else (d, 4 * d, 16 * d):
        row = {}
        for cache in (False, True):
            t0 = time.perf_counter()
            x, st = sample_masked(
                model,
                MaskedProcess(v),
                num=num,
                d=d,
                seed=0,
                steps=steps,
                cache=cache,
                batch_size=512,
            )
            row[cache] = (st["row_evals"] / num, time.perf_counter() - t0, x)
        same = np.array_equal(row[False][2], row[True][2])
        print(
            f"{steps:>6} {row[False][0]:>16.1f} {row[True][0]:>17.1f} {row[False][1]:>8.2f} "
            f"{row[True][1]:>9.2f} {row[False][1] / row[True][1]:>8.2f}x"
            + ("" if same else "  (outputs differ: float rounding in row subsets)")
        )


def bench_throughput(smoke: bool) -> None:
    d, v, batch = STUDY["s"] ** STUDY["L"], STUDY["v"], 128
    steps = 2 if smoke else 30
    print(f"\ntraining throughput on CPU ({torch.get_num_threads()} threads), batch {batch}, d={d}")
    print(f"{'model':>12} {'params':>8} {'tokens/s':>10} {'ratio':>7}")
    base = None
    for kind in ("transformer", "unet"):
        model = _model(
            kind, 32 if smoke else 128, 1 if smoke else (4 if kind == "transformer" else 2)
        )
        proc = MaskedProcess(v)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x0 = torch.randint(0, v, (batch, d), generator=torch.Generator().manual_seed(0))
        gen = torch.Generator().manual_seed(1)
        for i in range(steps + 2):
            if i == 2:
                t0 = time.perf_counter()
            loss = proc.loss(model, x0, proc.draw_noise(batch, d, gen)).mean() / d
            opt.zero_grad()
            loss.backward()
            opt.step()
        rate = steps * batch * d / (time.perf_counter() - t0)
        base = base or rate
        print(f"{kind:>12} {count_params(model) / 1e6:>7.2f}M {rate:>10.0f} {rate / base:>6.2f}x")


def quick_preset(
    out: str | None = None, max_steps: int = 40000, overrides: dict | None = None
) -> None:
    """Train the study's grammar with 20,000 unique strings; report when >= 90% of
    samples were valid (``overrides``: TrainConfig keys changed from the preset)."""
    from rhmfast.diffusion import TrainConfig, train

    run_dir = out or tempfile.mkdtemp(prefix="rhmfast_preset_")
    cfg = TrainConfig(
        run_dir=run_dir,
        **STUDY,
        unique=True,
        num_heldout=512,
        # the tree U-Net learns the lower levels in ~1,500 steps where the transformer
        # (width 128, depth 4, lr 1e-3) had 3.3% valid samples after 2,828 steps; 256
        # sampling steps cost no more forward passes than 16 with the cached sampler
        model="unet",
        # width 64 and batch 64 learn each level in the same number of steps as width
        # 128 and batch 256 (measured: 73% valid after 40,000 steps against 70%), at a
        # quarter of the cost per step
        width=64,
        depth=2,
        heads=4,
        steps=max_steps,
        batch_size=64,
        lr=2e-3,
        warmup=200,
        # the lever that teaches the root rule: the number of masked tokens drawn with
        # P(k) ~ 1/k, every masked token weighted alike (the same expected loss as the
        # 1/t form). With the 1/t form the root stayed at chance for 40,000 steps
        mask_sampling="count",
        compile=True,
        # the level-1 and root rules are learned while the cosine rate decays
        schedule="cosine",
        first_checkpoint=250,
        checkpoints_per_octave=4,
        eval_samples=512,
        sampling_steps=256,
        elbo_draws=0,
        progress=False,
    ).replace(**(overrides or {}))
    print(cfg.to_toml())
    t0 = time.perf_counter()
    train(cfg)
    reached = None
    for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] == "eval":
            print(
                f"step {rec['step']:>6}  valid {rec['valid_fraction']:.3f}  levels {rec['valid_levels']}  "
                f"copies {rec['copy_fraction']:.3f}  {rec['seconds'] / 60:.1f} min"
            )
            if reached is None and rec["valid_fraction"] >= 0.9:
                reached = rec
    if reached is None:
        print("90% valid samples: not reached")
    else:
        print(f"90% valid samples at step {reached['step']} ({reached['seconds'] / 60:.1f} min)")
    print(f"total {(time.perf_counter() - t0) / 60:.1f} min; run directory {run_dir}")


def main(smoke: bool) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    bench_sampler(smoke)
    bench_throughput(smoke)
    print(
        "\nquick preset (study grammar, 20,000 unique strings): python benches/bench_train.py --preset"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--preset", action="store_true", help="run the quick preset (minutes)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-steps", type=int, default=40000)
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a TrainConfig key of the preset (TOML value), e.g. --set schedule='\"cosine\"'",
    )
    args = ap.parse_args()
    if args.preset:
        overrides = tomllib.loads("\n".join(args.set)) if args.set else {}
        quick_preset(args.out, args.max_steps, overrides)
    else:
        main(args.smoke)
