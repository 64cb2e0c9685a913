"""Known answers for the sweep experiments (``fat-tail``, ``scaling``): their verdict's
statistic, rho(swept parameter, memorized-mass clock) within seeds against the labels
permuted within seeds, on simulated run sets whose truth is known (``rhmfast
simulate``). The null: every run of the sweep memorizes on the same ``lam`` schedule,
so the swept parameter moves nothing; it must give "no effect detected" on about 95% of
simulation seeds. The effect: the ``lam`` schedule's time axis stretched by a factor
that grows with the parameter (fat-tail: up to 2x for the heaviest tail; scaling:
proportional to P); it must give its direction on at least 80% and never the opposite.
Micro sizes (strings of 8 tokens, 16 training strings at most 24, 7 checkpoints, 512
samples each); the rates at the quick preset's size are measured by
``benches/calibrate.py`` (docs/RESULTS.md)."""

from __future__ import annotations

import pytest
from scipy import stats

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.knownanswers

from rhmfast.experiments import EXPERIMENTS  # noqa: E402
from rhmfast.knownanswers.calibration import decisions  # noqa: E402
from rhmfast.knownanswers.memorizer import Memorizer  # noqa: E402

TRAIN = dict(v=6, n=6, m=4, s=2, L=3, grammar_seed=0, zipf_a=0.5, zipf_levels=[], num_train=16, num_heldout=16,
             steps=64, first_checkpoint=8, checkpoints_per_octave=2, eval_samples=512, elbo_draws=0,
             device="cpu", sampling_reveal="one", unique=True)
COMMON = {"seeds": [0, 1], "copy_threshold": 0.1, "num_boot": 20, "alpha": 0.05, "train": TRAIN}
SETTINGS = {
    "fat-tail": {**COMMON, "exponents": [-1.0, 0.0, 1.0, 2.0], "tail_levels": [0, 2], "tail_exponent": 1.0},
    "scaling": {**COMMON, "sizes": [8, 12, 16, 24]},
}
NUM_NULL, NUM_EFFECT = 40, 20


def stretched(factor: float) -> Memorizer:
    """No copies until step 8, then memorized mass rising linearly to 0.4 at step 64,
    on a time axis stretched by ``factor`` (the mass reaches 0.1 at step ~22 * factor)."""
    return Memorizer(lam=[(0, 0.0), (8 * factor, 0.0), (64 * factor, 0.4)])


def fat_tail_effect(params):
    lo, hi = min(SETTINGS["fat-tail"]["exponents"]), max(SETTINGS["fat-tail"]["exponents"])
    return stretched(1 + (hi - params["a"]) / (hi - lo))  # the heaviest tail memorized 2x later


def scaling_effect(params):
    return stretched(params["P"] / min(SETTINGS["scaling"]["sizes"]))


# the direction each verdict calls "yes": fat tails later is rho(a, time) < 0; bigger sets
# later is rho(P, time) > 0
CASES = {"fat-tail": (fat_tail_effect, -1), "scaling": (scaling_effect, 1)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_sweep_verdict_is_calibrated_and_has_power(name, tmp_path):
    effect, right = CASES[name]
    d0 = decisions(EXPERIMENTS[name], stretched(1.0), SETTINGS[name], seeds=range(NUM_NULL), root=tmp_path / "null")
    d1 = decisions(EXPERIMENTS[name], effect, SETTINGS[name], seeds=range(NUM_NULL, NUM_NULL + NUM_EFFECT),
                   root=tmp_path / "effect")
    # false rejections on the null: at most the binomial 99.9% bound of 40 draws at 5% (7)
    limit = stats.binom.ppf(0.999, NUM_NULL, 0.05)
    assert ((d0 != 0).sum(0) <= limit).all(), (d0 != 0).sum(0)
    assert (d1[:, 0] == right).mean() >= 0.8 and not (d1[:, 0] == -right).any(), d1[:, 0]


FAMILY_NULL = 20


@pytest.mark.parametrize("name", sorted(CASES))
def test_sweep_verdict_holds_its_level_for_an_over_producing_generalizer(name, tmp_path):
    """Every run memorizes on the same schedule beside a generalizer that over-produces
    common rules (rules sharpened to p**1.5): its chance copies grow with the tail and
    with P, which the grammar's chance count would read as earlier memorization; the
    chance count at each run's fitted over-production holds the level (binomial 99.9%
    bound of 20 draws at 5%)."""
    over = Memorizer(lam=stretched(1.0).lam, sharpen=1.5)
    d0 = decisions(EXPERIMENTS[name], over, SETTINGS[name], seeds=range(700, 700 + FAMILY_NULL), root=tmp_path)
    assert (d0[:, 0] != 0).sum() <= stats.binom.ppf(0.999, FAMILY_NULL, 0.05), d0[:, 0]


def test_a_run_dependent_memorizer_must_be_a_memorizer_or_a_function(tmp_path):
    with pytest.raises(TypeError, match="memorizer must be a Memorizer or a function"):
        decisions(EXPERIMENTS["scaling"], 0.3, SETTINGS["scaling"], seeds=[0], root=tmp_path)
    with pytest.raises(TypeError, match="experiment must have plan"):
        decisions("scaling", Memorizer(), SETTINGS["scaling"], seeds=[0], root=tmp_path)
