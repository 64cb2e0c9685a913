"""Discrete diffusion processes: masked (absorbing) continuous time, and uniform D3PM.

Both expose the same small interface used by training, sampling and the ELBO:

* ``input_vocab``: token ids the denoiser reads (``v + 1`` for masked: id ``v`` is
  the mask; ``v`` for D3PM);
* ``time_conditioned``: whether the denoiser is given the time;
* ``loss(model, x0, noise)``: per-string loss (nats), ``(B,)``, whose batch mean is the
  training objective and whose expectation over the noise is the negative ELBO;
* ``draw_noise(B, d, generator)``: the random numbers for one batch, drawn on the
  CPU from an explicit generator so every device and rank sees the same noise.

>>> import torch
>>> p = MaskedProcess(v=4)
>>> x0 = torch.tensor([[0, 1, 2, 3]])
>>> noise = p.draw_noise(1, 4, torch.Generator().manual_seed(0))
>>> p.corrupt(x0, noise).shape
torch.Size([1, 4])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
import torch.nn.functional as F

# A denoiser maps (tokens (B,d) long, time (B,) float in [0,1] or None) -> logits (B,d,v).
Denoiser = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]

T_MIN = 1e-4  # masked process: smallest time drawn (the 1/t weight diverges at 0)


@dataclasses.dataclass
class Noise:
    """Random numbers for one batch: a time per string and a uniform per token."""

    t: torch.Tensor  # (B,) float64: masked: time in (0,1]; d3pm: integer step 1..T
    u: torch.Tensor  # (B,d) float64 uniforms (masking decisions / replacement draws)
    r: torch.Tensor | None = None  # (B,d) long: d3pm replacement tokens
    w: torch.Tensor | None = None  # (B,) float64: masked: loss weight (None: 1/t)

    def slice(self, lo: int, hi: int) -> Noise:
        r, w = (None if a is None else a[lo:hi] for a in (self.r, self.w))
        return Noise(self.t[lo:hi], self.u[lo:hi], r, w)

    def to(self, device: torch.device | str) -> Noise:
        r, w = (None if a is None else a.to(device) for a in (self.r, self.w))
        return Noise(self.t.to(device), self.u.to(device), r, w)


def stratified(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Antithetic (stratified) fractions ``(u + i/B) mod 1`` for one shared uniform ``u``:
    the batch covers [0,1) evenly, which lowers the variance of the loss."""
    u = torch.rand((), generator=generator, dtype=torch.float64)
    return torch.remainder(u + torch.arange(batch, dtype=torch.float64) / batch, 1.0)


