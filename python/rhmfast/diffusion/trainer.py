"""``train(config) -> run directory``: the training loop and its checkpoints; each
checkpoint is evaluated by :mod:`rhmfast.diffusion.evaluation`.

Everything random is a pure function of ``(seed, step)``: the data order (one
permutation per epoch) and the noise of each step come from generators seeded by the
step, so a killed run resumed from any checkpoint continues bit-exactly (model,
optimizer, EMA, step and the global torch RNG state are restored from the checkpoint).

>>> import tempfile, numpy as np, pathlib
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> np.savez(tmp / "tok.npz", train=np.random.default_rng(0).integers(0, 4, (8, 8)))
>>> cfg = TrainConfig(run_dir=str(tmp / "run"), data_path=str(tmp / "tok.npz"), v=4, s=2,
...     L=3, width=16, depth=1, heads=2, steps=4, batch_size=8, first_checkpoint=4,
...     eval_samples=8, elbo_draws=1, progress=False)
>>> run = train(cfg)
>>> sorted(p.name for p in (run / "checkpoints").iterdir())
['step_00000004.pt']
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import pathlib
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from rhmfast.diffusion import checkpoint as ckpt
from rhmfast.diffusion.config import TrainConfig, check_memory
from rhmfast.diffusion.distributed import DistInfo, setup
from rhmfast.diffusion.evaluation import (
    check_run_dir,
    checkpoint_steps,
    copy_lookup,
    evaluate,
    save_eval,
)
from rhmfast.diffusion.models import build_model
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess, make_process
from rhmfast.trainset import RunData, build_data, load_data, save_data

RESUME_EVERY_S = 300.0  # rolling checkpoints/resume.pt at most this often (wall seconds)


def _generator(*key: int) -> torch.Generator:
    h = 1469598103934665603
    for k in key:  # FNV-style mix, stable across runs and platforms
        h = ((h ^ (k & 0xFFFFFFFFFFFFFFFF)) * 1099511628211) % (2**64)
    return torch.Generator().manual_seed(h % (2**63))


class DataOrder:
    """Global batch indices of each step: epoch ``e`` visits ``randperm(P)`` seeded by
    ``(seed, e)``. A pure function of the step, so resuming needs no stored order."""

    def __init__(self, seed: int, num: int, batch: int) -> None:
        self.seed, self.num, self.batch = seed, num, batch
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.pop(min(self._perms))
            self._perms[epoch] = torch.randperm(self.num, generator=_generator(self.seed, 1, epoch))
        return self._perms[epoch]

    def indices(self, step: int) -> torch.Tensor:
        pos = torch.arange(step * self.batch, (step + 1) * self.batch)
        epochs, offs = pos // self.num, pos % self.num
        out = torch.empty(self.batch, dtype=torch.long)
        for e in epochs.unique().tolist():
            sel = epochs == e
            out[sel] = self._perm(e)[offs[sel]]
        return out


def _rng_state() -> dict[str, Any]:
    """The global torch (and CUDA) generator states, seeded by ``torch.manual_seed(seed)``
    before the model is built. numpy's and Python's global generators are not saved:
    nothing in training draws from them (every draw uses a generator seeded by
    ``(seed, step)``), and unseeded they made two identical runs' checkpoints differ."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    # older checkpoints also hold "numpy_keys", "numpy_rest" and "python": ignored (unused)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _check_model_fits(config: TrainConfig, data: RunData) -> None:
    if config.model == "unet" and data.d != config.d:
        raise ValueError(
            f"TrainConfig.model = 'unet' needs strings of length s**L = {config.d} "
            f"(s = {config.s}, L = {config.L}); the data have d = {data.d}"
        )


def model_for(config: TrainConfig, process: MaskedProcess | D3PMProcess, d: int) -> nn.Module:
    """The denoiser ``config`` names, for strings of length ``d`` under ``process``.

    Training and :func:`generate_from_run` both build it here, so a checkpoint's
    ``ema`` weights always load into the same architecture that wrote them.
    """
    return build_model(
        config.model,
        input_vocab=process.input_vocab,
        v=config.v,
        d=d,
        s=config.s,
        L=config.L,
        width=config.width,
        depth=config.depth,
        heads=config.heads,
        time_conditioned=process.time_conditioned,
    )


