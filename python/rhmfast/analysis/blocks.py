"""Aligned blocks: empirical prototypicality and over-production ("slop"), numpy only.

A level-``l`` node of an RHM string of length ``d = s**L`` spans the ``s**(L-l)``
tokens at aligned position ``j``; level ``L`` blocks are single tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rhmfast.analysis.rundir import Run
from rhmfast.counting import blocks_at, joint_block_counts, row_ids, row_keys

__all__ = [
    "BlockTable",
    "overproduction",
    "overproduction_curve",
    "partial_memorization_window",
    "common_blocks",
    "common_block_counts",
]

# (blocks (K, k) int array, level) -> (K,) probability of each block at a uniformly
# chosen level-`level` position under the grammar (positions pooled).
GrammarProbs = Callable[[np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class BlockTable:
    """Blocks of one level, positions pooled, sorted by generated frequency (descending).

    ``generated``, ``train``: frequencies among all blocks of that level in the generated
    and training sets; ``grammar``: exact probability (NaN without a grammar); ``ratio``:
    generated over reference frequency (grammar when known, else training)."""

    level: int
    blocks: np.ndarray
    generated: np.ndarray
    train: np.ndarray
    grammar: np.ndarray
    ratio: np.ndarray
    common_ratio: float  # generated mass on common blocks / reference mass on them
    common_ratio_known: float  # the same among generated blocks the reference knows (the tilt of valid output)
    excess_mass: float  # sum of max(0, generated - reference): total over-production
    novel_fraction: float  # generated blocks never seen in training at this level

    def top(self, k: int) -> list[dict[str, Any]]:
        """The ``k`` most generated blocks as JSON-friendly rows."""
        return [
            {
                "block": self.blocks[i].tolist(),
                "generated": float(self.generated[i]),
                "train": float(self.train[i]),
                "grammar": float(self.grammar[i]),
                "ratio": float(self.ratio[i]),
            }
            for i in range(min(k, len(self.blocks)))
        ]


def _top_fraction(cand: np.ndarray, ref: np.ndarray, fraction: float) -> np.ndarray:
    """The top ``fraction`` (at least one) of the candidate indices ``cand`` by ``ref``
    (ties: the earlier candidate first): the common blocks."""
    n_common = max(1, int(round(fraction * cand.size)))
    return cand[np.argsort(-ref[cand], kind="stable")[:n_common]]


def overproduction(
    generated: np.ndarray,
    train: np.ndarray,
    s: int,
    level: int,
    *,
    grammar_probs: GrammarProbs | None = None,
    common_fraction: float = 0.1,
) -> BlockTable:
    """Over-production of the aligned blocks of ``level`` among ``generated`` strings
    against the training set and (when ``grammar_probs`` is given) the exact grammar.

    "Common" blocks are the top ``common_fraction`` of the distinct training blocks by
    reference probability; ``common_ratio > 1`` means the generator over-produces them.
    ``common_ratio_known`` renormalizes the generated blocks to those the reference knows
    (grammatical blocks, or blocks seen in training without a grammar): a partly trained
    model's invalid blocks dilute ``common_ratio``, and the tilt of its valid output
    toward common blocks (slop) is what this one measures (descriptive: its null, and a
    test, are ``rhmfast.experiments.slop``'s, against null runs).

    >>> train = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> gen = np.array([[0, 1]] * 4)
    >>> t = overproduction(gen, train, 2, 0, common_fraction=0.34)
    >>> t.blocks[0].tolist(), float(t.generated[0]), float(t.train[0]), round(t.common_ratio, 2)
    ([0, 1], 1.0, 0.5, 2.0)
    """
    if not 0 < common_fraction <= 1:
        raise ValueError(f"common_fraction must lie in (0, 1], got {common_fraction}")
    generated = np.asarray(generated)
    train = np.asarray(train)
    if generated.ndim != 2 or train.ndim != 2 or generated.shape[1] != train.shape[1]:
        raise ValueError(f"generated and train must be 2-D with equal d, got {generated.shape}, {train.shape}")
    if not len(generated) or not len(train):
        raise ValueError("generated and train must be non-empty")
    uniq, gen_c, train_c, _ = joint_block_counts(generated, train, s, level)
    nb = len(uniq)
    gen_f = gen_c / gen_c.sum()
    train_f = train_c / train_c.sum()
    if grammar_probs is not None:
        gram = np.asarray(grammar_probs(uniq, level), np.float64)
        if gram.shape != (nb,):
            raise ValueError(f"grammar_probs returned shape {gram.shape}, expected ({nb},)")
        ref = gram
    else:
        gram = np.full(nb, np.nan)
        ref = train_f
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ref > 0, gen_f / ref, np.inf)
    in_train = train_f > 0
    common = _top_fraction(np.flatnonzero(in_train), ref, common_fraction)
    ref_mass = ref[common].sum()
    common_ratio = float(gen_f[common].sum() / ref_mass) if ref_mass > 0 else float("nan")
    known_mass = gen_f[ref > 0].sum()
    common_ratio_known = (
        float(gen_f[common].sum() / known_mass / ref_mass) if ref_mass > 0 and known_mass > 0 else float("nan")
    )
    excess = float(np.maximum(gen_f - ref, 0).sum())
    novel = float(gen_f[~in_train].sum())
    order = np.lexsort((np.arange(nb), -gen_f))
    return BlockTable(
        level=level,
        blocks=uniq[order],
        generated=gen_f[order],
        train=train_f[order],
        grammar=gram[order],
        ratio=ratio[order],
        common_ratio=common_ratio,
        common_ratio_known=common_ratio_known,
        excess_mass=excess,
        novel_fraction=novel,
    )


def overproduction_curve(
    run: Run,
    s: int,
    level: int,
    *,
    grammar_probs: GrammarProbs | None = None,
    common_fraction: float = 0.1,
) -> dict[str, np.ndarray]:
    """Per checkpoint of ``run``: ``common_ratio``, ``common_ratio_known``,
    ``excess_mass``, ``novel_fraction`` of :func:`overproduction` at ``level`` (arrays of
    length T), and ``step``."""
    rows = [
        overproduction(rec.samples, run.train, s, level, grammar_probs=grammar_probs, common_fraction=common_fraction)
        for rec in run.evals()
    ]
    return {
        "step": run.steps.astype(np.float64),
        "common_ratio": np.array([r.common_ratio for r in rows]),
        "common_ratio_known": np.array([r.common_ratio_known for r in rows]),
        "excess_mass": np.array([r.excess_mass for r in rows]),
        "novel_fraction": np.array([r.novel_fraction for r in rows]),
    }


def partial_memorization_window(
    steps: np.ndarray,
    common_ratio: np.ndarray,
    excess_copy_fraction: np.ndarray,
    *,
    ratio_min: float = 1.1,
    copy_max: float = 0.05,
) -> tuple[float, float] | None:
    """The longest run of consecutive checkpoints where common blocks are over-produced
    (``common_ratio >= ratio_min``) while few whole samples are copies beyond chance
    (``excess_copy_fraction < copy_max``): ``(first step, last step)``, or None.

    >>> partial_memorization_window(np.array([1, 2, 4, 8]), np.array([1.0, 1.5, 1.4, 1.6]),
    ...                             np.array([0.0, 0.0, 0.01, 0.5]))
    (2.0, 4.0)
    """
    steps = np.asarray(steps, np.float64)
    arrays = {"common_ratio": common_ratio, "excess_copy_fraction": excess_copy_fraction}
    for name, a in arrays.items():
        if np.shape(a) != steps.shape or steps.ndim != 1:
            raise ValueError(f"{name} must have the shape of steps (1-D, {steps.shape}), got {np.shape(a)}")
    ok = (np.asarray(common_ratio) >= ratio_min) & (np.asarray(excess_copy_fraction) < copy_max)
    best: tuple[int, int] | None = None
    i = 0
    while i < ok.size:
        if ok[i]:
            j = i
            while j + 1 < ok.size and ok[j + 1]:
                j += 1
            if best is None or j - i > best[1] - best[0]:
                best = (i, j)
            i = j + 1
        else:
            i += 1
    if best is None:
        return None
    return float(steps[best[0]]), float(steps[best[1]])


def common_blocks(train: np.ndarray, s: int, level: int, grammar_probs: GrammarProbs, *,
                  common_fraction: float = 0.1, rarest: bool = False) -> tuple[np.ndarray, float]:
    """The common blocks of ``level``: the top ``common_fraction`` of the distinct
    training blocks by exact grammar probability (positions pooled; the selection of
    :func:`overproduction`), and the grammar's mass on them (the frequency a sampler of
    the exact grammar gives them among all grammatical blocks of the level).
    ``rarest``: the bottom ``common_fraction`` instead, the rare training blocks a model
    that copies pieces of its training strings over-produces as much as common ones.

    >>> probs = lambda b, level: np.where(b[:, 0] == 0, 0.6, 0.2)
    >>> common, mass = common_blocks(np.array([[0, 1], [1, 1]]), 2, 1, probs, common_fraction=0.5)
    >>> common.tolist(), mass
    ([[0]], 0.6)
    >>> rare, mass = common_blocks(np.array([[0, 1], [1, 1]]), 2, 1, probs, common_fraction=0.5, rarest=True)
    >>> rare.tolist(), mass
    ([[1]], 0.2)
    """
    if not 0 < common_fraction <= 1:
        raise ValueError(f"common_fraction must lie in (0, 1], got {common_fraction}")
    train = np.asarray(train)
    if train.ndim != 2 or not len(train):
        raise ValueError(f"train must be a non-empty 2-D array of strings, got shape {train.shape}")
    bt = blocks_at(train, s, level)
    uniq, _ = row_ids(bt.reshape(-1, bt.shape[2]))
    ref = np.asarray(grammar_probs(uniq, level), np.float64)
    if ref.shape != (len(uniq),):
        raise ValueError(f"grammar_probs returned shape {ref.shape}, expected ({len(uniq)},)")
    common = _top_fraction(np.arange(len(uniq)), -ref if rarest else ref, common_fraction)
    return uniq[common], float(ref[common].sum())


def common_block_counts(x: np.ndarray, s: int, level: int, common: np.ndarray,
                        grammar_probs: GrammarProbs) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` number of each string's level-``level`` blocks that are ``common``
    (:func:`common_blocks`), and ``(N,)`` number that are grammatical (probability > 0):
    per string, so that a bootstrap can resample strings (the blocks of one string are
    not independent).

    >>> probs = lambda b, level: np.where(b[:, 0] < 2, 0.5, 0.0)
    >>> c, k = common_block_counts(np.array([[0, 1], [0, 3]]), 2, 1, np.array([[0]]), probs)
    >>> c.tolist(), k.tolist()
    ([1, 1], [2, 1])
    """
    x = np.asarray(x)
    common = np.asarray(common)
    bx = blocks_at(x, s, level)
    N, npos, k = bx.shape
    if common.ndim != 2 or common.shape[1] != k:
        raise ValueError(f"common must have shape (K, {k}) (blocks of level {level}), got {common.shape}")
    if not N:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    uniq, (ids,) = row_ids(bx.reshape(-1, k))
    known = np.asarray(grammar_probs(uniq, level), np.float64) > 0
    is_common = np.isin(row_keys(uniq), row_keys(common)) if len(common) else np.zeros(len(uniq), bool)
    ids = ids.reshape(N, npos)
    return is_common[ids].sum(1).astype(np.int64), known[ids].sum(1).astype(np.int64)
