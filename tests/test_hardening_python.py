"""Report arguments, stale checkpoint temporaries and checkpoint RNG states: the
hardening findings outside the command line."""

from __future__ import annotations

import numpy as np
import pytest

from rhmfast import RHM, TrainingIndex, memorization_report, prototypicality

G = RHM(6, 6, 4, 2, 3, seed=0)
X = G.sample(16, seed=0)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: memorization_report(X, TrainingIndex(X), G, top=-1), ValueError, "top = -1"),
        (lambda: memorization_report(X, TrainingIndex(X), G, top=1.5), TypeError, "top: expected an integer, got float"),
        (lambda: memorization_report(X, TrainingIndex(X), G, top=True), TypeError, "top: expected an integer, got a bool"),
        (lambda: memorization_report(X, TrainingIndex(X), None), TypeError, "grammar: expected an rhmfast.RHM"),
        (lambda: prototypicality(X, None), TypeError, "grammar: expected an rhmfast.RHM"),
        (lambda: prototypicality(X[:, :4], G), ValueError, "train: strings have 4 tokens"),
        (lambda: prototypicality(X + 10, G), ValueError, r"train: row \d+: token \d+ \(position \d+\) is outside"),
        (lambda: memorization_report(X + 10, TrainingIndex(X), G), ValueError, r"generated: row \d+: token \d+ \(position"),
    ],
)
def test_report_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_stale_checkpoint_temporaries_are_removed(tmp_path):
    pytest.importorskip("torch")
    from rhmfast.diffusion.checkpoint import remove_stale_temporaries

    dead = 2**22 + 12345  # beyond the default pid range: no such process
    stale = [tmp_path / f".step_00000016.pt.tmp{dead}", tmp_path / f".resume.pt.tmp{dead}"]
    keep = [tmp_path / "step_00000016.pt", tmp_path / ".other.tmp1", tmp_path / "notes.txt"]
    for p in stale + keep:
        p.write_bytes(b"x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_checkpoints_hold_no_unseeded_global_rng_state():
    pytest.importorskip("torch")
    from rhmfast.diffusion import trainer

    state = trainer._rng_state()
    assert set(state) <= {"torch", "cuda"}  # numpy and Python states are not saved
    np.random.seed(0)  # global states a user touches do not enter checkpoints
    assert set(trainer._rng_state()) == set(state)
