"""Per-string likelihood bound: the diffusion ELBO on ``-log p_model(x)`` in nats.

For each string the bound is averaged over ``draws`` noise draws whose times are
stratified (draw k of a string sits in the k-th of ``draws`` equal slices of [0,1)),
which keeps the estimate unbiased and its variance low. The masked process uses its
finite-variance form (a uniform number of masked tokens, weight ``d/k``). Comparing it with the exact
grammar ``-log p(x)`` measures memorization without sampling (docs/SCIENCE.md).

>>> import torch
>>> from rhmfast.diffusion.processes import MaskedProcess
>>> uniform = lambda x, t: torch.zeros(*x.shape, 4)
>>> nll = elbo_nll(uniform, MaskedProcess(4), torch.zeros(3, 8, dtype=torch.long), draws=64, seed=0)
>>> bool(abs(nll.mean() - 8 * torch.log(torch.tensor(4.0)).item()) < 1.0)
True
"""

from __future__ import annotations

import numpy as np
import torch

from rhmfast.diffusion.processes import D3PMProcess, Denoiser, MaskedProcess
from rhmfast.diffusion.sampling import autocast, seeded_generator


@torch.no_grad()
def elbo_nll(
    model: Denoiser,
    process: MaskedProcess | D3PMProcess,
    x: torch.Tensor | np.ndarray,
    *,
    draws: int,
    seed: int,
    batch_size: int = 4096,
    device: str | torch.device = "cpu",
    bf16: bool = False,
) -> np.ndarray:
    """ELBO bound on ``-log p_model(x)`` per string, ``(N,)`` float64 nats."""
    if draws < 1:
        raise ValueError(f"draws = {draws}: must be >= 1")
    if batch_size < 1:
        raise ValueError(f"batch_size = {batch_size}: must be >= 1")
    device = torch.device(device)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.long) if not torch.is_tensor(x) else x.long()
    if xt.dim() != 2:
        raise ValueError(f"x has shape {tuple(xt.shape)}: expected (N, d)")
    N, d = xt.shape
    out = np.zeros(N, dtype=np.float64)
    per = max(1, batch_size // draws)  # strings per model batch
    for b, lo in enumerate(range(0, N, per)):
        gen = seeded_generator(seed, b)
        chunk = xt[lo : lo + per]
        n = chunk.shape[0]
        rows = chunk.repeat_interleave(draws, 0).to(device)
        offs = torch.rand(n, generator=gen, dtype=torch.float64).repeat_interleave(draws)
        frac = (torch.arange(draws, dtype=torch.float64).repeat(n) + offs) / draws
        noise = process.elbo_noise_at(frac, d, gen).to(device)
        with autocast(device, bf16):
            loss = process.loss(model, rows, noise)
        out[lo : lo + n] = loss.double().view(n, draws).mean(1).cpu().numpy()
    return out