def _lr_at(config: TrainConfig, step: int) -> float:
    """Learning rate of update ``step`` (0-based): linear warmup over ``warmup`` steps,
    then constant, or (``cosine``) a half cosine from ``lr`` down to ``min_lr`` at the
    last step. A function of the step alone, so a resumed run follows the same curve."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.steps - 1 - config.warmup)
    frac = min(1.0, (step - config.warmup) / span)
    return config.min_lr + (config.lr - config.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))


def _log_every(steps: int) -> int:
    """Steps averaged by one ``train`` line of metrics.jsonl (about 200 lines per run)."""
    return max(1, min(100, steps // 200))


class _Metrics:
    def __init__(self, path: pathlib.Path, enabled: bool) -> None:
        self.path, self.enabled = path, enabled

    def truncate_after(self, step: int) -> None:
        """Keep only complete lines up to ``step`` (a resumed run rewrites the rest)."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            if isinstance(rec, dict) and int(rec.get("step", -1)) <= step:
                keep.append(line)
        ckpt.atomic_write_bytes(self.path, "".join(k + "\n" for k in keep).encode())

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _check_memory(config: TrainConfig, device: torch.device, data: RunData | None = None) -> None:
    """:func:`config.check_memory` for ``device`` (an accelerator's free memory counts
    apart from the host's) with the data's actual sizes once they are known."""
    device_free = None
    if device.type == "cuda":
        device_free = int(torch.cuda.mem_get_info(device)[0])
    if data is None:
        check_memory(config, device_free=device_free)
    else:
        check_memory(config, d=data.d, num_train=len(data.train), num_heldout=len(data.heldout),
                     device_free=device_free)


def _build(
    config: TrainConfig, data: RunData, device: torch.device, source: pathlib.Path
) -> tuple[MaskedProcess | D3PMProcess, nn.Module]:
    """Check the data against the config (strings, memory) and build the process and the
    model, seeded by ``config.seed``: everything that can refuse a config, done before
    the run directory is written."""
    if config.data_path == "" and data.d != config.d:
        raise ValueError(f"run data {str(source)!r} has d = {data.d}, config s**L = {config.d}")
    _check_model_fits(config, data)
    if config.block_mask > 0 and data.d != config.d:
        raise ValueError(
            f"TrainConfig.block_mask = {config.block_mask}: needs strings of s**L = "
            f"{config.d} tokens, got {data.d}"
        )
    _check_memory(config, device, data)
    process = make_process(config.process, config.v, config.d3pm_steps,
                           block_sizes=tuple(config.s**k for k in range(1, config.L)),
                           block_fraction=config.block_mask,
                           count_sampling=config.mask_sampling == "count")
    torch.manual_seed(config.seed)
    try:
        model = model_for(config, process, data.d).to(device)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and "alloc" not in str(err).lower():
            raise  # not an allocation failure: a bug, keep its traceback
        raise ValueError(
            f"TrainConfig.width = {config.width}, depth = {config.depth}: the model does not fit "
            f"in memory ({str(err).splitlines()[0]})"
        ) from None
    return process, model


def _prepare(
    config: TrainConfig, run: pathlib.Path, info: DistInfo
) -> tuple[RunData, MaskedProcess | D3PMProcess, nn.Module]:
    """The run's data, process and model. Every check (stored config, memory, data,
    model construction) comes before config.toml and data.npz are written, so a config
    error leaves no files that would block the corrected rerun."""
    if run.exists() and not run.is_dir():
        raise ValueError(f"TrainConfig.run_dir = {str(run)!r}: exists and is not a directory")
    path = run / "data.npz"
    built = None
    if info.is_main:
        check_run_dir(config, run)
        if not path.exists():
            if not config.data_path:  # sizes known from the config: refuse before drawing
                _check_memory(config, info.device)
            built = build_data(config)
            process, model = _build(config, built, info.device, path)
        if not (run / "config.toml").exists():
            run.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_bytes(run / "config.toml", config.to_toml().encode())
        if built is not None:
            if built.grammar is not None:
                built.grammar.save(str(run / "grammar.json"))
            save_data(path, built)
    info.barrier()
    data = load_data(path, config)
    if built is None:
        process, model = _build(config, data, info.device, path)
    return data, process, model


