"""`rhmfast audit` / rhmfast.audit: copies found exactly, chance rates, calibrated
statistics on known answers, malformed sample files, the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_errors import fails
from hypothesis import given, settings
from hypothesis import strategies as st

import rhmfast
import rhmfast.audit as A
import rhmfast.data as D
from rhmfast.cli import main
from rhmfast.knownanswers.memorizer import draw_mixture, string_weights
from rhmfast.stats import prototypicality_score

PARAMS = dict(v=6, n=6, m=4, s=2, L=3, zipf_a=0.5, num_train=200, num_heldout=200, data_seed=1)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return D.load(D.write(tmp_path_factory.mktemp("audit") / "ds", **PARAMS))


def quick(ds, sets, **kw):
    return A.audit(ds, sets, num_null=19, num_boot=10, figures=False, progress=False, **kw)


# -- copies ------------------------------------------------------------------------------------


def test_copies_of_training_strings_found_with_their_indices(ds):
    rng = np.random.default_rng(0)
    idx = rng.integers(len(ds.train), size=150)
    samples = np.concatenate([ds.train[idx], ds.heldout[:50]])  # held-out strings: never training strings
    order = rng.permutation(len(samples))
    res = quick(ds, [A.SampleSet("x", None, None, samples[order])])
    copies = res["sets"][0]["copies"]
    expected = {int(np.flatnonzero(order == k)[0]): int(idx[k]) for k in range(150)}
    assert dict(zip(copies["sample"], copies["train_index"])) == expected
    assert copies["count"] == 150 and copies["distinct"] == len(set(idx.tolist()))
    assert res["sets"][0]["heldout_copies"]["count"] == 50
    assert sum(res["pooled_quintiles"]["observed"]) == 150


def test_repeated_training_strings_count_at_the_first(tmp_path):
    ds = D.load(D.write(tmp_path / "ds", L=2, num_train=300, unique=False, num_heldout=5))
    first = {}
    for i, row in enumerate(ds.train.tolist()):
        first.setdefault(tuple(row), i)
    res = quick(ds, [A.SampleSet("x", None, None, ds.train[::-1])])
    got = res["sets"][0]["copies"]
    assert got["train_index"] == [first[tuple(r)] for r in ds.train[::-1][got["sample"]].tolist()]
    assert got["count"] == 300


def brute_force_copies(samples: np.ndarray, strings: np.ndarray) -> list[int]:
    """Pure Python: smallest index of an equal string, -1 for none."""
    out = []
    for s in samples.tolist():
        hit = -1
        for i, t in enumerate(strings.tolist()):
            if s == t:
                hit = i
                break
        out.append(hit)
    return out


@settings(deadline=None, max_examples=25)
@given(st.data())
def test_copy_detection_matches_brute_force(ds, data):
    n = data.draw(st.integers(1, 40))
    rows = []
    for _ in range(n):
        kind = data.draw(st.sampled_from(["train", "heldout", "mutated"]))
        src = ds.train if kind != "heldout" else ds.heldout
        row = src[data.draw(st.integers(0, len(src) - 1))].copy()
        if kind == "mutated":
            row[data.draw(st.integers(0, ds.d - 1))] = data.draw(st.integers(0, 5))
        rows.append(row)
    samples = np.array(rows, np.int64)
    res = quick(ds, [A.SampleSet("x", None, None, samples)])
    want = brute_force_copies(samples, ds.train)
    got = [-1] * n
    for s, t in zip(res["sets"][0]["copies"]["sample"], res["sets"][0]["copies"]["train_index"]):
        got[s] = t
    assert got == want
    held = brute_force_copies(samples, ds.heldout)
    assert res["sets"][0]["heldout_copies"]["count"] == sum(h >= 0 for h in held)
    assert res["sets"][0]["num_valid"] == int(ds.grammar.check(samples).valid.sum())


def test_grammar_samples_copy_at_the_chance_rate(ds):
    """A model that learned the grammar and memorized nothing: copies ~ Poisson(chance),
    within 4 standard deviations in total and per quintile (false failure < 1e-4 each)."""
    samples = ds.grammar.sample(20000, seed=5)
    res = quick(ds, [A.SampleSet("grammar", None, None, samples)])
    s = res["sets"][0]
    # the chance count: the valid samples that copy nothing are a share 1 - S of the grammar draws
    mass = float(np.exp(ds.train_logp[np.unique(ds.train, axis=0, return_index=True)[1]]).sum())
    chance = (s["num_valid"] - s["copies"]["count"]) / (1 - mass) * mass
    assert s["copies"]["chance"] == pytest.approx(chance)
    assert chance == pytest.approx(mass * 20000, rel=4 / np.sqrt(mass * 20000))  # E[other] = B (1 - S)
    assert chance > 100  # enough for the normal tolerance below
    assert abs(s["copies"]["count"] - chance) <= 4 * np.sqrt(chance)
    obs, exp = np.array(s["quintiles"]["observed"]), np.array(s["quintiles"]["chance"])
    assert exp.sum() == pytest.approx(chance)
    assert (np.abs(obs - exp) <= 4 * np.sqrt(exp) + 1).all(), (obs, exp)
    held = s["heldout_copies"]
    assert abs(held["count"] - held["chance"]) <= 4 * np.sqrt(held["chance"])


# -- calibrated statistics on known answers ----------------------------------------------------

LAMS = (0.0, 0.05, 0.15)  # memorized fraction of the samples at three steps
B = 1000


def simulate(ds, seed: int, lam: float, strength: float):
    """Counts of the known-answer memorizer, drawn as strings (rhmfast.knownanswers'
    string-space form, not the count-space form the audit's nulls use) and counted by
    the suffix index: per step a fraction ``lam * LAMS[t] / 0.15`` of B samples copies
    training strings tilted by block-frequency prototypicality (``strength``: the most
    prototypical over the least; 1: uniform), the rest grammar draws."""
    rng = np.random.default_rng(seed)
    P = len(ds.train)
    score = prototypicality_score(ds.train, ds.grammar.s)
    w = string_weights(ds.train, ds.train_logp, ds.grammar.s, "blocks", strength)
    index, held_index = rhmfast.TrainingIndex(ds.train), rhmfast.TrainingIndex(ds.heldout)
    tr, ho = np.zeros((len(LAMS), P), np.int64), np.zeros((len(LAMS), len(ds.heldout)), np.int64)
    for t, frac in enumerate(LAMS):
        x, _ = draw_mixture(ds.grammar, ds.train, w, lam * frac / max(LAMS), B, int(rng.integers(2**31)))
        tr[t] = A.count_copies(x, index, P)[1]
        ho[t] = A.count_copies(x, held_index, len(ds.heldout))[1]
    return tr, ho, np.full(len(LAMS), B), score


def decisions(ds, lam: float, strength: float, seeds: range) -> tuple[list[int], list[int]]:
    mem, proto = [], []
    for seed in seeds:
        tr, ho, nv, score = simulate(ds, seed, lam, strength)
        mem.append(A.memorization_test(ds, tr, ho, nv, num_null=39, num_boot=10, seed=seed).decision)
        proto.append(A.prototype_test(ds, tr, ho, nv, score, name="c", num_null=39, num_boot=10, seed=seed,
                                      upto=[len(LAMS) - 1])[0].decision)
    return mem, proto


# 40 seeds at level 0.05: P(more than 6 false rejections) < 1e-3 (binomial 99.9% bound)
SEEDS = range(40)
MAX_FALSE = 6


@pytest.mark.knownanswers
def test_known_answer_no_memorization(ds):
    mem, proto = decisions(ds, 0.0, 1.0, SEEDS)
    assert sum(d != 0 for d in mem) <= MAX_FALSE, mem
    assert sum(d != 0 for d in proto) <= MAX_FALSE, proto


@pytest.mark.knownanswers
def test_known_answer_uniform_memorizer(ds):
    """Every training string memorized at the same rate: memorization found, prototypes
    not (the fitted null runs are this memorizer)."""
    mem, proto = decisions(ds, 0.3, 1.0, SEEDS)
    assert sum(d == 1 for d in mem) >= 0.8 * len(SEEDS) and -1 not in mem, mem
    assert sum(d != 0 for d in proto) <= MAX_FALSE, proto


@pytest.mark.knownanswers
def test_known_answer_prototypes_first(ds):
    """The most prototypical string memorized 8x as often as the least: detected in at
    least 80% of seeds, never the wrong way."""
    mem, proto = decisions(ds, 0.3, 8.0, range(20))
    assert sum(d == 1 for d in proto) >= 16 and -1 not in proto, proto
    assert all(d == 1 for d in mem)


@pytest.mark.knownanswers
def test_known_answer_imperfect_generalizer(ds):
    """No memorization, but the model's rules sharper than the data's (Zipf a = 1 against
    0.5): over-produced common strings must not read as memorization."""
    g = ds.grammar
    model = rhmfast.RHM.from_rules(g.rules, rule_probs=[rhmfast.zipf(g.m, 1.0)] * g.L)
    index, held_index = rhmfast.TrainingIndex(ds.train), rhmfast.TrainingIndex(ds.heldout)
    yes = 0
    for seed in range(20):
        xs = [model.sample(B, seed=100 * seed + t) for t in range(len(LAMS))]
        tr = np.stack([A.count_copies(x, index, len(ds.train))[1] for x in xs])
        ho = np.stack([A.count_copies(x, held_index, len(ds.heldout))[1] for x in xs])
        yes += A.memorization_test(ds, tr, ho, np.full(len(LAMS), B), num_null=39, num_boot=10, seed=seed).decision == 1
    assert yes <= 3


# -- the command line and the written report ---------------------------------------------------


def test_cli_audit_steps(ds, tmp_path, capsys):
    files = []
    for k, step in enumerate((10, 100, 1000)):
        x = ds.grammar.sample(300, seed=k)
        x[: 30 * k] = ds.train[: 30 * k]
        fmt = (".npy", ".txt", ".jsonl")[k]
        path = tmp_path / f"s{step}{fmt}"
        if fmt == ".npy":
            np.save(path, x)
        else:
            path.write_text(D._text(x) if fmt == ".txt" else D._jsonl(x))
        files.append(f"step={step}:{path}")
    out = tmp_path / "au"
    assert main(["audit", str(ds.path), files[2], files[0], files[1], "--out", str(out), "--num-null", "19",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Memorized" in printed and "report.md" in printed
    res = json.loads((out / "results.json").read_text())
    assert [s["step"] for s in res["sets"]] == [10, 100, 1000]
    assert res["sets"][2]["copies"]["train_index"][:60] == list(range(60))
    assert len(res["prototype_curve"]["value"]) == 3
    md = (out / "report.md").read_text()
    assert "## Verdict" in md and "chance" in md
    html = (out / "report.html").read_text()
    assert "<svg" in html and "figures/" not in html.split("<body>")[1].split("<figure>")[0]
    assert {p.name for p in (out / "figures").iterdir()} >= {"copies.svg", "validity.svg", "novelty.svg",
                                                            "prototype_curve.svg", "quintiles.svg", "null_tests.svg"}
    # an earlier audit is replaced whole
    assert main(["audit", str(ds.path), files[0], "--out", str(out), "--num-null", "19", "--no-progress"]) == 0
    assert len(json.loads((out / "results.json").read_text())["sets"]) == 1
    assert not (out / "figures/copies.svg").exists()


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.txt", "0 1 2 3 4 5 0 1\n0 1 2\n", "line 2: 3 tokens, but line 1 has 8 (ragged lines)"),
        ("bad.txt", "0 1 2 3 4 5 0 1\n0 1 2 3 4 5 0 6\n", "line 2: token 6 (position 7) is outside the alphabet [0, v=6)"),
        ("bad.txt", "0 1 2 3 4 5 0 x\n", "line 1: token 'x' (position 7) is not an integer"),
        ("bad.txt", "0 1 2 3\n", "line 1: 4 tokens, expected d = 8"),
        ("bad.txt", "", "is empty: no strings"),
        ("bad.jsonl", '{"tokens": [0,1,2,3,4,5,0,1]}\n{"tokens": [0,1\n', "line 2: is not JSON"),
        ("bad.jsonl", '{"tokens": [0,1,2,3,4,5,0,1.5]}\n', "line 1: token 1.5 (position 7) is not an integer"),
    ],
)
def test_cli_malformed_sample_files_write_nothing(ds, tmp_path, capsys, name, content, message):
    good = tmp_path / "good.npy"
    np.save(good, ds.train[:5])
    bad = tmp_path / name
    bad.write_text(content)
    out = tmp_path / "au"
    line = fails(capsys, "audit", str(ds.path), f"step=1:{good}", f"step=2:{bad}", "--out", str(out))
    assert line.startswith("rhmfast audit: error: ") and repr(str(bad)) in line and message in line
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["good.npy", name])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{good}", "step=3:{good}"], "name the step of every file"),
        (["step=3:{good}", "step=3:{good}"], "step=3 is given twice"),
        (["step=x:{good}"], "expected step=N:PATH"),
        (["{missing}"], "no such file"),
        (["{good}", "--num-null", "5"], "num_null"),
    ],
)
def test_cli_audit_errors(ds, tmp_path, capsys, argv, message):
    good = tmp_path / "good.npy"
    np.save(good, ds.train[:5])
    argv = [a.format(good=good, missing=tmp_path / "missing.npy") for a in argv]
    line = fails(capsys, "audit", str(ds.path), *argv, "--out", str(tmp_path / "au"))
    assert message in line
    assert not (tmp_path / "au").exists()


def test_cli_audit_bad_dataset_and_out(ds, tmp_path, capsys):
    good = tmp_path / "good.npy"
    np.save(good, ds.train[:5])
    assert "no dataset.json" in fails(capsys, "audit", str(tmp_path), str(good))
    assert "not a directory" in fails(capsys, "audit", str(tmp_path / "nope"), str(good))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert "holds no earlier audit" in fails(capsys, "audit", str(ds.path), str(good), "--out", str(mine))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_progress_only_on_a_tty(ds, capsys):
    A.audit(ds, [A.SampleSet("x", None, None, ds.train[:5])], num_null=19, num_boot=10, figures=False)
    assert capsys.readouterr().err == ""  # not a TTY under pytest
    A.audit(ds, [A.SampleSet("x", None, None, ds.train[:5])], num_null=19, num_boot=10, figures=False, progress=True)
    assert "audit" in capsys.readouterr().err


