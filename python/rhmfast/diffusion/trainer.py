"""``train(config) -> run directory``: the training loop, checkpoints and evaluation hook.

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
import io
import json
import math
import os
import pathlib
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from rhmfast.diffusion import checkpoint as ckpt
from rhmfast.diffusion.config import DEVICES, TrainConfig, available_memory, check_memory
from rhmfast.diffusion.data import RunData, build_data, load_data, save_data
from rhmfast.diffusion.distributed import DistInfo, env_int, resolve_device, setup
from rhmfast.diffusion.elbo import elbo_nll
from rhmfast.diffusion.models import build_model
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess, make_process
from rhmfast.diffusion.sampling import sample

RESUME_EVERY_S = 300.0  # rolling checkpoints/resume.pt at most this often (wall seconds)
IGNORED_ON_RESTART = ("run_dir", "progress")  # keys a restart may change


def checkpoint_steps(steps: int, first: int, per_octave: int) -> list[int]:
    """Log-spaced steps ``round(first * 2**(k / per_octave))`` up to ``steps``, plus ``steps``.

    >>> checkpoint_steps(100, 16, 2)
    [16, 23, 32, 45, 64, 91, 100]
    """
    out = set()
    k = 0
    while True:
        s = int(round(first * 2 ** (k / per_octave)))
        if s > steps:
            break
        out.add(s)
        k += 1
    out.add(steps)
    return sorted(out)


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


def _check_run_dir(config: TrainConfig, run: pathlib.Path) -> None:
    """Refuse a run directory whose stored config.toml differs from ``config``."""
    path = run / "config.toml"
    if path.exists():
        stored = TrainConfig.from_toml(path)
        diffs = [
            f"{k} = {getattr(stored, k)!r} (stored) vs {getattr(config, k)!r}"
            for k in stored.to_dict()
            if k not in IGNORED_ON_RESTART and getattr(stored, k) != getattr(config, k)
        ]
        if diffs:
            raise ValueError(
                f"run_dir {str(run)!r} already holds a different config: " + "; ".join(diffs)
            )


def _check_model_fits(config: TrainConfig, data: RunData) -> None:
    if config.model == "unet" and data.d != config.d:
        raise ValueError(
            f"TrainConfig.model = 'unet' needs strings of length s**L = {config.d} "
            f"(s = {config.s}, L = {config.L}); the data have d = {data.d}"
        )


def _model_for(config: TrainConfig, process: MaskedProcess | D3PMProcess, d: int) -> nn.Module:
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


def _copies(data: RunData) -> Any:
    """``lookup(samples) -> copy_of (B,) int64``: the smallest index of the training
    string each sample copies, -1 if none (suffix index over the training set)."""
    import rhmfast

    index = rhmfast.TrainingIndex(data.train)

    def lookup(samples: np.ndarray) -> np.ndarray:
        _, which = rhmfast.memorized(samples, index, return_index=True)
        return np.asarray(which, dtype=np.int64)

    return lookup


def evaluate(
    model: nn.Module,
    process: MaskedProcess | D3PMProcess,
    data: RunData,
    config: TrainConfig,
    step: int,
    device: torch.device,
    copy_lookup: Any,
    samples: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Sample (unless ``samples`` are given), check copies and validity, and bound every
    string's likelihood. Any ``Denoiser`` goes: the trainer passes its EMA model,
    :mod:`rhmfast.diffusion.simulate` an exact reference denoiser."""
    bf16 = config.bf16 and device.type == "cuda"
    d, L = data.d, config.L
    model.eval()
    if samples is None:
        samples = sample(
            model,
            process,
            num=config.eval_samples,
            d=d,
            seed=config.seed * 1_000_003 + step,
            steps=config.sampling_steps,
            reveal=config.sampling_reveal,
            device=device,
            bf16=bf16,
        ).astype(data.train.dtype)
    B = len(samples)
    copy_of = copy_lookup(samples) if B else np.zeros(0, np.int64)
    if data.grammar is not None and B:
        parsed = data.grammar.check(samples)
        valid = np.asarray(parsed.valid, dtype=bool)
        valid_levels = np.asarray(parsed.valid_levels, dtype=bool).reshape(B, L)
    else:
        valid = np.zeros(B, dtype=bool)
        valid_levels = np.zeros((B, L if data.grammar is not None else 0), dtype=bool)

    def nll(x: np.ndarray, salt: int) -> np.ndarray:
        if config.elbo_draws == 0 or len(x) == 0:
            return np.full(len(x), np.nan)
        return elbo_nll(
            model,
            process,
            x,
            draws=config.elbo_draws,
            seed=config.seed * 1_000_003 + salt,
            device=device,
            bf16=bf16,
        )

    train_nll = nll(data.train, 1)  # fixed noise seeds: checkpoints are compared on equal terms
    heldout_nll = nll(data.heldout, 2)
    model.train()

    def mean(a: np.ndarray) -> float | None:
        return float(a.mean()) if len(a) and np.isfinite(a).all() else None

    tm, hm = mean(train_nll), mean(heldout_nll)
    record = {
        "kind": "eval",
        "step": step,
        "copy_fraction": float((copy_of >= 0).mean()) if B else None,
        "distinct_copies": int(len(np.unique(copy_of[copy_of >= 0]))),
        "valid_fraction": float(valid.mean()) if (B and data.grammar is not None) else None,
        "valid_levels": [float(x) for x in valid_levels.mean(0)] if B else [],
        "train_loss": None if tm is None else tm / d,
        "heldout_loss": None if hm is None else hm / d,
        "train_nll_mean": tm,
        "heldout_nll_mean": hm,
    }
    arrays = {
        "samples": samples,
        "copy_of": copy_of,
        "valid": valid,
        "valid_levels": valid_levels,
        "train_nll": train_nll,
        "heldout_nll": heldout_nll,
        "step": np.int64(step),
    }
    return record, arrays


