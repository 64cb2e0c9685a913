"""`rhmfast data` / rhmfast.data: the data set a trainer reads, in three formats, bit for bit."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
from cli_errors import fails
from hypothesis import given, settings
from hypothesis import strategies as st

import rhmfast
import rhmfast.data as D
from rhmfast.cli import main
from rhmfast.diffusion.config import TrainConfig
from rhmfast.trainset import build_data

SMALL = dict(v=6, n=6, m=4, s=2, L=3, num_train=60, num_heldout=40, data_seed=3, grammar_seed=1)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return D.write(tmp_path_factory.mktemp("data") / "ds", **SMALL)


def test_three_formats_read_back_the_same_arrays(small):
    ds = D.load(small)
    for name in ("train", "heldout"):
        npy = np.load(small / f"{name}.npy")
        for suffix in D.FORMATS:
            got = D.read_strings(small / f"{name}{suffix}", v=6, d=8)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, npy)
        np.testing.assert_array_equal(getattr(ds, name), npy)
    assert ds.train.shape == (60, 8) and ds.heldout.shape == (40, 8)
    # held-out disjoint from training; log p exact
    assert not {r.tobytes() for r in ds.train} & {r.tobytes() for r in ds.heldout}
    np.testing.assert_array_equal(ds.train_logp, ds.grammar.log_prob(ds.train))
    np.testing.assert_array_equal(ds.heldout_logp, ds.grammar.log_prob(ds.heldout))
    assert (small / "train.txt").read_text().splitlines()[0] == " ".join(map(str, ds.train[0]))
    assert json.loads((small / "heldout.jsonl").read_text().splitlines()[1]) == {"tokens": ds.heldout[1].tolist()}


def test_same_strings_as_the_trainer(small):
    """One sampler of training sets: a run with the same TrainConfig data keys trains on these."""
    ds = D.load(small)
    data = build_data(TrainConfig(**SMALL, steps=10))
    np.testing.assert_array_equal(ds.train, data.train)
    np.testing.assert_array_equal(ds.heldout, data.heldout)
    assert ds.grammar == data.grammar


@pytest.mark.parametrize("extra", [dict(zipf_a=0.5, zipf_levels=[0, 2]), dict(unique=False, num_train=400, L=2)])
def test_rule_probs_and_replacement_as_the_trainer(tmp_path, extra):
    params = {**SMALL, **extra}
    ds = D.load(D.write(tmp_path / "ds", **params))
    data = build_data(TrainConfig(**params))
    np.testing.assert_array_equal(ds.train, data.train)
    assert ds.grammar == data.grammar
    if not params.get("unique", True):
        assert len(np.unique(ds.train, axis=0)) < len(ds.train)  # repeats kept
    else:
        assert not ds.grammar.is_uniform


def test_readme_command_regenerates_bit_for_bit(tmp_path, monkeypatch, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    D.write("ds", **SMALL, zipf_a=0.0)
    readme = (tmp_path / "a/ds/README.md").read_text()
    command = readme.split("```\n")[1].strip()
    for key, value in {**SMALL, "zipf_a": 0.0}.items():
        assert f"--{key.replace('_', '-')} {value}" in command  # every parameter and seed
    argv = shlex.split(command)
    assert argv[:2] == ["rhmfast", "data"]
    monkeypatch.chdir(tmp_path / "b")
    assert main(argv[1:]) == 0
    names = sorted(p.name for p in (tmp_path / "a/ds").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b/ds").iterdir())
    assert len(names) == 11
    for name in names:
        assert (tmp_path / "a/ds" / name).read_bytes() == (tmp_path / "b/ds" / name).read_bytes(), name


def test_existing_directory(small, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in small.iterdir()}
    assert D.write(small, **SMALL) == small  # the same data set: left as it is
    assert before == {p.name: p.stat().st_mtime_ns for p in small.iterdir()}
    with pytest.raises(ValueError, match=r"holds a different data set \(num_train = 60, not 61\)"):
        D.write(small, **{**SMALL, "num_train": 61})
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no data set"):
        D.write(other, **SMALL)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    D.write(empty, **SMALL)
    assert (empty / "dataset.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_bad_parameters_write_nothing(tmp_path):
    with pytest.raises(ValueError, match="num_train"):
        D.write(tmp_path / "x", **{**SMALL, "num_train": 0})
    with pytest.raises(TypeError, match="'steps': not a data set parameter"):
        D.write(tmp_path / "x", steps=3)
    with pytest.raises(ValueError, match="zipf_a"):
        D.write(tmp_path / "x", zipf_a=-2.0)
    assert not list(tmp_path.iterdir())


def test_config_argument(tmp_path):
    cfg = TrainConfig(**SMALL, steps=7, width=16)
    ds = D.load(D.write(tmp_path / "ds", cfg))
    assert {k: ds.params[k] for k in SMALL} == SMALL and ds.params["unique"] is True
    assert sorted(ds.params) == sorted(D.DATA_KEYS)
    with pytest.raises(TypeError, match="either config or data keys"):
        D.write(tmp_path / "y", cfg, v=4)


def test_load_detects_damage(tmp_path):
    out = D.write(tmp_path / "ds", **SMALL)
    p = out / "train.txt"
    p.write_text(p.read_text().replace("0", "1", 1))
    with pytest.raises(ValueError, match="train.txt does not match its checksum"):
        D.load(out)
    with pytest.raises(ValueError, match="no dataset.json"):
        D.load(tmp_path)


# -- reading strings: every malformed case names the file and the line ----------------------


def write(tmp_path, name: str, content: str | bytes):
    p = tmp_path / name
    (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
    return p


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("s.txt", "0 1 2 3\n0 1 2\n", "line 2: 3 tokens, but line 1 has 4 (ragged lines)"),
        ("s.txt", "0 1 2 3\n0 1 2 6\n", "line 2: token 6 (position 3) is outside the alphabet [0, v=6)"),
        ("s.txt", "0 1 2 3\n0 -1 2 3\n", "line 2: token -1 (position 1) is outside the alphabet"),
        ("s.txt", "0 1 2 3\n0 1.5 2 3\n", "line 2: token '1.5' (position 1) is not an integer"),
        ("s.txt", "0 1 2 3\n0 a 2 3\n", "line 2: token 'a' (position 1) is not an integer"),
        ("s.txt", "0 1 2\n0 1 2\n", "line 1: 3 tokens, expected d = 4"),
        ("s.txt", "", "is empty: no strings"),
        ("s.txt", "0 1 2 3\n\n0 1 2 3\n", "line 2: is empty"),
        ("s.txt", b"0 1 2 3\n0 1 \xff 3\n", "line 2: is not UTF-8 text"),
        ("s.jsonl", '{"tokens": [0, 1, 2, 3]}\n{"tokens": [0, 1, 2\n', "line 2: is not JSON"),
        ("s.jsonl", '{"tokens": [0, 1, 2, 3]}\n{"tokens": [0, 1, 2]}\n', "line 2: 3 tokens, but line 1 has 4"),
        ("s.jsonl", '{"tokens": [0, 1, 2, 3]}\n{"tokens": [0, 1.0, 2, 3]}\n', "line 2: token 1.0 (position 1) is not an integer"),
        ("s.jsonl", '{"tokens": [0, true, 2, 3]}\n', "line 1: token true (position 1) is not an integer"),
        ("s.jsonl", '{"tokens": [0, "1", 2, 3]}\n', "line 1: token \"1\" (position 1) is not an integer"),
        ("s.jsonl", '{"tokens": [0, 1, 2, 3]}\n[0, 1, 2, 3]\n', 'line 2: expected a JSON object {"tokens": [...]}'),
        ("s.jsonl", '{"tokens": [0, 1, 2, 3]}\n{"tokens": [0, 9, 2, 3]}\n', "line 2: token 9 (position 1) is outside"),
        ("s.jsonl", '{"tokens": []}\n', "line 1: holds no tokens"),
        ("s.jsonl", "", "is empty: no strings"),
        ("s.csv", "0,1,2,3\n", "unknown format '.csv'"),
    ],
)
def test_malformed(tmp_path, name, content, message):
    p = write(tmp_path, name, content)
    with pytest.raises(ValueError) as err:
        D.read_strings(p, v=6, d=4)
    assert str(err.value).startswith(repr(str(p)) + ": ")
    assert message in str(err.value)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([[0, 1, 2, 3], [0, 1, 2, 7]]), "row 1: token 7 (position 3) is outside the alphabet"),
        (np.array([[0.0, 1, 2, 3]]), "has dtype float64; expected integers"),
        (np.array([0, 1, 2, 3]), "shape (4,): expected (N, d)"),
        (np.array([[0, 1, 2]]), "row 0: 3 tokens, expected d = 4"),
        (np.zeros((0, 4), np.int64), "is empty: no strings"),
        (np.array([["a", "b", "c", "d"]]), "has dtype <U1; expected integers"),
    ],
)
def test_malformed_npy(tmp_path, array, message):
    p = tmp_path / "s.npy"
    np.save(p, array)
    with pytest.raises(ValueError, match=None) as err:
        D.read_strings(p, v=6, d=4)
    assert message in str(err.value) and str(p) in str(err.value)


def test_npy_not_an_array(tmp_path):
    p = write(tmp_path, "s.npy", b"PK\x03\x04 not numpy")
    with pytest.raises(ValueError, match="is not a .npy array"):
        D.read_strings(p)
    p = tmp_path / "obj.npy"
    np.save(p, np.array([[1, None]], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="holds Python objects; refused"):
        D.read_strings(p)
    with pytest.raises(ValueError, match="no such file"):
        D.read_strings(tmp_path / "missing.txt")


@settings(deadline=None, max_examples=40)
@given(st.integers(1, 12), st.integers(1, 6), st.integers(2, 300), st.data())
def test_round_trip_any_tokens(n, d, v, data):
    x = np.array(data.draw(st.lists(st.lists(st.integers(0, v - 1), min_size=d, max_size=d),
                                    min_size=n, max_size=n)), np.int64)
    import pathlib
    import tempfile

    root = pathlib.Path(tempfile.mkdtemp())
    (root / "x.txt").write_text(D._text(x))
    (root / "x.jsonl").write_text(D._jsonl(x))
    np.save(root / "x.npy", x.astype(np.uint16))
    for suffix in D.FORMATS:
        np.testing.assert_array_equal(D.read_strings(root / f"x{suffix}", v=v, d=d), x)


# -- the command line -------------------------------------------------------------------------


def test_cli_data(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", str(out), "--L", "3", "--num-train", "30", "--zipf-a", "0.5", "--zipf-levels", "0,2",
                 "--no-unique", "--data-seed", "4"]) == 0
    assert str(out) in capsys.readouterr().out
    ds = D.load(out)
    assert ds.params["zipf_levels"] == [0, 2] and ds.params["unique"] is False and ds.params["data_seed"] == 4
    data = build_data(TrainConfig(L=3, num_train=30, zipf_a=0.5, zipf_levels=(0, 2), unique=False, data_seed=4))
    np.testing.assert_array_equal(ds.train, data.train)
    # again with the same parameters: fine; different: refused in one line
    assert main(["data", str(out), "--L", "3", "--num-train", "30", "--zipf-a", "0.5", "--zipf-levels", "0,2",
                 "--no-unique", "--data-seed", "4"]) == 0
    line = fails(capsys, "data", str(out), "--L", "3")
    assert "holds a different data set" in line and line.startswith("rhmfast data: error:")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num-train", "0"], "num_train"),
        (["--zipf-a", "-3"], "zipf_a"),
        (["--zipf-levels", "0,x"], "--zipf-levels '0,x'"),
        (["--zipf-levels", "5", "--zipf-a", "1", "--L", "3"], "zipf_levels"),
        (["--m", "40"], "m*v = 240 exceeds v**s = 36"),
    ],
)
def test_cli_data_errors(tmp_path, capsys, argv, message):
    line = fails(capsys, "data", str(tmp_path / "ds"), *argv)
    assert message in line
    assert not (tmp_path / "ds").exists()


def test_cli_data_onto_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert "is not a directory" in fails(capsys, "data", str(tmp_path / "f"))


def test_import_rhmfast_stays_light():
    import subprocess
    import sys

    code = "import sys, rhmfast; print(any(m in sys.modules for m in ('torch', 'matplotlib', 'rhmfast.audit')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    assert rhmfast.data.write is D.write and rhmfast.audit.audit is not None