class MaskedProcess:
    """Absorbing diffusion in continuous time with the linear schedule (mask prob. t).

    Loss per string: ``(1/t) * sum over masked positions of -log p(x0_i | x_t)``; its
    expectation over ``t ~ U(0,1)`` and the masks bounds ``-log p_model(x0)``.

    ``block_fraction`` of each training batch (default none) is masked by aligned blocks
    instead (one size from ``block_sizes`` per string, each block masked whole with
    probability t): every position is still masked with probability t and the loss at a
    masked position is still the log-loss of ``p(x0_i | x_t)``, so the best denoiser is
    unchanged, but strings with one subtree hidden and its sibling shown, where the
    rules of the upper levels are the only information, become common instead of rare.
    Those strings' loss is not part of the ELBO; the evaluation's bound uses token masks.

    ``count_sampling`` draws the number of masked tokens ``k`` with probability
    proportional to ``1/k`` (stratified over the batch), masks a uniform subset of that
    size and weighs every masked token by ``H_d = 1 + 1/2 + ... + 1/d``. Since
    ``int_0^1 P(|M|=k | t) / t dt = 1/k``, this has the same expectation as the ``1/t``
    form, the negative ELBO, with every masked token weighted alike: strings with a few
    masked tokens, where every level's rule (the root's included) constrains the
    answer sharply, are common (for d = 16, at most three masked in 54% of the rows,
    against 18% with ``t ~ U(0,1)``) instead of rare rows with weights up to ``1/t``.
    """

    time_conditioned = False

    def __init__(
        self,
        v: int,
        block_sizes: tuple[int, ...] = (),
        block_fraction: float = 0.0,
        count_sampling: bool = False,
    ) -> None:
        if block_fraction and not block_sizes:
            raise ValueError("block_fraction > 0 needs block_sizes")
        if block_fraction and count_sampling:
            raise ValueError("block masks and count sampling cannot be combined")
        self.v = v
        self.mask_id = v
        self.input_vocab = v + 1
        self.block_sizes = tuple(block_sizes)
        self.block_fraction = float(block_fraction)
        self.count_sampling = bool(count_sampling)

    def draw_noise(self, batch: int, d: int, generator: torch.Generator) -> Noise:
        if self.count_sampling:
            return self.count_noise_at(stratified(batch, generator), d, generator)
        noise = self.noise_at(stratified(batch, generator), d, generator)
        if self.block_fraction > 0:  # no extra draws otherwise: token-mask runs stay as they were
            noise = self._block_masks(noise, d, generator)
        return noise

    def _block_masks(self, noise: Noise, d: int, generator: torch.Generator) -> Noise:
        """Give a ``block_fraction`` of the rows one uniform per aligned block."""
        batch = noise.u.shape[0]
        rows = torch.rand(batch, generator=generator, dtype=torch.float64) < self.block_fraction
        size = torch.randint(len(self.block_sizes), (batch,), generator=generator)
        u = noise.u.clone()
        for j, b in enumerate(self.block_sizes):
            if d % b:
                raise ValueError(f"block size {b} does not divide the string length d = {d}")
            sel = rows & (size == j)
            # the first uniform of each block decides for the whole block
            u[sel] = u[sel].reshape(-1, d // b, b)[:, :, :1].expand(-1, d // b, b).reshape(-1, d)
        return Noise(noise.t, u)

    def noise_at(self, frac: torch.Tensor, d: int, generator: torch.Generator) -> Noise:
        """Noise at given time fractions in [0,1) (``(B,)`` float64): ``t = 1 - frac``."""
        t = (1.0 - frac).clamp_min(T_MIN)
        u = torch.rand((frac.shape[0], d), generator=generator, dtype=torch.float64)
        return Noise(t, u)

    def count_noise_at(self, frac: torch.Tensor, d: int, generator: torch.Generator) -> Noise:
        """Noise with ``k`` masked tokens, ``P(k) = (1/k) / H_d``, ``k`` from the fractions
        ``frac`` in [0,1) by the inverse CDF; a uniform subset; weight ``H_d``."""
        inv = 1.0 / torch.arange(1, d + 1, dtype=torch.float64)
        harmonic = float(inv.sum())
        cdf = torch.cumsum(inv, 0) / harmonic
        k = (torch.searchsorted(cdf, frac.to(torch.float64), right=True) + 1).clamp(max=d)
        noise = self._subset_masks(k, d, generator)
        return Noise(noise.t, noise.u, w=torch.full_like(noise.t, harmonic))

    @staticmethod
    def _subset_masks(k: torch.Tensor, d: int, generator: torch.Generator) -> Noise:
        """Exactly ``k[b]`` masked tokens in row ``b``, a uniform subset (``t = k/d``)."""
        ranks = torch.rand((k.shape[0], d), generator=generator).argsort(1).argsort(1)
        u = (ranks.double() + 0.5) / d  # masked iff rank < k  <=>  u < k/d
        return Noise(k.double() / d, u)

    def elbo_noise_at(self, frac: torch.Tensor, d: int, generator: torch.Generator) -> Noise:
        """Noise for the ELBO estimate: exactly ``k = floor(frac*d) + 1`` masked tokens, a
        uniform subset, weight ``d/k``. Conditioning the continuous-time bound on the
        number masked gives ``d * E_k[(1/k) E_|M|=k sum_M -log p]`` (since
        ``int_0^1 P(|M|=k | t) / t dt = 1/k``): the same expectation with finite variance,
        where the ``1/t`` form diverges logarithmically near ``t = 0``."""
        return self._subset_masks((frac * d).long().clamp(0, d - 1) + 1, d, generator)

    def corrupt(self, x0: torch.Tensor, noise: Noise) -> torch.Tensor:
        masked = noise.u < noise.t[:, None]
        return torch.where(masked, torch.full_like(x0, self.mask_id), x0)

    def loss(self, model: Denoiser, x0: torch.Tensor, noise: Noise) -> torch.Tensor:
        xt = self.corrupt(x0, noise)
        logits = model(xt, None).float()
        nll = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")  # (B,d)
        masked = (xt == self.mask_id).float()
        if noise.w is not None:
            return (nll * masked).sum(1) * noise.w.to(nll.dtype)
        return (nll * masked).sum(1) / noise.t.to(nll.dtype)


class D3PMProcess:
    """Uniform (multinomial) D3PM with ``T`` steps and a linear beta schedule.

    ``q(x_t | x_{t-1}) = (1 - beta_t) x_{t-1} + beta_t / K``. The denoiser predicts
    ``p(x0 | x_t)``; the model posterior is
    ``p(x_{t-1} | x_t) ∝ q(x_t | x_{t-1}) * sum_x0 q(x_{t-1} | x0) p(x0 | x_t)``. The
    loss is ``T`` times the posterior KL at a uniform step ``t`` (``-log p(x0|x1)`` at
    ``t = 1``), plus the prior KL ``KL(q(x_T|x0) || uniform)``, so that its expectation is
    the negative ELBO in nats.
    """

    time_conditioned = True

    def __init__(
        self, v: int, steps: int = 200, beta_min: float = 1e-3, beta_max: float = 0.1
    ) -> None:
        self.v = v
        self.K = v
        self.input_vocab = v
        self.T = steps
        betas = torch.linspace(beta_min, beta_max, steps, dtype=torch.float64)
        # index 0 is "step 0" (no noise); betas[t] for t = 1..T
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])
        self.alpha_bar = torch.cumprod(1.0 - self.betas, 0)  # alpha_bar[0] = 1

    # ---- distributions (float64, shape (..., K)) ---------------------------------
    def q_marginal(self, x0_probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x0)`` for a distribution over x0 (``(B,d,K)``), per-string step t."""
        ab = self.alpha_bar.to(x0_probs.device)[t].to(x0_probs.dtype)[:, None, None]
        return ab * x0_probs + (1 - ab) / self.K

    def posterior(self, xt: torch.Tensor, x0_probs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``∝ q(x_t | x_{t-1}) q(x_{t-1} | x0)`` summed over x0 ~ x0_probs, normalised.

        With a one-hot ``x0_probs`` this is the true posterior; with the model's
        prediction it is the model's reverse step. ``t`` is (B,) integer in 1..T.
        """
        dev, dt = x0_probs.device, x0_probs.dtype
        beta = self.betas.to(dev)[t].to(dt)[:, None, None]
        fact1 = (1 - beta) * F.one_hot(xt, self.K).to(dt) + beta / self.K
        fact2 = self.q_marginal(x0_probs, t - 1)
        un = fact1 * fact2
        return un / un.sum(-1, keepdim=True)

    def draw_noise(self, batch: int, d: int, generator: torch.Generator) -> Noise:
        return self.noise_at(stratified(batch, generator), d, generator)

    def noise_at(self, frac: torch.Tensor, d: int, generator: torch.Generator) -> Noise:
        """Noise at steps ``t = floor(frac * T) + 1`` for fractions in [0,1)."""
        batch = frac.shape[0]
        t = (frac * self.T).long().clamp(0, self.T - 1) + 1
        u = torch.rand((batch, d), generator=generator, dtype=torch.float64)
        r = torch.randint(0, self.K, (batch, d), generator=generator)
        return Noise(t.double(), u, r)

    elbo_noise_at = noise_at  # the per-step estimate is already finite-variance

    def corrupt(self, x0: torch.Tensor, noise: Noise) -> torch.Tensor:
        t = noise.t.long()
        ab = self.alpha_bar.to(x0.device)[t][:, None]
        keep = noise.u < ab
        if noise.r is None:
            raise ValueError("D3PM noise needs replacement tokens (use D3PMProcess.noise_at)")
        return torch.where(keep, x0, noise.r)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """``KL(q(x_T | x0) || uniform)`` per string (nats, (B,) float64)."""
        ab = float(self.alpha_bar[self.T])
        p_hit = ab + (1 - ab) / self.K
        p_miss = (1 - ab) / self.K
        kl_tok = p_hit * torch.log(torch.tensor(p_hit * self.K, dtype=torch.float64))
        if p_miss > 0:
            kl_tok = kl_tok + (self.K - 1) * p_miss * torch.log(
                torch.tensor(p_miss * self.K, dtype=torch.float64)
            )
        per_string = float(kl_tok) * x0.shape[1]
        return torch.full((x0.shape[0],), per_string, dtype=torch.float64, device=x0.device)

    def step_terms(self, logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor):
        """Per-string term at step t: posterior KL for t >= 2, ``-log p(x0|x1)`` at t = 1."""
        x0_pred = torch.softmax(logits.double(), -1)
        true_post = self.posterior(xt, F.one_hot(x0, self.K).double(), t)
        model_post = self.posterior(xt, x0_pred, t)
        log_model = torch.log(model_post.clamp_min(1e-40))
        kl = (true_post * (torch.log(true_post.clamp_min(1e-40)) - log_model)).sum(-1)  # (B,d)
        nll0 = -log_model.gather(-1, x0[..., None])[..., 0]  # (B,d)
        first = (t == 1)[:, None]
        return torch.where(first, nll0, kl).sum(1)

    def loss(self, model: Denoiser, x0: torch.Tensor, noise: Noise) -> torch.Tensor:
        xt = self.corrupt(x0, noise)
        t = noise.t.long()
        logits = model(xt, t.float() / self.T)
        terms = self.step_terms(logits.float(), x0, xt, t)
        return (self.T * terms + self.prior_kl(x0)).float()


def make_process(
    name: str,
    v: int,
    d3pm_steps: int = 200,
    *,
    block_sizes: tuple[int, ...] = (),
    block_fraction: float = 0.0,
    count_sampling: bool = False,
) -> MaskedProcess | D3PMProcess:
    if name == "masked":
        return MaskedProcess(v, block_sizes, block_fraction, count_sampling)
    if name == "d3pm":
        return D3PMProcess(v, d3pm_steps)
    raise ValueError(f"process = {name!r}: must be 'masked' or 'd3pm'")