def train(config: TrainConfig) -> pathlib.Path:
    """Train (or resume) the run described by ``config``; returns the run directory."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    info = setup(config.device)
    try:
        return _train(config, info)
    finally:
        info.close()


def _restore(ckdir: pathlib.Path, resume_file: pathlib.Path, model: nn.Module, ema: nn.Module,
             opt: torch.optim.Optimizer, config: TrainConfig, P: int) -> tuple[int, float, tuple[float, int]]:
    """Load the newest intact checkpoint (if any) in place; ``(start step, elapsed
    seconds, open loss window)``."""
    state = ckpt.load_latest(ckdir, extra=[resume_file])
    if state is None:
        return 0, 0.0, (0.0, 0)
    load_weights(model, state["model"], ckdir)
    load_weights(ema, state["ema"], ckdir)
    opt.load_state_dict(state["optimizer"])
    if state["data_order"] != [config.seed, P, config.batch_size]:
        raise ValueError(f"checkpoint in {str(ckdir)!r} was written for different data")
    _set_rng_state(state["rng"])
    # the steps since the last metrics line, so the first line after a resume
    # averages the same steps as the uninterrupted run's
    window = state.get("loss_window", (0.0, 0))
    return int(state["step"]), float(state["elapsed"]), (float(window[0]), int(window[1]))


@dataclasses.dataclass
class _Stepper:
    """One optimisation step: this rank's slice of the batch, the loss, the update,
    the EMA. The tensors stay the same objects for the whole run (state is loaded in
    place), so the EMA update's lists are built once, not every step."""

    config: TrainConfig
    process: Any
    fwd: Any
    model: nn.Module
    ema: nn.Module
    opt: torch.optim.Optimizer
    train_t: torch.Tensor
    info: DistInfo

    def __post_init__(self) -> None:
        self.order = DataOrder(self.config.seed, len(self.train_t), self.config.batch_size)
        per_rank = self.config.batch_size // self.info.world
        self.lo, self.hi = self.info.rank * per_rank, (self.info.rank + 1) * per_rank
        self.autocast = self.config.bf16 and self.info.device.type == "cuda"
        self.ema_params: list[torch.Tensor] = list(self.ema.parameters())
        self.model_params: list[torch.Tensor] = list(self.model.parameters())
        self.buffer_pairs = list(zip(self.ema.buffers(), self.model.buffers(), strict=True))

    def __call__(self, step: int) -> tuple[torch.Tensor, float]:
        """The step's per-token loss (a tensor, not synchronised) and learning rate."""
        config, device, d = self.config, self.info.device, self.train_t.shape[1]
        lr = _lr_at(config, step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        idx = self.order.indices(step)[self.lo:self.hi].to(device)
        noise = self.process.draw_noise(config.batch_size, d, _generator(config.seed, 2, step))
        noise = noise.slice(self.lo, self.hi).to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.process.loss(self.fwd, self.train_t[idx], noise).mean() / d
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.opt.step()
        with torch.no_grad():
            decay = min(config.ema, (1.0 + step) / (10.0 + step))
            torch._foreach_lerp_(self.ema_params, self.model_params, 1.0 - decay)
            for be, bm in self.buffer_pairs:
                be.copy_(bm)
        return loss.detach(), lr


def _train(config: TrainConfig, info: DistInfo) -> pathlib.Path:
    if config.batch_size % info.world:
        raise ValueError(
            f"TrainConfig.batch_size = {config.batch_size}: must be divisible by the "
            f"number of processes ({info.world})"
        )
    run = pathlib.Path(config.run_dir)
    device = info.device
    data, process, model = _prepare(config, run, info)
    d, P = data.d, len(data.train)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        fused=device.type == "cuda",  # one kernel per step instead of one per tensor
    )

    ckdir = run / "checkpoints"
    resume_file = ckdir / "resume.pt"
    if info.is_main:
        ckpt.remove_stale_temporaries(ckdir)  # left by a kill during a checkpoint write
    start, elapsed, window = _restore(ckdir, resume_file, model, ema, opt, config, P)
    metrics = _Metrics(run / "metrics.jsonl", info.is_main)
    metrics.truncate_after(start)

    net = info.wrap(model)
    stepper = _Stepper(config, process, torch.compile(net) if config.compile else net, model, ema, opt,
                       torch.from_numpy(data.train.astype(np.int64)).to(device), info)
    schedule = [s for s in checkpoint_steps(config.steps, config.first_checkpoint, config.checkpoints_per_octave)
                if s > start]
    lookup = copy_lookup(data) if info.is_main else None
    log_every = _log_every(config.steps)

    bar = None
    if config.progress and info.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=run.name, unit="step")

    def save(path: pathlib.Path, step: int, seconds: float) -> None:
        ckpt.save_checkpoint(path, _state(model, ema, opt, step, seconds, config, P, (loss_sum, loss_n)))

    loss_sum = torch.full((), float(window[0]), dtype=torch.float32, device=device)
    loss_n = int(window[1])
    t_last, step_last = time.perf_counter(), start
    t_resume = time.perf_counter()
    model.train()
    for step in range(start, config.steps):
        loss, lr = stepper(step)
        loss_sum += loss
        loss_n += 1
        done = step + 1
        if bar is not None:
            bar.update(1)
        if done % log_every == 0 or done == config.steps:
            now = time.perf_counter()
            elapsed += now - t_last
            rate = (done - step_last) * config.batch_size * d / max(now - t_last, 1e-9)
            mean_loss = float(loss_sum) / loss_n
            metrics.write(
                {"kind": "train", "step": done, "loss": mean_loss, "lr": lr, "tokens_per_s": rate,
                 "processes": info.world}
            )
            if bar is not None:
                bar.set_postfix(loss=f"{mean_loss:.4f}")
            loss_sum.zero_()
            loss_n, t_last, step_last = 0, now, done
        if schedule and done == schedule[0]:
            schedule.pop(0)
            elapsed += time.perf_counter() - t_last
            if info.is_main:
                t0 = time.perf_counter()
                record, arrays = evaluate(ema, process, data, config, done, device, lookup)
                record["seconds"] = elapsed
                record["eval_seconds"] = time.perf_counter() - t0
                save_eval(run / "eval" / f"step_{done:08d}.npz", arrays)
                metrics.write(record)
                save(ckpt.step_path(ckdir, done), done, elapsed)
            info.barrier()
            t_last, step_last = time.perf_counter(), done  # tokens/s excludes evaluation
            t_resume = t_last
        elif time.perf_counter() - t_resume > RESUME_EVERY_S:
            if info.is_main:
                save(resume_file, done, elapsed + time.perf_counter() - t_last)
            t_resume = time.perf_counter()
    if bar is not None:
        bar.close()
    return run


def _state(
    model: nn.Module,
    ema: nn.Module,
    opt: torch.optim.Optimizer,
    step: int,
    elapsed: float,
    config: TrainConfig,
    num_train: int,
    window: tuple[torch.Tensor, int],
) -> dict[str, Any]:
    return {
        "loss_window": [float(window[0]), int(window[1])],
        "step": step,
        "elapsed": elapsed,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        "rng": _rng_state(),
        "data_order": [config.seed, num_train, config.batch_size],
        "config": config.to_toml(),
    }


def load_weights(model: torch.nn.Module, weights: dict[str, Any], where: pathlib.Path) -> None:
    """Load a checkpoint's weights, naming the run when they do not fit this model (a
    checkpoint from an older model definition, or a config edited by hand)."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ValueError(
            f"checkpoint in {str(where)!r} does not match the model this config builds: {e}"
        ) from None


