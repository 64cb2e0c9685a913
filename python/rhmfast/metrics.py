"""Memorization metrics: prototypicality of training samples and the memorization report
of generated samples.

Both take a grammar (an :class:`rhmfast.RHM`, or any object with ``s``, ``L``, ``d``,
``log_prob``, ``check``/``parse`` and ``block_probs``) for the exact probabilities the
empirical frequencies are judged against.

>>> import numpy as np
>>> import rhmfast
>>> g = rhmfast.RHM(v=6, n=6, m=4, s=2, L=3, seed=0)
>>> train = g.sample(200, seed=1, unique=True)
>>> proto = rhmfast.prototypicality(train, g)
>>> proto.dtype.names
('log_prob', 'block_log_freq_0', 'block_log_freq_1', 'block_log_freq_2', 'block_log_freq_3', 'block_log_freq_mean')
>>> index = rhmfast.TrainingIndex(train)
>>> generated = np.concatenate([train[:10], g.sample(90, seed=2)])
>>> report = rhmfast.memorization_report(generated, index, g)
>>> report["summary"]["copy_fraction"] >= 0.1
True
>>> import json; _ = json.dumps(report["summary"])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rhmfast._args import integer
from rhmfast._tokens import check_tokens, query_tokens, training_tokens
from rhmfast.counting import joint_block_counts, positional_block_counts
from rhmfast.index import TrainingIndex
from rhmfast.stats.chance import grammar_draws
from rhmfast.stats.prototypicality import block_log_frequency


def _check_grammar(grammar: Any, needs: tuple[str, ...], parses: bool) -> None:
    missing = [a for a in ("s", "L", *needs) if not hasattr(grammar, a)]
    if parses and not (hasattr(grammar, "check") or hasattr(grammar, "parse")):
        missing.append("check")
    if missing:
        wanted = ", ".join(("s", "L", *needs)) + (" and check or parse" if parses else "")
        raise TypeError(
            f"grammar: expected an rhmfast.RHM (or an object with {wanted}), got "
            f"{type(grammar).__name__} (missing: {', '.join(missing)})"
        )


def _check_alphabet(x: Any, grammar: Any, name: str) -> None:
    """Tokens in the grammar's ``[0, v)`` (:func:`rhmfast._tokens.check_tokens`), checked
    here so the message names ``name`` (the grammar's own check names its parameter
    ``x``); a grammar-like object without ``v`` has no alphabet to check against."""
    v = getattr(grammar, "v", None)
    if v is not None:
        check_tokens(x, name, v=int(v))


def _levels(grammar: Any, d: int, name: str) -> tuple[int, int]:
    s, L = int(grammar.s), int(grammar.L)
    if s**L != d:
        raise ValueError(f"{name}: strings have {d} tokens but the grammar's d = s**L = {s**L}")
    return s, L


def prototypicality(train: Any, grammar: Any) -> np.ndarray:
    """Per training sample: its exact log probability under ``grammar`` and the mean log
    frequency, in the training set, of its aligned blocks at each level.

    Returns a structured array (one record per sample) with named float64 columns
    ``log_prob``, ``block_log_freq_0`` .. ``block_log_freq_L`` and
    ``block_log_freq_mean``. ``block_log_freq_l`` averages, over the ``s**l`` positions,
    ``log(count / P)`` where ``count`` is the number of training strings holding the same
    block at the same position (``P`` strings); level 0 is the whole string's
    multiplicity, level ``L`` single tokens. ``block_log_freq_mean`` averages levels
    ``1..L``: it is :func:`rhmfast.stats.prototypicality_score`, the one score the
    experiments and the audit read. Higher = built from more common substrings (more
    prototypical).
    """
    _check_grammar(grammar, ("log_prob",), parses=False)
    x = training_tokens(train, "train").astype(np.int64)
    P, d = x.shape
    s, L = _levels(grammar, d, "train")
    _check_alphabet(x, grammar, "train")
    names = ["log_prob"] + [f"block_log_freq_{lv}" for lv in range(L + 1)] + ["block_log_freq_mean"]
    out = np.zeros(P, dtype=[(n, np.float64) for n in names])
    out["log_prob"] = np.asarray(grammar.log_prob(x), dtype=np.float64)
    out["block_log_freq_0"] = np.log(positional_block_counts(x, s, 0) / P).mean(axis=1)
    per_level = block_log_frequency(x, s)  # (P, L): levels 1..L
    for level in range(1, L + 1):
        out[f"block_log_freq_{level}"] = per_level[:, level - 1]
    out["block_log_freq_mean"] = per_level.mean(axis=1)
    return out


def memorization_report(generated: Any, index: Any, grammar: Any, *, top: int = 5) -> dict[str, Any]:
    """Memorization and over-production of ``generated`` samples against the training
    set (a :class:`TrainingIndex` or raw training strings) and the exact grammar.

    Returns a dict of numpy arrays and, under ``"summary"``, a JSON-serializable dict:

    - ``copy_of (B,)`` int64: training string each sample copies exactly, -1 for none;
      summary ``copy_fraction``, ``distinct_copies`` (training strings reproduced),
      ``train_fraction_reproduced``, and the chance count of :mod:`rhmfast.stats.chance`
      (a model that learned the grammar and memorized nothing, with these samples' valid
      samples that copy nothing as its ``D = other / (1 - S)`` grammar draws,
      ``S = sum p(x)``): ``copy_fraction_chance`` (``D S / B``) and
      ``distinct_copies_chance`` (``sum 1 - (1 - p(x))**D``).
    - ``longest_match (B,)``, ``longest_match_string``, ``longest_match_offset``: longest
      substring shared with a training string; summary histogram over lengths ``0..d``.
    - ``valid (B,)``, ``valid_levels (B, L)``; summary ``valid_fraction``,
      ``valid_levels`` (per-level rates).
    - ``block_presence (B, L+1)``: per sample and level, the fraction of its blocks present
      at the same position in the training set; summary ``block_novelty`` per level
      (1 - mean presence).
    - ``overproduction``: per level, every distinct generated (position, block) with
      ``generated_freq``, ``train_freq`` and exact ``grammar_prob`` at that position;
      summary ``tv_generated_vs_grammar`` and ``tv_generated_vs_train`` per level (mean over
      positions of the total-variation distance between the block distributions), and the
      ``top`` most over-produced blocks per level (largest ``generated_freq -
      grammar_prob``).
    """
    top = integer("top", top)  # blocks listed per level
    _check_grammar(grammar, ("log_prob", "block_probs"), parses=True)
    if not isinstance(index, TrainingIndex):
        index = TrainingIndex(training_tokens(index, "index"))
    g = query_tokens(generated, "generated")
    B, d = g.shape
    if d != index.length:
        raise ValueError(f"generated: strings have {d} tokens, the training strings {index.length}")
    if B == 0:
        raise ValueError("generated: empty set")
    s, L = _levels(grammar, d, "generated")
    _check_alphabet(generated, grammar, "generated")  # not g: uint64 is viewed as int64
    train = index.strings().astype(np.int64)
    _check_alphabet(train, grammar, "index")
    P = train.shape[0]
    g64 = g.astype(np.int64)

    which, _ = index.lookup(g)
    copies = which >= 0
    distinct = np.unique(which[copies])
    length, string, offset = index.longest_match(g)
    check = grammar.check(g64) if hasattr(grammar, "check") else grammar.parse(g64)
    valid = np.asarray(check.valid, dtype=bool)
    valid_levels = np.asarray(check.valid_levels, dtype=bool)

    # chance baseline: exact probabilities of the distinct training strings
    uniq_train = np.unique(train, axis=0)
    p_train = np.exp(np.asarray(grammar.log_prob(uniq_train), dtype=np.float64))
    other = float(np.count_nonzero(valid & ~copies))  # valid samples that copy nothing
    mass = float(p_train.sum())
    draws = float(grammar_draws(other, mass))
    copy_chance = draws * mass / B
    distinct_chance = float((-np.expm1(draws * np.log1p(-np.minimum(p_train, 1.0)))).sum())

    presence = np.zeros((B, L + 1))
    overproduction: dict[int, dict[str, np.ndarray]] = {}
    tv_grammar, tv_train, novelty, top_blocks = [], [], [], {}
    for level in range(L + 1):
        uniq, gen_counts, train_counts, ids = joint_block_counts(g64, train, s, level, positional=True)
        npos = ids.shape[1]
        present = train_counts[ids] > 0
        presence[:, level] = present.mean(axis=1)
        novelty.append(float(1.0 - present.mean()))

        sel = np.flatnonzero(gen_counts)
        positions, blocks = uniq[sel, 0], uniq[sel, 1:]
        gen_freq = gen_counts[sel] / B
        train_freq = train_counts[sel] / P
        prob = np.asarray(grammar.block_probs(blocks, level, positions), dtype=np.float64)
        overproduction[level] = {
            "positions": positions,
            "blocks": blocks,
            "generated_freq": gen_freq,
            "train_freq": train_freq,
            "grammar_prob": prob,
        }
        # TV per position: generated blocks' |f - p| plus the mass the reference puts
        # on blocks never generated (1 - its mass on generated ones)
        tv_g = np.bincount(positions, np.abs(gen_freq - prob), minlength=npos) + (
            1.0 - np.bincount(positions, prob, minlength=npos)
        )
        tv_t = np.bincount(positions, np.abs(gen_freq - train_freq), minlength=npos) + (
            1.0 - np.bincount(positions, train_freq, minlength=npos)
        )
        tv_grammar.append(float(np.mean(tv_g) / 2))
        tv_train.append(float(np.mean(tv_t) / 2))
        order = np.argsort(-(gen_freq - prob), kind="stable")[:top]
        top_blocks[str(level)] = [
            {
                "position": int(positions[i]),
                "block": blocks[i].tolist(),
                "generated_freq": float(gen_freq[i]),
                "train_freq": float(train_freq[i]),
                "grammar_prob": float(prob[i]),
            }
            for i in order
        ]

    summary = {
        "num_generated": int(B),
        "num_train": int(P),
        "copy_fraction": float(copies.mean()),
        "distinct_copies": int(distinct.size),
        "train_fraction_reproduced": float(distinct.size / P),
        "copy_fraction_chance": copy_chance,
        "distinct_copies_chance": distinct_chance,
        "longest_match_mean": float(length.mean()),
        "longest_match_histogram": np.bincount(length, minlength=d + 1).tolist(),
        "valid_fraction": float(valid.mean()),
        "valid_levels": valid_levels.mean(axis=0).tolist(),
        "block_novelty": novelty,
        "tv_generated_vs_grammar": tv_grammar,
        "tv_generated_vs_train": tv_train,
        "top_overproduced": top_blocks,
    }
    return {
        "copy_of": which,
        "longest_match": length,
        "longest_match_string": string,
        "longest_match_offset": offset,
        "valid": valid,
        "valid_levels": valid_levels,
        "block_presence": presence,
        "overproduction": overproduction,
        "summary": summary,
    }


__all__ = ["prototypicality", "memorization_report"]
