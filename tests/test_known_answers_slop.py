"""The known-answer suite for ``slop``: its verdict (the common-block ratio in the
partial memorization window, against null runs fitted to each run) on simulated
memorizers whose truth is known. Memorizing every string at the same rate, with no
over-production, must give "no effect detected" on about 95% of simulation seeds; a
memorizer whose grammar component has sharpened rules (``Memorizer.sharpen``: common
rules, and the blocks made of them, over-produced by a known amount) must give "yes" on
at least 80% and never "the opposite". Micro sizes: strings of 8 tokens, 32 training
strings, 4 checkpoints, one seed per set.

Each simulation seed gets its own null sampling seeds: ``null_run_sets`` draws null run
``k`` of every experiment with the same sampling seed, and the common blocks of fresh
data sets are nearly the same blocks, so with shared seeds every simulated set would be
read against nearly the same null values (correlated false-positive rates)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.knownanswers

from rhmfast.analysis import load_run  # noqa: E402
from rhmfast.diffusion import TrainConfig  # noqa: E402
from rhmfast.experiments import slop  # noqa: E402
from rhmfast.knownanswers.memorizer import Memorizer  # noqa: E402
from rhmfast.knownanswers.nulls import null_runs  # noqa: E402
from rhmfast.knownanswers.simulate import simulate_run  # noqa: E402

# 6 * 4**7 strings, Zipf a = 0.5: the grammar's mass on 32 training strings is ~1e-3
TRAIN = dict(v=6, n=6, m=4, s=2, L=3, grammar_seed=0, zipf_a=0.5, zipf_levels=[], num_train=32, num_heldout=32,
             unique=True, steps=64, first_checkpoint=8, checkpoints_per_octave=1, eval_samples=512, elbo_draws=0,
             device="cpu", sampling_reveal="one")
SETTINGS = {"seeds": [0], "train": TRAIN, "copy_max": 0.05, "valid_min": 0.25, "common_fraction": 0.1,
            "num_boot": 20, "alpha": 0.05, "null_runs": 19, "top_blocks": 8}
LAM = [(0, 0.0), (32, 0.0), (64, 0.5)]  # no copies in the window (steps 8-32), then memorization
VALIDITY = {2: [(0, 0.6), (64, 1.0)]}  # the lowest level learned over the run: invalid samples in the window
NUM_NULL, NUM_EFFECT = 40, 10
BETA = 1.5  # rule probabilities ~ p**1.5: level-1 common blocks x~1.9, levels pooled x~1.4


def _decisions(memorizer: Memorizer, seeds: range, root) -> np.ndarray:
    """``(S, K)`` decisions of slop's statistics on one simulated run per seed (fresh data
    and sampling), each against 19 null runs fitted to it with their own seeds."""
    out = []
    for k in seeds:
        off = 1000 * (k + 1)
        cfg = TrainConfig(**{**TRAIN, "seed": off, "data_seed": off}, run_dir=str(root / f"s{k}" / "run"),
                          progress=False)
        run = load_run(simulate_run(cfg, memorizer))
        paths = null_runs(run, root / f"s{k}" / "nulls", num=SETTINGS["null_runs"], seed=2_000_000 + 100 * k)
        nulls = [[load_run(p)] for p in paths]
        out.append([t.decision for t in slop.null_tests([run], nulls, SETTINGS)])
    return np.asarray(out, np.int64)


@pytest.fixture(scope="module")
def slop_decisions(tmp_path_factory):
    root = tmp_path_factory.mktemp("slop_known")
    null = _decisions(Memorizer(lam=LAM, validity=VALIDITY), range(NUM_NULL), root / "null")
    effect = _decisions(Memorizer(lam=LAM, validity=VALIDITY, sharpen=BETA), range(NUM_NULL, NUM_NULL + NUM_EFFECT),
                        root / "effect")
    return null, effect


def test_slop_verdict_is_calibrated(slop_decisions):
    d0, _ = slop_decisions
    # false rejections of each statistic within what a 5% test allows: the binomial
    # 99.9% bound of 40 draws at 5% (7). Measured over 160 seeds: 6.2% for the verdict's
    # statistic, at most 6.9% for the others
    limit = stats.binom.ppf(0.999, NUM_NULL, 0.05)
    assert ((d0 != 0).sum(0) <= limit).all(), (d0 != 0).sum(0)


def test_slop_verdict_has_power(slop_decisions):
    _, d1 = slop_decisions
    # the verdict's statistic (common over rare): "over-produced" on >= 80%, never the opposite
    assert (d1[:, 0] == 1).mean() >= 0.8 and not (d1[:, 0] == -1).any(), d1[:, 0]


FAMILY_NULL = 20


@pytest.fixture(scope="module")
def look_alike_decisions(tmp_path_factory):
    """The look-alikes: a partial copier (pieces of training strings, no preference for
    common blocks, from before whole copies appear) and per-string onsets of memorization."""
    root = tmp_path_factory.mktemp("slop_families")
    partial = Memorizer(lam=LAM, validity=VALIDITY, partial=[(0, 0.0), (8, 0.2), (64, 0.3)])
    onsets = Memorizer(lam=LAM, validity=VALIDITY, onsets=(32, 64))
    return {"partial": _decisions(partial, range(500, 500 + FAMILY_NULL), root / "partial"),
            "onsets": _decisions(onsets, range(600, 600 + FAMILY_NULL), root / "onsets")}


@pytest.mark.parametrize("family", ["partial", "onsets"])
def test_slop_verdict_never_calls_a_look_alike_slop(look_alike_decisions, family):
    """The verdict's "yes" (common substrings favoured) on look-alikes is at most what a 5%
    test allows; the partial copier over-produces rare training blocks more than common
    ones, so its answer, when there is one, is "no"."""
    d = look_alike_decisions[family][:, 0]
    assert (d == 1).sum() <= stats.binom.ppf(0.999, FAMILY_NULL, 0.05), d


def test_window_rule():
    class _R:  # the two curves the rule reads
        steps = np.array([8, 16, 32, 64])

    import rhmfast.experiments.slop as sl

    def fake(valid, excess):
        orig = sl.memorization_curves
        sl.memorization_curves = lambda run: {"valid_fraction": np.asarray(valid, float),
                                              "excess_copy_fraction": np.asarray(excess, float)}
        try:
            return sl.window(_R(), valid_min=0.5, copy_max=0.05)
        finally:
            sl.memorization_curves = orig

    assert fake([0.1, 0.6, 0.9, 1.0], [0, 0, 0.01, 0.3]) == (1, 2)
    assert fake([0.1, 0.6, 0.9, 1.0], [0, 0.2, 0.3, 0.3]) == (1, 1)  # the first valid checkpoint is always in
    assert fake([0.6, 0.6, 0.9, 1.0], [0, 0, 0, 0]) == (0, 3)
    assert fake([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]) is None


def test_slop_report_on_a_known_over_producer(tmp_path, capsys):
    """End to end (``experiments.simulate``): a sharpened memorizer gets "yes"; the
    verdict and results quote the statistic computed from the run directories."""
    from rhmfast.analysis.blocks import common_block_counts, common_blocks
    from rhmfast.experiments import simulate
    from rhmfast.experiments.common import grammar_block_probs

    exp = simulate("slop", Memorizer(lam=LAM, sharpen=2.0), preset="micro", out=tmp_path / "e", progress=False,
                   config={k: v for k, v in SETTINGS.items() if k != "train"} | {"seeds": [0, 1], "train": TRAIN})
    res = json.loads((exp / "results.json").read_text())
    # one line per question: learned first, then over-produced (the verdict's)
    first, verdict = res["verdicts"]
    assert first == res["verdict_learned_first"] and first.startswith(slop.QUESTION_FIRST + ": ")
    assert verdict.startswith(slop.QUESTION + ": yes: common over rare blocks, levels pooled = ")
    assert "the null median" in verdict
    assert "false-positive rate" not in verdict  # never calibrated at these settings: nothing quoted
    # the statistic recomputed by hand from the windows' samples
    values, tilts = [], []
    for sd in (0, 1):
        r = load_run(exp / "runs" / f"seed{sd}")
        a, b = slop.window(r, valid_min=SETTINGS["valid_min"], copy_max=SETTINGS["copy_max"])
        recs = [r.eval(int(t)) for t in r.steps[a:b + 1]]
        x = np.concatenate([rec.samples[rec.copy_of < 0] for rec in recs])  # copies left out
        probs = grammar_block_probs(r)
        # each checkpoint's own samples (the per-checkpoint figure slices by them)
        sizes = slop._Counts(r, 2, SETTINGS, probs).sizes
        assert sizes.tolist() == [int((rec.copy_of < 0).sum()) for rec in recs] and sizes.sum() == len(x)
        lv, rare_lv = [], []
        for level in (1, 2, 3):
            common, mass = common_blocks(r.train, 2, level, probs, common_fraction=SETTINGS["common_fraction"])
            c, k = common_block_counts(x, 2, level, common, probs)
            lv.append(c.sum() / k.sum() / mass)
            rare, rare_mass = common_blocks(r.train, 2, level, probs, common_fraction=SETTINGS["common_fraction"],
                                            rarest=True)
            rare_lv.append(common_block_counts(x, 2, level, rare, probs)[0].sum() / k.sum() / rare_mass)
        values.append(np.mean(lv))
        tilts.append(np.mean(lv) / np.mean(rare_lv))
    assert res["tests"][slop.COMMON]["value"] == pytest.approx(np.mean(values)) and np.mean(values) > 1.2
    # sharpened rules favour common blocks over the rare training blocks: the verdict's statistic
    assert res["primary"]["name"] == slop.TILT
    assert res["primary"]["value"] == pytest.approx(np.mean(tilts)) and np.mean(tilts) > 1.2
    assert res["primary"]["p"] <= 0.05 and len(res["primary"]["null"]) == 19
    assert f"= {np.mean(tilts):+.2f} [" in verdict
    md = (exp / "report.md").read_text()
    assert verdict in md and verdict in capsys.readouterr().out
    assert (exp / "report.html").read_text().count("<svg") >= 4
