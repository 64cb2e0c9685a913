"""The known-answer memorizer in count space (numpy only): the copy counts of the
mixture of :mod:`rhmfast.knownanswers.memorizer` drawn directly, without strings. The
audit reads its null runs from here: a model that memorizes every training string at
the same rate, fitted to copy as often as the observed model.

Per step, of ``n`` valid samples ``Binomial(n, lam)`` are memorized (training rows drawn
by their weights) and the others are grammar draws: a multinomial over the training
strings (``p_train``), the held-out strings (``p_heldout``) and everything else. That
is what :func:`rhmfast.knownanswers.simulate.simulate_run` does in run space with one
token revealed per sampling step, counted instead of written.

>>> rng = np.random.default_rng(0)
>>> p_train, p_held = np.array([0.1, 0.0]), np.array([0.05])
>>> tr, ho = mixture_counts(rng, p_train, p_held, np.array([0, 0]), np.array([1.0]), np.array([10]))
>>> tr.tolist(), ho.tolist()     # lam = 1: every valid sample a copy (row 1 repeats row 0)
([[10, 0]], [[0]])
"""

from __future__ import annotations

import numpy as np

from rhmfast.stats.chance import memorized_fraction

__all__ = ["fitted_lam", "mixture_counts"]


def fitted_lam(copies: np.ndarray, num_valid: np.ndarray, train_mass: float) -> np.ndarray:
    """``(T,)`` the memorized share ``lam`` of the valid samples at which the mixture's
    expected copies equal ``copies``: :func:`rhmfast.stats.chance.memorized_fraction` of
    the copy fraction among valid samples (the same formula the run-space null fit
    :func:`rhmfast.knownanswers.nulls.lam_for_copy_fraction` solves), clipped to [0, 1].

    >>> fitted_lam(np.array([0, 28]), np.array([100, 100]), 0.2).round(3).tolist()
    [0.0, 0.1]
    """
    n = np.asarray(num_valid, np.float64)
    c = np.where(n > 0, np.asarray(copies, np.float64) / np.maximum(n, 1), 0.0)
    c = np.clip(c, 0.0, 1.0)
    return np.clip(memorized_fraction(c, 1.0 - c, train_mass), 0.0, 1.0)


def mixture_counts(rng: np.random.Generator, p_train: np.ndarray, p_heldout: np.ndarray, train_row: np.ndarray,
                   lam: np.ndarray, num_valid: np.ndarray, weights: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(T, P)`` training and ``(T, H)`` held-out copy counts of the mixture: per step
    ``num_valid[t]`` valid samples, a share ``lam[t]`` of them memorized. ``p_train`` /
    ``p_heldout``: each string's probability per grammar draw (zero on repeated rows,
    whose copies count at ``train_row``, the index of each row's first occurrence);
    ``weights``: the memorized rows' weights (default uniform over rows)."""
    p_train, p_heldout = np.asarray(p_train, np.float64), np.asarray(p_heldout, np.float64)
    lam, num_valid = np.asarray(lam, np.float64), np.asarray(num_valid)
    T, P, H = len(num_valid), len(p_train), len(p_heldout)
    if lam.shape != (T,):
        raise ValueError(f"lam: shape {lam.shape} must be ({T},), one weight per step")
    if len(train_row) != P or (weights is not None and len(weights) != P):
        raise ValueError(f"train_row and weights must have one entry per training row ({P})")
    rest = max(0.0, 1.0 - float(p_train.sum()) - float(p_heldout.sum()))
    probs = np.concatenate([p_train, p_heldout, [rest]])
    probs /= probs.sum()
    w = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    tr, ho = np.zeros((T, P), np.int64), np.zeros((T, H), np.int64)
    for t in range(T):
        n = int(num_valid[t])
        if not n:
            continue
        mem = int(rng.binomial(n, min(1.0, max(0.0, float(lam[t])))))
        drawn = rng.multinomial(n - mem, probs)
        rows = rng.integers(P, size=mem) if w is None else rng.choice(P, size=mem, p=w)
        tr[t] = drawn[:P] + np.bincount(train_row[rows], minlength=P)
        ho[t] = drawn[P:P + H]
    return tr, ho
