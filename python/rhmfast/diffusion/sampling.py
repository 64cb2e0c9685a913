"""Ancestral samplers: cached masked sampling and D3PM ancestral sampling.

Random numbers come from a CPU ``torch.Generator`` seeded per batch, so the output
depends only on ``(seed, batch_size)``, not on the device or the caching. Categorical
draws use the inverse CDF in float64 (float32 Gumbel-max is measurably biased).

>>> import torch
>>> from rhmfast.diffusion.processes import MaskedProcess
>>> uniform = lambda x, t: torch.zeros(*x.shape, 4)
>>> x, stats = sample_masked(uniform, MaskedProcess(4), num=5, d=8, seed=0)
>>> x.shape, int(x.max()) < 4, stats["row_evals"] <= 5 * 8
((5, 8), True, True)
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from rhmfast.diffusion.processes import D3PMProcess, Denoiser, MaskedProcess


def _seeded(seed: int, batch: int) -> torch.Generator:
    # distinct, reproducible stream per (seed, batch index)
    return torch.Generator().manual_seed((seed * 1_000_003 + batch * 7919 + 12345) % (2**63))


def categorical(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw, float64: ``probs (..., K)``, ``u (...)`` uniforms -> indices."""
    cdf = probs.double().cumsum(-1)
    cdf = cdf / cdf[..., -1:]
    idx = (u.double()[..., None] >= cdf).sum(-1)
    return idx.clamp_max(probs.shape[-1] - 1)


def _autocast(device: torch.device, bf16: bool) -> Any:
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def sample_masked(
    model: Denoiser,
    process: MaskedProcess,
    *,
    num: int,
    d: int,
    seed: int,
    steps: int = 0,
    batch_size: int = 1024,
    cache: bool = True,
    device: str | torch.device = "cpu",
    bf16: bool = False,
) -> tuple[np.ndarray, dict[str, int]]:
    """Ancestral sampling of the masked process with ``steps`` steps (0 means ``d``).

    From time t to s < t every still-masked token is revealed with probability
    ``(t - s)/t``, its value drawn from the model's ``p(x0_i | x_t)``. With ``cache``
    only rows whose input changed since their last evaluation are passed through the
    model (at most ``d`` evaluations per string, whatever ``steps``); without it every
    row is evaluated at every step. Both give the same strings for the same seed.

    Returns ``(tokens (num, d) int64, stats)`` where ``stats`` counts ``forward_calls``
    (model invocations) and ``row_evals`` (strings passed through the model).
    """
    if num < 0:
        raise ValueError(f"num = {num}: must be >= 0")
    if d < 1:
        raise ValueError(f"d = {d}: must be >= 1")
    if steps < 0:
        raise ValueError(f"steps = {steps}: must be >= 0 (0 means d)")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")
    device = torch.device(device)
    K = steps or d
    times = [1.0 - k / K for k in range(K + 1)]
    out = np.empty((num, d), dtype=np.int64)
    stats = {"forward_calls": 0, "row_evals": 0}
    mask_id = process.mask_id
    for b, lo in enumerate(range(0, num, batch_size)):
        B = min(batch_size, num - lo)
        gen = _seeded(seed, b)
        x = torch.full((B, d), mask_id, dtype=torch.long, device=device)
        probs = torch.zeros((B, d, process.v), dtype=torch.float64, device=device)
        stale = torch.ones(B, dtype=torch.bool, device=device)
        for k in range(K):
            t, s = times[k], times[k + 1]
            rows = stale.nonzero()[:, 0] if cache else torch.arange(B, device=device)
            if rows.numel():
                with _autocast(device, bf16):
                    logits = model(x[rows], None)
                probs[rows] = torch.softmax(logits.double(), -1)
                stats["forward_calls"] += 1
                stats["row_evals"] += int(rows.numel())
            u_reveal = torch.rand((B, d), generator=gen, dtype=torch.float64).to(device)
            u_value = torch.rand((B, d), generator=gen, dtype=torch.float64).to(device)
            masked = x == mask_id
            reveal = masked & (u_reveal < (t - s) / t) if k < K - 1 else masked
            x = torch.where(reveal, categorical(probs, u_value), x)
            stale = reveal.any(1) & (x == mask_id).any(1)
        out[lo : lo + B] = x.cpu().numpy()
    return out, stats


@torch.no_grad()
def sample_d3pm(
    model: Denoiser,
    process: D3PMProcess,
    *,
    num: int,
    d: int,
    seed: int,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    bf16: bool = False,
) -> tuple[np.ndarray, dict[str, int]]:
    """D3PM ancestral sampling: ``x_T`` uniform, then ``T`` draws from the model's
    reverse posterior ``p(x_{t-1} | x_t)``. Returns ``(tokens (num, d) int64, stats)``."""
    if num < 0:
        raise ValueError(f"num = {num}: must be >= 0")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")
    device = torch.device(device)
    out = np.empty((num, d), dtype=np.int64)
    stats = {"forward_calls": 0, "row_evals": 0}
    for b, lo in enumerate(range(0, num, batch_size)):
        B = min(batch_size, num - lo)
        gen = _seeded(seed, b)
        x = torch.randint(0, process.K, (B, d), generator=gen).to(device)
        for t in range(process.T, 0, -1):
            tt = torch.full((B,), t, dtype=torch.long, device=device)
            with _autocast(device, bf16):
                logits = model(x, tt.float() / process.T)
            post = process.posterior(x, torch.softmax(logits.double(), -1), tt)
            u = torch.rand((B, d), generator=gen, dtype=torch.float64).to(device)
            x = categorical(post, u)
            stats["forward_calls"] += 1
            stats["row_evals"] += B
        out[lo : lo + B] = x.cpu().numpy()
    return out, stats


def sample(
    model: Denoiser,
    process: MaskedProcess | D3PMProcess,
    *,
    num: int,
    d: int,
    seed: int,
    steps: int = 0,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
    bf16: bool = False,
) -> np.ndarray:
    """Samples from either process (cached sampler for the masked one)."""
    if isinstance(process, MaskedProcess):
        x, _ = sample_masked(
            model,
            process,
            num=num,
            d=d,
            seed=seed,
            steps=steps,
            batch_size=batch_size,
            device=device,
            bf16=bf16,
        )
    else:
        x, _ = sample_d3pm(
            model,
            process,
            num=num,
            d=d,
            seed=seed,
            batch_size=batch_size,
            device=device,
            bf16=bf16,
        )
    return x
