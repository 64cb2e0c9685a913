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


def seeded_generator(seed: int, batch: int) -> torch.Generator:
    """A CPU generator with a distinct, reproducible stream per ``(seed, batch index)``
    (the sampler's, the ELBO's and the reference sampling probability's)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + batch * 7919 + 12345) % (2**63))


def categorical(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw, float64: ``probs (..., K)``, ``u (...)`` uniforms -> indices."""
    cdf = probs.double().cumsum(-1)
    cdf = cdf / cdf[..., -1:]
    idx = (u.double()[..., None] >= cdf).sum(-1)
    return idx.clamp_max(probs.shape[-1] - 1)


def _check_sizes(num: int, d: int, batch_size: int) -> None:
    if num < 0:
        raise ValueError(f"num = {num}: must be >= 0")
    if d < 1:
        raise ValueError(f"d = {d}: must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")


def autocast(device: torch.device, bf16: bool) -> Any:
    """bf16 autocast on CUDA when asked, else a no-op context."""
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
    reveal: str = "ancestral",
) -> tuple[np.ndarray, dict[str, int]]:
    """Ancestral sampling of the masked process with ``steps`` steps (0 means ``d``).

    ``reveal="one"`` reveals exactly one token per step instead, in a uniformly random
    order (``d`` steps; ``steps`` must be 0 or ``d``): with an exact posterior this
    draws exactly from the prior, since a product of conditionals along any order is
    the joint probability. The ancestral schedule reveals several tokens at some steps,
    each from its marginal, which the exact posterior does not make exact.

    From time t to s < t every still-masked token is revealed with probability
    ``(t - s)/t``, its value drawn from the model's ``p(x0_i | x_t)``. Without ``cache``
    every row is evaluated at every step (the plain reference). With ``cache`` the model
    output of a row is reused until the row changes: since which tokens are revealed
    when does not depend on the model, the reveal schedule is drawn first, and the j-th
    evaluation of every row (the one before its j-th reveal event) is done in one batch.
    That is at most ``min(steps, d)`` forward calls per batch, each on all rows still
    needing one. Both modes consume the same random numbers and give the same strings.

    Returns ``(tokens (num, d) int64, stats)`` where ``stats`` counts ``forward_calls``
    (model invocations) and ``row_evals`` (strings passed through the model).
    """
    _check_sizes(num, d, batch_size)
    if steps < 0:
        raise ValueError(f"steps = {steps}: must be >= 0 (0 means d)")
    if reveal not in ("ancestral", "one"):
        raise ValueError(f"reveal = {reveal!r}: must be 'ancestral' or 'one'")
    if reveal == "one" and steps not in (0, d):
        raise ValueError(f"steps = {steps}: reveal='one' takes d = {d} steps (give 0 or d)")
    device = torch.device(device)
    K = steps or d
    out = np.empty((num, d), dtype=np.int64)
    stats = {"forward_calls": 0, "row_evals": 0}
    for b, lo in enumerate(range(0, num, batch_size)):
        B = min(batch_size, num - lo)
        gen = seeded_generator(seed, b)
        when, u_at = draw_reveals(B, d, K, gen, reveal)
        x = _masked_run(model, process, when, u_at, device, bf16, stats, cache=cache)
        out[lo : lo + B] = x.cpu().numpy()
    return out, stats


def draw_reveals(
    B: int, d: int, K: int, gen: torch.Generator, reveal: str = "ancestral"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The schedule of ``B`` strings: the step at which each token is revealed ``(B, d)``
    and the uniform its value is drawn with. Drawn before any model call, so the plain
    and the cached sampler (and :func:`rhmfast.diffusion.reference.sampling_probability`)
    share it."""
    if reveal == "one":
        when = torch.rand((B, d), generator=gen, dtype=torch.float64).argsort(1).argsort(1)
        return when, torch.rand((B, d), generator=gen, dtype=torch.float64)
    masked = torch.ones((B, d), dtype=torch.bool)
    when = torch.zeros((B, d), dtype=torch.long)
    u_at = torch.zeros((B, d), dtype=torch.float64)
    for k in range(K):
        t, s = 1.0 - k / K, 1.0 - (k + 1) / K
        u_reveal = torch.rand((B, d), generator=gen, dtype=torch.float64)
        u_value = torch.rand((B, d), generator=gen, dtype=torch.float64)
        now = masked & (u_reveal < (t - s) / t) if k < K - 1 else masked
        when[now] = k
        u_at[now] = u_value[now]
        masked &= ~now
    return when, u_at


def _forward_probs(
    model: Denoiser, x: torch.Tensor, device: torch.device, bf16: bool
) -> torch.Tensor:
    with autocast(device, bf16):
        logits = model(x, None)
    return torch.softmax(logits.double(), -1)


def _masked_run(
    model: Denoiser,
    process: MaskedProcess,
    when: torch.Tensor,
    u_at: torch.Tensor,
    device: torch.device,
    bf16: bool,
    stats: dict[str, int],
    *,
    cache: bool,
) -> torch.Tensor:
    """Reveals ``B`` strings along the schedule ``when`` / ``u_at`` (:func:`draw_reveals`).

    The j-th model call of a row serves its j-th event: the tokens revealed then are
    drawn from that call's output. With ``cache`` a row's events are its distinct reveal
    steps, so a row goes through the model again only after it changed; without it
    every step is an event of every row (the plain reference, ``B`` rows per step). The
    model sees the same strings either way, so both give the same tokens."""
    B, d = when.shape
    if cache:
        # event of each token: how many distinct reveal steps of its row come earlier
        srt, order = when.sort(1)
        new = torch.ones_like(srt, dtype=torch.long)
        new[:, 1:] = (srt[:, 1:] != srt[:, :-1]).long()
        event = torch.empty_like(when).scatter_(1, order, new.cumsum(1) - 1)
        num_events = event.amax(1) + 1
    else:
        event = when
        num_events = torch.full((B,), int(when.max()) + 1, dtype=torch.long)
    event, u_at = event.to(device), u_at.to(device)
    x = torch.full((B, d), process.mask_id, dtype=torch.long, device=device)
    for j in range(int(num_events.max())):
        rows = (num_events > j).nonzero()[:, 0].to(device)
        sub = x[rows]  # one gather serves the forward pass and the update
        probs = _forward_probs(model, sub, device, bf16)
        stats["forward_calls"] += 1
        stats["row_evals"] += int(rows.numel())
        hit = event[rows] == j
        sub[hit] = categorical(probs[hit], u_at[rows][hit])
        x[rows] = sub
    return x


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
    _check_sizes(num, d, batch_size)
    device = torch.device(device)
    out = np.empty((num, d), dtype=np.int64)
    stats = {"forward_calls": 0, "row_evals": 0}
    for b, lo in enumerate(range(0, num, batch_size)):
        B = min(batch_size, num - lo)
        gen = seeded_generator(seed, b)
        x = torch.randint(0, process.K, (B, d), generator=gen).to(device)
        for t in range(process.T, 0, -1):
            tt = torch.full((B,), t, dtype=torch.long, device=device)
            with autocast(device, bf16):
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
    reveal: str = "ancestral",
) -> np.ndarray:
    """Samples from either process (cached sampler for the masked one; ``reveal`` as in
    :func:`sample_masked`)."""
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
            reveal=reveal,
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
