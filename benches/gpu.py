"""One prepared GPU check (under 10 minutes): training tokens/s, model FLOP utilisation
(MFU) and sampling strings/s for the transformer and the tree U-Net, then a short
training run of the study's grammar with its validity curve.

    python benches/gpu.py            # on a GPU machine; prints a JSON summary last
    python benches/gpu.py --smoke    # tiny sizes, runs on a CPU in seconds

MFU = (3 x forward FLOPs per string, counted by torch's FlopCounterMode) x strings/s
divided by the device's dense bf16 peak (``--peak-tflops``; H200/H100 SXM: 989).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch

from rhmfast.diffusion import TrainConfig
from rhmfast.diffusion.models import build_model, count_params, forward_flops_per_string
from rhmfast.diffusion.processes import make_process
from rhmfast.diffusion.sampling import sample
from rhmfast.experiments.presets import TRAIN
from rhmfast.grammar import STUDY_GRAMMAR

# the study's grammar and training-set size (v=6 n=6 m=4 s=2 L=4, 20,000 strings): the
# experiments' paper preset, whose other settings (Zipf tails, width, batch...) are not used
STUDY = {**STUDY_GRAMMAR, "num_train": TRAIN["paper"]["num_train"]}

PEAKS_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "4090": 165.0,
}


def device_peak(device: torch.device, override: float | None) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "cpu", override
    name = torch.cuda.get_device_name(device)
    if override:
        return name, override
    for key, val in PEAKS_TFLOPS.items():
        if key in name:
            return name, val
    return name, None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_model(
    kind: str,
    process_name: str,
    *,
    width: int,
    depth: int,
    batch: int,
    steps: int,
    device: torch.device,
    compile_: bool,
    peak: float | None,
    sample_num: int,
) -> dict:
    v, s, L = STUDY["v"], STUDY["s"], STUDY["L"]
    d = s**L
    proc = make_process(process_name, v, 200)
    torch.manual_seed(0)
    model = build_model(
        kind,
        input_vocab=proc.input_vocab,
        v=v,
        d=d,
        s=s,
        L=L,
        width=width,
        depth=depth,
        heads=max(1, width // 64),
        time_conditioned=proc.time_conditioned,
    ).to(device)
    fwd_flops = forward_flops_per_string(model, d, time_conditioned=proc.time_conditioned)
    net = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x0 = torch.randint(0, v, (batch, d), generator=torch.Generator().manual_seed(0)).to(device)
    gen = torch.Generator().manual_seed(1)
    bf16 = device.type == "cuda"
    warm = 3 if steps < 20 else 10
    for i in range(steps + warm):
        if i == warm:
            sync(device)
            t0 = time.perf_counter()
        noise = proc.draw_noise(batch, d, gen).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = proc.loss(net, x0, noise).mean() / d
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    dt = time.perf_counter() - t0
    strings_s = steps * batch / dt
    achieved = 3 * fwd_flops * strings_s
    model.eval()
    sync(device)
    t1 = time.perf_counter()
    sample(
        model,
        proc,
        num=sample_num,
        d=d,
        seed=0,
        device=device,
        bf16=bf16,
        batch_size=min(sample_num, 8192),
    )
    sync(device)
    samp_s = sample_num / (time.perf_counter() - t1)
    return {
        "model": kind,
        "process": process_name,
        "params_M": round(count_params(model) / 1e6, 3),
        "batch": batch,
        "tokens_per_s": round(strings_s * d),
        "train_tflops": round(achieved / 1e12, 3),
        "mfu": None if peak is None else round(achieved / (peak * 1e12), 4),
        "sampling_strings_per_s": round(samp_s),
    }


def steps_for(cfg: TrainConfig, minutes: float, *, smoke: bool) -> tuple[int, float]:
    """Steps of ``cfg`` that fit in ``minutes`` with room for evaluations, from a timed
    60-step run of the same model and batch (the GPU's rate is not assumed)."""
    from rhmfast.diffusion import train

    probe = 6 if smoke else 60
    run_dir = tempfile.mkdtemp(prefix="gpu_probe_")
    train(cfg.replace(run_dir=run_dir, steps=probe, first_checkpoint=probe, eval_samples=0, elbo_draws=0))
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rates = [r["tokens_per_s"] for r in map(json.loads, f) if r["kind"] == "train"]
    shutil.rmtree(run_dir)
    steps_per_s = rates[-1] / (cfg.batch_size * cfg.d)  # the last window: past warm-up
    # 70% of the budget trains, the rest samples and scores at the checkpoints
    return max(probe, int(0.7 * minutes * 60 * steps_per_s)), steps_per_s


def validity_run(device: torch.device, *, smoke: bool, minutes: float) -> dict:
    """Training on the study grammar sized to ``minutes``; returns the validity curve."""
    from rhmfast.diffusion import train

    run_dir = tempfile.mkdtemp(prefix="gpu_preset_")
    cfg = TrainConfig(
        run_dir=run_dir,
        **{**STUDY, "num_train": 200 if smoke else STUDY["num_train"]},
        num_heldout=64,
        # the tree U-Net and mask-count sampling of the CPU preset (bench_train.py
        # --preset), four times as wide, with eight times the batch
        model="unet",
        width=32 if smoke else 256,
        depth=1 if smoke else 2,
        heads=2 if smoke else 4,
        steps=20,  # replaced below by the steps that fit in ``minutes``
        batch_size=16 if smoke else 512,
        lr=3e-3,
        mask_sampling="count",
        schedule="cosine",
        warmup=10 if smoke else 200,
        first_checkpoint=10 if smoke else 500,
        checkpoints_per_octave=2,
        eval_samples=64 if smoke else 2048,
        sampling_steps=256,
        elbo_draws=1 if smoke else 2,
        device=str(device.type),
        progress=False,
    )
    steps, steps_per_s = steps_for(cfg, minutes, smoke=smoke)
    cfg = cfg.replace(steps=20 if smoke else steps)
    print(f"validity run: {cfg.steps} steps at {steps_per_s:.1f} steps/s measured", flush=True)
    t0 = time.perf_counter()
    train(cfg)
    curve = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec["kind"] == "eval":
                curve.append(
                    {
                        "step": rec["step"],
                        "valid": rec["valid_fraction"],
                        "copies": rec["copy_fraction"],
                        "minutes": round(rec["seconds"] / 60, 2),
                    }
                )
    return {
        "config": cfg.to_dict(),
        "measured_steps_per_s": round(steps_per_s, 2),
        "curve": curve,
        "wall_minutes": round((time.perf_counter() - t0) / 60, 2),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (runs on CPU)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training model")
    ap.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak of the device")
    ap.add_argument("--preset-minutes", type=float, default=3.0, help="length of the validity run")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    name, peak = device_peak(device, args.peak_tflops)
    print(f"device: {name}, torch {torch.__version__}, peak {peak} TFLOP/s", flush=True)
    results = []
    grid = (
        [
            ("transformer", "masked", 32, 1, 32),
            ("unet", "masked", 32, 1, 32),
            ("transformer", "d3pm", 32, 1, 32),
        ]
        if args.smoke
        else [
            ("transformer", "masked", 256, 6, 4096),
            ("transformer", "masked", 512, 8, 4096),
            ("unet", "masked", 256, 2, 4096),
            ("transformer", "d3pm", 256, 6, 4096),
        ]
    )
    for kind, proc, width, depth, batch in grid:
        res = bench_model(
            kind,
            proc,
            width=width,
            depth=depth,
            batch=batch,
            steps=5 if args.smoke else 100,
            device=device,
            compile_=args.compile,
            peak=peak,
            sample_num=64 if args.smoke else 16384,
        )
        print(json.dumps(res), flush=True)
        results.append(res)
    preset = validity_run(device, smoke=args.smoke, minutes=args.preset_minutes)
    print(json.dumps({"device": name, "throughput": results, "validity_run": preset}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
