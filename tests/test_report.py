"""prototypicality and memorization_report against pure-Python references."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rhmfast
from rhmfast import RHM, TrainingIndex, memorization_report, prototypicality
from rhmfast.stats import prototypicality_score


def blocks_of(row, s, L, level):
    w = s ** (L - level)
    return [tuple(row[j * w : (j + 1) * w]) for j in range(len(row) // w)]


@settings(deadline=None, max_examples=20)
@given(st.integers(0, 10**6), st.integers(2, 60), st.sampled_from([0.0, 1.0]))
def test_prototypicality_matches_python(seed, P, a):
    g = RHM(3, 3, 2, 2, 2, seed=seed, rule_probs=None if a == 0 else rhmfast.zipf(2, a))
    train = g.sample(P, seed=seed + 1)
    proto = prototypicality(train, g)
    assert proto.dtype.names == (
        "log_prob",
        "block_log_freq_0",
        "block_log_freq_1",
        "block_log_freq_2",
        "block_log_freq_mean",
    )
    rows = train.tolist()
    for i, row in enumerate(rows):
        assert proto["log_prob"][i] == pytest.approx(g.log_prob(train[i : i + 1])[0])
        for level in range(3):
            mine = blocks_of(row, 2, 2, level)
            ref = np.mean(
                [
                    math.log(sum(blocks_of(r, 2, 2, level)[j] == b for r in rows) / P)
                    for j, b in enumerate(mine)
                ]
            )
            assert proto[f"block_log_freq_{level}"][i] == pytest.approx(ref)
        assert proto["block_log_freq_mean"][i] == pytest.approx(
            (proto["block_log_freq_1"][i] + proto["block_log_freq_2"][i]) / 2
        )
    # the experiments' and the audit's score is the same one
    np.testing.assert_array_equal(proto["block_log_freq_mean"], prototypicality_score(train, 2))


@settings(deadline=None, max_examples=15)
@given(st.integers(0, 10**6), st.integers(1, 40), st.integers(1, 40))
def test_memorization_report_matches_python(seed, P, B):
    s, L, v = 2, 2, 3
    g = RHM(v, 3, 2, s, L, seed=seed)
    rng = np.random.default_rng(seed)
    train = g.sample(P, seed=seed + 1)
    # generated: some copies, some grammar samples, some random (invalid) strings
    gen = np.concatenate(
        [train[rng.integers(0, P, size=B // 3)], g.sample(B // 3, seed=seed + 2), rng.integers(0, v, size=(B - 2 * (B // 3), 4))]
    )
    index = TrainingIndex(train)
    rep = memorization_report(gen, index, g, top=3)
    summary = json.loads(json.dumps(rep["summary"]))
    trows, grows = train.tolist(), gen.tolist()

    first = {}
    for i, r in enumerate(map(tuple, trows)):
        first.setdefault(r, i)
    which = [first.get(tuple(r), -1) for r in grows]
    assert rep["copy_of"].tolist() == which
    assert summary["copy_fraction"] == pytest.approx(np.mean([w >= 0 for w in which]))
    assert summary["distinct_copies"] == len({w for w in which if w >= 0})
    distinct_train = [np.array(r) for r in first]
    p = [math.exp(g.log_prob(r[None])[0]) for r in distinct_train]
    # the chance count: the valid samples that copy nothing, over 1 - S, are the grammar draws
    other = sum(bool(v) and w < 0 for v, w in zip(g.parse(gen).valid, which, strict=True))
    draws = other / (1 - sum(p))
    assert summary["copy_fraction_chance"] == pytest.approx(draws * sum(p) / B)
    assert summary["distinct_copies_chance"] == pytest.approx(sum(1 - (1 - q) ** draws for q in p))

    parse = g.parse(gen)
    assert (rep["valid"] == parse.valid).all()
    assert summary["valid_levels"] == pytest.approx(parse.valid_levels.mean(axis=0).tolist())
    lm = rep["longest_match"].tolist()
    assert summary["longest_match_histogram"] == [lm.count(k) for k in range(5)]

    for level in range(L + 1):
        w = s ** (L - level)
        train_blocks = Counter((j, b) for r in trows for j, b in enumerate(blocks_of(r, s, L, level)))
        gen_blocks = Counter((j, b) for r in grows for j, b in enumerate(blocks_of(r, s, L, level)))
        presence = [np.mean([(j, b) in train_blocks for j, b in enumerate(blocks_of(r, s, L, level))]) for r in grows]
        assert rep["block_presence"][:, level] == pytest.approx(presence)
        over = rep["overproduction"][level]
        got = {
            (int(pos), tuple(bl)): (gf, tf, gp)
            for pos, bl, gf, tf, gp in zip(
                over["positions"], over["blocks"].tolist(), over["generated_freq"], over["train_freq"], over["grammar_prob"]
            )
        }
        assert set(got) == set(gen_blocks)
        for key, (gf, tf, _) in got.items():
            assert gf == pytest.approx(gen_blocks[key] / B)
            assert tf == pytest.approx(train_blocks[key] / P)
        # total variation by full enumeration of every possible block at every position
        npos = 4 // w
        every = np.array(list(itertools.product(range(v), repeat=w)))
        tv_g, tv_t = [], []
        for j in range(npos):
            probs = g.block_probs(every, level, np.full(len(every), j))
            assert probs.sum() == pytest.approx(1.0)
            tv_g.append(0.5 * sum(abs(gen_blocks[(j, tuple(b))] / B - q) for b, q in zip(every.tolist(), probs)))
            tv_t.append(0.5 * sum(abs(gen_blocks[(j, tuple(b))] / B - train_blocks[(j, tuple(b))] / P) for b in every.tolist()))
            for key, (_, _, gp) in got.items():
                if key[0] == j:
                    assert gp == pytest.approx(probs[[tuple(b) for b in every.tolist()].index(key[1])])
        assert summary["tv_generated_vs_grammar"][level] == pytest.approx(np.mean(tv_g))
        assert summary["tv_generated_vs_train"][level] == pytest.approx(np.mean(tv_t))
        top = summary["top_overproduced"][str(level)]
        excess = sorted((gf - gp for gf, _, gp in got.values()), reverse=True)[:3]
        assert [t["generated_freq"] - t["grammar_prob"] for t in top] == pytest.approx(excess)


def test_report_accepts_raw_training_data_and_checks_shapes():
    g = RHM(3, 3, 2, 2, 2, seed=0)
    train = g.sample(30, seed=1)
    rep = memorization_report(train[:5], train, g)
    assert rep["summary"]["copy_fraction"] == 1.0
    with pytest.raises(ValueError, match="generated"):
        memorization_report(np.zeros((3, 8), dtype=np.int64), train, g)
    with pytest.raises(ValueError, match="generated"):
        memorization_report(np.zeros((0, 4), dtype=np.int64), train, g)
    with pytest.raises(ValueError, match="s\\*\\*L"):
        prototypicality(np.zeros((3, 8), dtype=np.int64), g)
