"""The prototypicality score of a training string: how common its blocks are in the
training set. One definition, read by the experiments, the known-answer memorizers,
the audit and :func:`rhmfast.prototypicality`.

For each level ``l = 1..L`` the string's aligned level-``l`` blocks (``s**l`` of them,
``s**(L-l)`` tokens each; level ``L`` = single tokens) are looked up at their own
position in the ``P`` training strings: ``count`` training strings (the string itself
among them) hold the same block there. The score is the mean over levels of the mean
over positions of ``log(count / P)``: 0 for a string all of whose blocks every
training string shares, ``-log P`` for one whose blocks are all unique. Higher = built
from commoner substrings = more prototypical. Level 0 (the whole string) is left out:
in a set of distinct strings it is ``-log P`` for all.

>>> train = np.array([[0, 0], [0, 1], [0, 1]])
>>> prototypicality_score(train, 2).round(3).tolist()    # token 0 at position 0 in 3 of 3 strings
[-0.549, -0.203, -0.203]
"""

from __future__ import annotations

import numpy as np

from rhmfast.counting import depth_of, positional_block_counts

__all__ = ["block_log_frequency", "prototypicality_score"]


def block_log_frequency(x: np.ndarray, s: int, *, reference: np.ndarray | None = None) -> np.ndarray:
    """``(N, L)``: for levels ``1..L`` (columns), the mean over positions of
    ``log(count / M)``, ``count`` the strings of the ``reference`` set (``M`` strings;
    default ``x`` itself) that hold the string's block at that position
    (:func:`rhmfast.counting.positional_block_counts`).

    A ``reference`` set is for strings that are not in it (held-out strings): each is
    scored as if added to it, ``log((count + 1) / (M + 1))``. Never pass a set as its
    own ``reference``: its strings would be counted twice.

    >>> x = np.array([[0, 0], [0, 1], [0, 1]])
    >>> (np.exp(block_log_frequency(x, 2)) * 3).round(3).tolist()  # level 1: geometric mean count
    [[1.732], [2.449], [2.449]]
    >>> (np.exp(block_log_frequency(np.array([[1, 1]]), 2, reference=x)) * 4).round(3).tolist()
    [[1.732]]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (strings, d), got shape {x.shape}")
    L = depth_of(x.shape[1], s)
    ref = x if reference is None else np.asarray(reference)
    extra = 0 if reference is None else 1
    total = len(ref) + extra
    out = np.zeros((x.shape[0], L))
    if not x.shape[0]:
        return out
    for level in range(1, L + 1):
        c = positional_block_counts(x, s, level, reference=reference) + extra
        out[:, level - 1] = np.log(c / total).mean(axis=1)
    return out


def prototypicality_score(train: np.ndarray, s: int) -> np.ndarray:
    """``(P,)`` the prototypicality score of each training string within its own training
    set: :func:`block_log_frequency` averaged over levels ``1..L``."""
    return block_log_frequency(train, s).mean(axis=1)