def _save_eval(path: pathlib.Path, arrays: dict[str, np.ndarray], *, durable: bool = True) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    ckpt.atomic_write_bytes(path, buf.getvalue(), durable=durable)


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
        model = _model_for(config, process, data.d).to(device)
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
        _check_run_dir(config, run)
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
    _load_weights(model, state["model"], ckdir)
    _load_weights(ema, state["ema"], ckdir)
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
    copy_lookup = _copies(data) if info.is_main else None
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
                record, arrays = evaluate(ema, process, data, config, done, device, copy_lookup)
                record["seconds"] = elapsed
                record["eval_seconds"] = time.perf_counter() - t0
                _save_eval(run / "eval" / f"step_{done:08d}.npz", arrays)
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


def _load_weights(model: torch.nn.Module, weights: dict[str, Any], where: pathlib.Path) -> None:
    """Load a checkpoint's weights, naming the run when they do not fit this model (a
    checkpoint from an older model definition, or a config edited by hand)."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise ValueError(
            f"checkpoint in {str(where)!r} does not match the model this config builds: {e}"
        ) from None


def generate_from_run(
    run_dir: str | os.PathLike[str],
    *,
    step: int | None = None,
    num: int = 1024,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    device: str | None = None,
    reference: str | None = None,
    lam: float = 0.0,
) -> pathlib.Path:
    """Sample ``num`` strings from a run's EMA weights at checkpoint ``step`` (default:
    the latest readable one); writes an ``.npy`` (default
    ``RUN/generated/step_XXXXXXXX_seed_S.npy``) and returns its path. ``device``
    (one of ``TrainConfig``'s) overrides the run's; no process group is joined.
    ``reference`` samples with the run's sampler from an exact denoiser instead of the
    checkpoint: ``"grammar"`` (the run's grammar.json), ``"train"`` (its training set)
    or ``"mixture"`` (``(1 - lam)`` grammar + ``lam`` training set); default file
    ``RUN/generated/REFERENCE_seed_S.npy``.

    >>> import tempfile, numpy as np, pathlib
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> np.savez(tmp / "tok.npz", train=np.zeros((4, 4), np.int64))
    >>> run = train(TrainConfig(run_dir=str(tmp / "run"), data_path=str(tmp / "tok.npz"),
    ...     v=2, s=2, L=2, width=8, depth=1, heads=2, steps=2, batch_size=4,
    ...     first_checkpoint=2, eval_samples=0, elbo_draws=0, progress=False))
    >>> path = generate_from_run(run, num=3, seed=1, device="cpu")
    >>> path.name, np.load(path).shape
    ('step_00000002_seed_1.npy', (3, 4))
    """
    run = pathlib.Path(run_dir)
    cfg_path = run / "config.toml"
    if not cfg_path.is_file():
        raise ValueError(f"run_dir {str(run)!r} holds no config.toml")
    for name, val in (("num", num), ("seed", seed), ("step", 0 if step is None else step)):
        if not isinstance(val, int) or isinstance(val, bool):
            raise TypeError(f"{name} = {val!r}: must be an int")
        if val < 0:
            raise ValueError(f"{name} = {val}: must be >= 0")
    if device is not None and device not in DEVICES:
        raise ValueError(f"device = {device!r}: must be one of {DEVICES}")
    target = None if out is None else pathlib.Path(out)
    if target is not None and target.is_dir():
        raise ValueError(f"out = {str(target)!r}: is a directory; give the path of an .npy file")
    config = TrainConfig.from_toml(cfg_path)
    data = load_data(run / "data.npz", config)  # d and dtype of the strings; validated
    d = data.d
    # refused before anything is allocated: int64 samples, their token copy, one batch
    per_row = 32 * config.width + 24 * (config.v + 1)
    need = num * d * (8 + data.train.dtype.itemsize) + min(num, 1024) * d * per_row
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(
            f"num = {num}: {num} samples of {d} tokens need about {need} bytes "
            f"({need / 2**30:.3g} GiB); only {free} bytes ({free / 2**30:.3g} GiB) are available"
        )
    dev = resolve_device(device or config.device, env_int("LOCAL_RANK", 0))
    if reference is not None:
        model, process, name = _reference_model(run, config, data, reference, lam, step)
    else:
        model, process, step = _checkpoint_model(run, config, d, step)
        name = f"step_{step:08d}"
    model.to(dev).eval()
    x = sample(
        model,
        process,
        num=num,
        d=d,
        seed=seed,
        steps=config.sampling_steps,
        reveal=config.sampling_reveal,
        device=dev,
        bf16=config.bf16 and dev.type == "cuda",
    ).astype(data.train.dtype)
    if target is None:
        target = run / "generated" / f"{name}_seed_{seed}.npy"
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    ckpt.atomic_write_bytes(target, buf.getvalue())
    return target


def _reference_model(
    run: pathlib.Path, config: TrainConfig, data: RunData, reference: str, lam: float, step: int | None
) -> tuple[nn.Module, MaskedProcess | D3PMProcess, str]:
    from rhmfast.diffusion.reference import EmpiricalDenoiser, GrammarDenoiser, MixtureDenoiser
    from rhmfast.grammar import RHM

    kinds = ("grammar", "train", "mixture")
    if reference not in kinds:
        raise ValueError(f"reference = {reference!r}: must be one of {kinds}")
    if step is not None:
        raise ValueError("step: a reference denoiser has no checkpoint; give step or reference, not both")
    process = make_process(config.process, config.v, config.d3pm_steps)
    if reference == "train":
        return EmpiricalDenoiser(data.train, v=config.v, process=process), process, "train"
    if not (run / "grammar.json").is_file():
        raise ValueError(f"reference = {reference!r}: run_dir {str(run)!r} holds no grammar.json")
    g = RHM.load(str(run / "grammar.json"))
    if reference == "grammar":
        return GrammarDenoiser(g, process=process), process, "grammar"
    return MixtureDenoiser(g, data.train, lam, process=process), process, f"mixture_{lam:g}"


def _checkpoint_model(
    run: pathlib.Path, config: TrainConfig, d: int, step: int | None
) -> tuple[nn.Module, MaskedProcess | D3PMProcess, int]:
    ckdir = run / "checkpoints"
    if step is None:
        damaged: list[str] = []
        state = ckpt.load_latest(ckdir, skipped=damaged)
        if state is None:
            why = f": {len(damaged)} damaged, the newest: {damaged[0]}" if damaged else ""
            raise ValueError(f"run_dir {str(run)!r} holds no readable checkpoint{why}")
        if damaged:
            more = f" (and {len(damaged) - 1} more)" if len(damaged) > 1 else ""
            warnings.warn(f"{damaged[0]}{more}; using step {int(state['step'])}", stacklevel=2)
    else:
        path = ckpt.step_path(ckdir, step)
        if not path.exists():
            have = [s for s, _ in ckpt.list_checkpoints(ckdir)]
            raise ValueError(f"step = {step}: no checkpoint {path.name}; available steps: {have}")
        state = ckpt.load_checkpoint(path)
    process = make_process(config.process, config.v, config.d3pm_steps)
    model = _model_for(config, process, d)
    _load_weights(model, state["ema"], ckdir)
    return model, process, int(state["step"])
