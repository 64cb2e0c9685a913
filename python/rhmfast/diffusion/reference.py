"""Exact reference denoisers as torch ``Denoiser`` s, and the probability that a sampler
driven by one of them outputs a given string: the chance baseline of the sampler
actually used.

``GrammarDenoiser(g)`` is the optimal denoiser of a model that learned the grammar and
memorized nothing, ``EmpiricalDenoiser(train)`` that of a model that memorized the
training set, ``MixtureDenoiser(g, train, lam)`` that of a model that memorized a
fraction ``lam`` (:mod:`rhmfast.posterior` computes their posteriors exactly). Each maps
``(tokens (B, d) long with the mask id v, time or None) -> logits (B, d, v)`` on the
tokens' device, so the samplers, :func:`~rhmfast.diffusion.elbo.elbo_nll` and the
trainer's evaluation take them wherever they take a trained model. With a
:class:`~rhmfast.diffusion.processes.D3PMProcess` the time selects ``alpha_bar`` and the
tokens are read as seen through uniform noise; the prediction is then
``p(x0_i | every other noisy token)``, the posterior with the token's own observation
divided out: D3PM's reverse step multiplies that likelihood in again (its
x0-parameterization), and this is the prediction that makes the step the true reverse
(the full posterior there gives 36-42% valid strings of a grammar at 50-1000 steps,
this one 100%).

>>> import torch, rhmfast
>>> from rhmfast.diffusion.processes import MaskedProcess
>>> from rhmfast.diffusion.sampling import sample_masked
>>> g = rhmfast.RHM(4, 2, 2, 2, 3, seed=0)
>>> x, _ = sample_masked(GrammarDenoiser(g), MaskedProcess(4), num=64, d=8, seed=0, reveal="one")
>>> bool(g.check(x).valid.all())       # one token per step: exact samples of the grammar
True
>>> p, se = sampling_probability(GrammarDenoiser(g), x[:2], reveal="one", draws=4, seed=0)
>>> bool(np.allclose(p, np.exp(g.log_prob(x[:2]))))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rhmfast._args import integer
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess
from rhmfast.diffusion.sampling import draw_reveals, seeded_generator
from rhmfast.grammar import RHM
from rhmfast.posterior import EmpiricalPrior, GrammarPrior, MixturePrior

__all__ = ["GrammarDenoiser", "EmpiricalDenoiser", "MixtureDenoiser", "sampling_probability"]

# log of a zero probability: finite, so losses stay finite, and far below any real one
LOG_ZERO = -1e4


class ReferenceDenoiser(nn.Module):
    """A prior with an exact posterior, as a denoiser (no parameters)."""

    def __init__(self, prior: GrammarPrior | EmpiricalPrior | MixturePrior, process: Any = None):
        super().__init__()
        if process is not None and not isinstance(process, (MaskedProcess, D3PMProcess)):
            raise TypeError(f"process: expected a MaskedProcess or D3PMProcess, got {type(process).__name__}")
        if process is not None and process.v != prior.v:
            raise ValueError(f"process: v = {process.v}, the prior's v = {prior.v}")
        self.prior = prior
        self.process = process

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        xn = x.detach().cpu().numpy()
        if t is None:
            marg = self.prior.posterior(xn, mask_id=self.prior.v).marginals
        else:
            if not isinstance(self.process, D3PMProcess):
                raise ValueError("a time was given: pass process=D3PMProcess(...) to read uniform noise")
            steps = (t.detach().double().cpu() * self.process.T).round().long()
            ab = self.process.alpha_bar[steps].numpy()
            marg = self.prior.posterior(xn, alpha_bar=ab).marginals
            # divide out each token's own likelihood ab [a = o] + (1 - ab) / v
            own = np.broadcast_to(((1 - ab) / self.prior.v)[:, None, None], marg.shape).copy()
            np.put_along_axis(own, xn[..., None], np.take_along_axis(own, xn[..., None], -1) + ab[:, None, None], -1)
            marg = marg / own
            marg /= marg.sum(-1, keepdims=True)
        with np.errstate(divide="ignore"):
            logits = np.maximum(np.log(marg), LOG_ZERO)
        return torch.from_numpy(logits).to(x.device)


class GrammarDenoiser(ReferenceDenoiser):
    """The exact denoiser of the grammar ``g`` (a perfect generalizer)."""

    def __init__(self, g: RHM, process: Any = None) -> None:
        super().__init__(GrammarPrior(g), process)


class EmpiricalDenoiser(ReferenceDenoiser):
    """The exact denoiser of the training set, uniform or weighted (a perfect memorizer);
    ``v`` defaults to one more than the largest training token."""

    def __init__(self, train: Any, weights: Any = None, *, v: int | None = None, process: Any = None):
        t = np.asarray(train)
        vv = int(t.max()) + 1 if v is None and t.size and t.dtype.kind in "iu" else v
        super().__init__(EmpiricalPrior(train, 1 if vv is None else vv, weights), process)


class MixtureDenoiser(ReferenceDenoiser):
    """The exact denoiser of ``(1 - lam) p_grammar + lam p_train(weights)``."""

    def __init__(self, g: RHM, train: Any, lam: float, weights: Any = None, process: Any = None):
        super().__init__(MixturePrior(g, train, lam, weights), process)


@torch.no_grad()
def sampling_probability(
    model: ReferenceDenoiser,
    x: Any,
    *,
    steps: int = 0,
    reveal: str = "ancestral",
    draws: int = 64,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Probability that the masked sampler (``steps``, ``reveal`` as in
    :func:`~rhmfast.diffusion.sampling.sample_masked`) driven by the exact ``model``
    outputs each string of ``x (N, d)``, with its standard error.

    Given the schedule (which tokens are revealed at which step), the output is a
    product over steps of the posterior marginals of the tokens revealed there, given
    those revealed before. The schedule does not depend on the model, so the
    probability is that product averaged over schedules drawn as the sampler draws
    them: ``draws`` schedules per string, a Monte Carlo mean with its standard error.
    With ``reveal="one"`` every schedule gives the prior's probability exactly (the
    standard error is rounding).
    """
    if not isinstance(model, ReferenceDenoiser):
        raise TypeError(f"model: expected a reference denoiser, got {type(model).__name__}")
    prior = model.prior
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != prior.d or a.dtype.kind not in "iu":
        raise ValueError(f"x: expected integer strings of shape (N, {prior.d}), got {a.dtype} {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= prior.v):
        raise ValueError(f"x: tokens must be in [0, v={prior.v})")
    draws = integer("draws", draws, lo=1, hi=2**20)
    steps = integer("steps", steps, hi=2**20)
    d = prior.d
    if reveal == "one" and steps not in (0, d):
        raise ValueError(f"steps = {steps}: reveal='one' takes d = {d} steps (give 0 or d)")
    K = steps or d
    n = a.shape[0]
    rows = np.repeat(a.astype(np.int64), draws, axis=0)  # string-major: draws together
    when = draw_reveals(n * draws, d, K, seeded_generator(seed, 0), reveal)[0].numpy()
    logp = np.zeros(n * draws)
    for k in np.unique(when):
        hit = (when == k).any(1)
        sub = np.where(when[hit] < k, rows[hit], prior.v)
        marg = prior.posterior(sub, mask_id=prior.v).marginals
        picked = np.take_along_axis(marg, rows[hit][..., None], -1)[..., 0]
        with np.errstate(divide="ignore"):
            logp[hit] += np.where(when[hit] == k, np.log(picked), 0.0).sum(1)
    p = np.exp(logp).reshape(n, draws)
    se = p.std(1, ddof=1) / np.sqrt(draws) if draws > 1 else np.full(n, np.nan)
    return p.mean(1), se
