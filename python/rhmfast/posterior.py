"""Exact posteriors of noisy strings under three priors with known answers (numpy only):
the grammar (a perfect generalizer), the training set (a perfect memorizer), and their
mixture ``(1 - lam) p_grammar + lam p_train`` (a model that memorizes a fraction lam).

For strings with some tokens masked (``mask_id``) or every token seen through uniform
noise with keep probability ``alpha_bar`` (D3PM), ``posterior(x, ...)`` gives the
marginals ``p(x0_i = a | x)`` ``(N, d, v)`` and the log probability of what is seen,
``log p(x)`` ``(N,)``: exact, in float64, computed in Rust (inside/outside message
passing on the grammar's tree; bitsets over the training strings). These are the optimal
denoisers of the diffusion processes, so anything measured on a trained model can be
measured on them, where the answer is known. :mod:`rhmfast.diffusion.reference` wraps
them as torch denoisers.

>>> import numpy as np
>>> import rhmfast
>>> g = rhmfast.RHM(6, 6, 4, 2, 3, seed=0)
>>> x = g.sample(2, seed=1).astype(np.int64)
>>> x[:, :4] = 6                                  # mask the first half (mask id v = 6)
>>> post = GrammarPrior(g).posterior(x, mask_id=6)
>>> post.marginals.shape, bool(np.allclose(post.marginals.sum(-1), 1))
((2, 8, 6), True)
>>> train = g.sample(50, seed=2, unique=True)
>>> mem = EmpiricalPrior(train, v=6).posterior(train[:1].astype(np.int64), mask_id=6)
>>> round(float(mem.log_evidence[0]), 4) == round(float(-np.log(50)), 4)   # one in 50
True
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rhmfast import _rhmfast
from rhmfast._args import integer, number
from rhmfast._tokens import as_array, training_tokens
from rhmfast.grammar import RHM

__all__ = ["Posterior", "GrammarPrior", "EmpiricalPrior", "MixturePrior"]


class Posterior(NamedTuple):
    """``marginals (N, d, v)``: ``p(x0_i = a | evidence)``; ``log_evidence (N,)``: the log
    probability of the evidence under the prior (``-inf`` where it is impossible, and
    then uniform marginals)."""

    marginals: np.ndarray
    log_evidence: np.ndarray


def _evidence(x: Any, d: int, v: int, mask_id: Any, alpha_bar: Any) -> tuple[np.ndarray, dict]:
    a = as_array(x, "x", 2)
    if a.shape[1] != d:
        raise ValueError(f"x: strings have length {a.shape[1]}, the prior's d = {d}")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if (mask_id is None) == (alpha_bar is None):
        raise ValueError("give exactly one of mask_id (masked noise) and alpha_bar (uniform noise)")
    if mask_id is not None:
        return a, {"mask_id": integer("mask_id", mask_id, lo=None)}
    ab = np.asarray(alpha_bar, dtype=np.float64)
    if ab.ndim == 0:
        ab = np.full(a.shape[0], float(ab))
    if ab.shape != (a.shape[0],):
        raise ValueError(f"alpha_bar: expected a number or {a.shape[0]} values, got shape {ab.shape}")
    return a, {"alpha_bar": np.ascontiguousarray(ab)}


def _grammar(g: Any, name: str = "g") -> RHM:
    if not isinstance(g, RHM):
        raise TypeError(f"{name}: expected an rhmfast.RHM, got {type(g).__name__}")
    return g


class GrammarPrior:
    """The grammar as the data distribution: the posterior of a perfect generalizer."""

    def __init__(self, g: RHM) -> None:
        self.grammar = _grammar(g)
        self.d, self.v = g.d, g.v

    def posterior(self, x: Any, *, mask_id: int | None = None, alpha_bar: Any = None) -> Posterior:
        """Exact posterior of noisy strings ``x (N, d)``: tokens equal to ``mask_id`` are
        unseen, or (``alpha_bar``, a number or one per string) every token is seen
        through uniform noise."""
        a, kw = _evidence(x, self.d, self.v, mask_id, alpha_bar)
        return Posterior(*_rhmfast.grammar_posterior(self.grammar._g, a, **kw))


class EmpiricalPrior:
    """The training set as the data distribution (uniform over its strings, or with the
    given non-negative ``weights``, one per string): the posterior of a perfect
    memorizer, whose samples are training strings only."""

    def __init__(self, train: Any, v: int, weights: Any = None) -> None:
        t = training_tokens(train, "train")
        self.v = integer("v", v, lo=1, hi=2**32 - 1)
        self.d = t.shape[1]
        self.num_strings = t.shape[0]
        w = None
        if weights is not None:
            w = np.asarray(weights)
            if w.dtype.kind not in "iuf":
                raise TypeError(f"weights: expected real numbers, got dtype {w.dtype}")
            if w.ndim != 1:
                raise ValueError(f"weights: expected one weight per training string, got shape {w.shape}")
            w = np.ascontiguousarray(w, dtype=np.float64)
        self._native = _rhmfast.Empirical(t, self.v, w)

    def posterior(self, x: Any, *, mask_id: int | None = None, alpha_bar: Any = None) -> Posterior:
        """As :meth:`GrammarPrior.posterior`, under the training distribution."""
        a, kw = _evidence(x, self.d, self.v, mask_id, alpha_bar)
        return Posterior(*self._native.posterior(a, **kw))


class MixturePrior:
    """``(1 - lam) p_grammar + lam p_train(weights)``: a model that memorizes a fraction
    ``lam``. Its posterior weighs the two components' posteriors by their shares
    ``(1 - lam) p_grammar(seen) : lam p_train(seen)`` of the evidence (which is not the
    fixed mixture of the two posteriors)."""

    def __init__(self, g: RHM, train: Any, lam: float, weights: Any = None) -> None:
        self.grammar = _grammar(g)
        self.train = EmpiricalPrior(train, g.v, weights)
        if self.train.d != g.d:
            raise ValueError(f"train: strings have length {self.train.d}, the grammar's d = {g.d}")
        self.lam = number("lam", lam, lo=0, hi=1)
        self.d, self.v = g.d, g.v

    def posterior(self, x: Any, *, mask_id: int | None = None, alpha_bar: Any = None) -> Posterior:
        """As :meth:`GrammarPrior.posterior`, under the mixture."""
        a, kw = _evidence(x, self.d, self.v, mask_id, alpha_bar)
        return Posterior(
            *_rhmfast.mixture_posterior(self.grammar._g, self.train._native, self.lam, a, **kw)
        )
