"""Every bad input of the grammar API gets a ValueError or TypeError that names the
parameter and the constraint: never a panic, a crash or a wrong answer."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from rhmfast import RHM, zipf
from rhmfast.grammar_io import json_digest

G = RHM(6, 6, 4, 2, 3, seed=0)
X = G.sample(4, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"v": 0}, ValueError, "v = 0"),
        ({"v": -3}, ValueError, "v = -3"),
        ({"n": 0}, ValueError, "n = 0"),
        ({"m": 0}, ValueError, "m = 0"),
        ({"s": 1}, ValueError, "s = 1"),
        ({"L": 0}, ValueError, "L = 0"),
        ({"v": 2**70}, ValueError, r"v = \d+ must be in"),
        ({"v": 2**40}, ValueError, r"v = \d+ must be in"),
        ({"v": 6.0}, TypeError, "v: expected an integer"),
        ({"L": True}, TypeError, "L: expected an integer"),
        ({"n": 1, "m": 7}, ValueError, r"v\*m = 42 exceeds v\*\*s"),
        ({"n": 10, "m": 4}, ValueError, r"n\*m = 40 exceeds v\*\*s"),
        ({"L": 30}, ValueError, "too large to allocate"),
        ({"v": 2**30, "m": 2**20, "L": 2}, ValueError, "too large to allocate"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": "0"}, TypeError, "seed"),
    ],
)
def test_bad_dimensions(kwargs, exc, match):
    args = {"v": 6, "n": 6, "m": 4, "s": 2, "L": 3, "seed": 0} | kwargs
    with pytest.raises(exc, match=match):
        RHM(args.pop("v"), args.pop("n"), args.pop("m"), args.pop("s"), args.pop("L"), **args)


@pytest.mark.parametrize(
    ("rule_probs", "root_prior", "exc", "match"),
    [
        ([zipf(4, 1)] * 2, None, ValueError, "expected L = 3 entries"),
        ({5: zipf(4, 1)}, None, ValueError, r"level 5 is not in \[0, L=3\)"),
        ([np.ones(3) / 3] * 3, None, ValueError, r"rule_probs\[0\]: shape \(3,\)"),
        ([np.ones((6, 4, 1)) / 4] * 3, None, ValueError, r"rule_probs\[0\]: shape"),
        ([np.array([0.5, 0.5, 0.5, -0.5])] * 3, None, ValueError, "finite and >= 0"),
        ([np.array([0.5, 0.5, np.nan, 0.0])] * 3, None, ValueError, "finite and >= 0"),
        ([np.array([0.5, 0.5, 0.5, 0.5])] * 3, None, ValueError, "sums to 2"),
        ([np.array(["a", "b", "c", "d"])] * 3, None, TypeError, "real numbers"),
        ("zipf", None, TypeError, "rule_probs: expected"),
        (None, np.ones(5) / 5, ValueError, r"root_prior: shape \(5,\), expected \(6,\)"),
        (None, np.ones(6), ValueError, "root prior sums to 6"),
        (None, np.array([1.0, 0, 0, 0, 0, np.inf]), ValueError, "finite"),
    ],
)
def test_bad_probability_tables(rule_probs, root_prior, exc, match):
    with pytest.raises(exc, match=match):
        RHM(6, 6, 4, 2, 3, seed=0, rule_probs=rule_probs, root_prior=root_prior)


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (np.full((2, 8), 6, np.uint8), ValueError, r"token 6, outside \[0, v=6\)"),
        (np.full((2, 8), 70000, np.uint32), ValueError, r"token 70000, outside"),
        (np.full((2, 8), -1, np.int64), ValueError, r"token -1, outside \[0, v=6\)"),
        (np.full((2, 8), 2**40, np.int64), ValueError, r"token 1099511627776, outside \[0, v=6\)"),
        (np.zeros((2, 8), np.float64), TypeError, "integer tokens"),
        (np.zeros((2, 8), bool), TypeError, "integer tokens"),
        (np.zeros(8, np.uint8), ValueError, "2-D"),
        (np.zeros((1, 2, 8), np.uint8), ValueError, "2-D"),
        (np.zeros((2, 9), np.uint8), ValueError, "length 9, expected 8"),
        ([[0, 1], [2]], ValueError, "ragged"),
        ("abc", TypeError, "integer tokens"),
    ],
)
def test_bad_tokens(x, exc, match):
    for method in (G.parse, G.check, G.log_prob, G.rank):
        with pytest.raises(exc, match=match):
            method(x)


def test_bad_sampling_and_rank_arguments():
    with pytest.raises(ValueError, match="num = -1"):
        G.sample(-1, seed=0)
    with pytest.raises(TypeError, match="num"):
        G.sample(2.5, seed=0)
    with pytest.raises(ValueError, match="num <= num_strings"):
        RHM(3, 2, 2, 2, 2, seed=0).sample(17, seed=0, unique=True)
    with pytest.raises(ValueError, match="too large to allocate"):
        G.sample(2**50, seed=0)
    with pytest.raises(ValueError, match="does not parse"):
        G.rank(
            np.zeros((1, 8), np.uint8)
            + np.array([0, 0, 0, 0, 0, 0, 0, 0], np.uint8)
            + _not_a_string()
        )
    with pytest.raises(ValueError, match="negative"):
        G.unrank(-1)
    with pytest.raises(ValueError, match="num_strings"):
        G.unrank(G.num_strings)
    with pytest.raises(TypeError, match="expected an integer"):
        G.unrank([1.5])
    with pytest.raises(TypeError, match="bool"):
        G.unrank(True)
    with pytest.raises(TypeError, match="a: expected a real number"):
        zipf(4, "x")
    with pytest.raises(ValueError, match="finite"):
        zipf(4, float("nan"))
    with pytest.raises(ValueError, match="m = 0"):
        zipf(0, 1.0)


def _not_a_string():
    # A string whose first pair is not a level-2 rule.
    pairs = {tuple(t) for t in G.rules[2].reshape(-1, 2).tolist()}
    a, b = next((a, b) for a in range(6) for b in range(6) if (a, b) not in pairs)
    row = G.sample(1, seed=0)[0].copy()
    row[0], row[1] = a, b
    return row[None, :]


@pytest.mark.parametrize(
    ("rules", "kwargs", "exc", "match"),
    [
        ([[[[0, 1], [0, 1]]]], {}, ValueError, "twice"),
        ([[[[0, 1], [1, 7]]]], {"v": 5}, ValueError, r"symbol 7, outside \[0, v=5\)"),
        ([[[[0, -1], [1, 0]]]], {}, ValueError, r"symbol -1, outside \[0, v=2\)"),
        ([np.zeros((2, 2, 2), np.float32)], {}, TypeError, "expected integers"),
        ([np.zeros((2, 2), np.int64)], {}, ValueError, "3-D"),
        (
            [np.zeros((2, 1, 2), np.int64) + [[[0, 1]], [[1, 0]]], np.zeros((3, 1, 2), np.int64)],
            {},
            ValueError,
            "twice|shape",
        ),
        (np.zeros((1, 1, 2), np.int64), {}, TypeError, "list of L"),
        ([], {}, TypeError, "non-empty list"),
        (
            [[[[0, 1], [1, 0]]], [[[0, 1]], [[1, 1]], [[1, 0]]]],
            {},
            ValueError,
            r"rules\[1\] has shape \[3, 1, 2\], expected \(3, 2, 2\)",
        ),
        ([[[[0, 1], [1, 0]]]], {"rule_probs": [np.array([0.5, 0.6])]}, ValueError, "sums to"),
    ],
)
def test_bad_rule_tables(rules, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        RHM.from_rules(rules, **kwargs)


def _valid_json(tmp_path):
    path = tmp_path / "g.json"
    G.save(path)
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(format="something.else"), "format tag"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("rules"), "rules"),
        (lambda d: d.update(v=7), "header says|expected"),
        (lambda d: d["rules"][1][0].__setitem__(0, d["rules"][1][0][1]), "twice"),
        (lambda d: d["rules"][2][0][0].__setitem__(0, 9), "outside"),
        (lambda d: d["rule_probs"][1][0].__setitem__(0, 0.9), "sums to"),
        (lambda d: d.update(root_prior=[1.0]), "root_prior"),
        (lambda d: d["rules"].append(d["rules"][-1]), "header says|expected"),
        (lambda d: d.update(rules="pickle"), "invalid grammar file"),
        (lambda d: d["rules"][0][0][0].__setitem__(0, True), "contains true"),
        (lambda d: d["rules"][0][0][0].__setitem__(0, 0.5), "expected integers"),
        (lambda d: d.update(v=6.0), "v: expected an integer, got float"),
        (lambda d: d.update(version=2.0), "version"),
        (lambda d: d.update(extra=1), "unexpected"),
    ],
)
def test_edited_json_files_are_rejected(tmp_path, edit, match):
    # Edited and re-signed (a valid checksum), so the content checks are what refuse it.
    path, doc = _valid_json(tmp_path)
    edit(doc)
    doc["sha256"] = json_digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        RHM.load(path)


def test_edited_json_without_new_checksum_is_rejected(tmp_path):
    path, doc = _valid_json(tmp_path)
    # Still a valid grammar (another root prior), so only the checksum can tell.
    doc["root_prior"] = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="checksum mismatch"):
        RHM.load(path)
    doc["sha256"] = json_digest(doc)
    path.write_text(json.dumps(doc))
    assert RHM.load(path) != G


def test_truncated_or_foreign_files_are_rejected(tmp_path):
    path, _ = _valid_json(tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match="invalid grammar file"):
        RHM.load(path)
    path.write_bytes(b"\x80\x04\x95pickle")
    with pytest.raises(ValueError, match="invalid grammar file"):
        RHM.load(path)
    path.write_text("[1, 2, 3]")
    with pytest.raises(ValueError, match="invalid grammar file"):
        RHM.load(path)
    npz = tmp_path / "g.npz"
    G.save(npz)
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="invalid grammar file"):
        RHM.load(npz)
    np.savez(npz, format=np.array("other"), version=np.array(1))
    with pytest.raises(ValueError, match="format tag"):
        RHM.load(npz)
    np.savez(npz, params=np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="format tag"):
        RHM.load(npz)
    # An object array (would need pickle) is refused, never unpickled; so is any
    # member the format does not write.
    G.save(npz)
    with zipfile.ZipFile(npz, "a") as z, z.open("evil.npy", "w") as f:
        np.lib.format.write_array(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="unexpected.*evil"):
        RHM.load(npz)
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as z, z.open("format.npy", "w") as f:
        np.lib.format.write_array(f, np.array(["x", 1], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="invalid grammar file"):
        RHM.load(tmp_path / "obj.npz")
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        G.save(tmp_path / "g.pkl")
    with pytest.raises(ValueError, match=r"\.json or \.npz"):
        RHM.load(tmp_path / "g.pkl")
    with pytest.raises(FileNotFoundError):
        RHM.load(tmp_path / "missing.json")


def test_bad_frequency_arguments():
    with pytest.raises(ValueError, match=r"level = 4 must be in \[0, L=3\]"):
        G.symbol_marginals(4)
    with pytest.raises(ValueError, match="level = -1"):
        G.block_probs(np.zeros((1, 2), np.uint8), -1)
    with pytest.raises(ValueError, match="length 3, expected 2"):
        G.block_probs(np.zeros((1, 3), np.uint8), 2)
    with pytest.raises(ValueError, match=r"position 4 is not in \[0, s\*\*level = 4\)"):
        G.block_probs(np.zeros((1, 2), np.uint8), 2, positions=[4])
    with pytest.raises(ValueError, match="expected 1 entries"):
        G.block_probs(np.zeros((1, 2), np.uint8), 2, positions=[0, 1])
    with pytest.raises(ValueError, match="which is negative"):
        G.block_probs(np.zeros((1, 2), np.uint8), 2, positions=[-1])
    with pytest.raises(ValueError, match="which exceeds"):
        G.kgram_probs([[0, 1]], [1 << 62])
    with pytest.raises(ValueError, match="token 9"):
        G.block_probs(np.full((1, 2), 9, np.uint8), 2)
    with pytest.raises(ValueError, match=r"offset 7 \+ pattern length 2 exceeds d = 8"):
        G.kgram_probs([[0, 1]], [7])
    with pytest.raises(ValueError, match=r"length 9 is not in \[1, d=8\]"):
        G.kgram_probs([np.zeros(9, np.uint8)])
    with pytest.raises(ValueError, match=r"length 0 is not in \[1, d=8\]"):
        G.kgram_probs([np.zeros(0, np.uint8)], [0])
    with pytest.raises(ValueError, match="negative"):
        G.kgram_probs([[0]], [-1])
    with pytest.raises(ValueError, match="token 6"):
        G.kgram_probs([[6]], [0])
    with pytest.raises(TypeError, match="patterns"):
        G.kgram_probs(5)
    with pytest.raises(TypeError, match="integer"):
        G.kgram_probs([[0.5]])


def _overcommit_heuristic_with_small_memory() -> bool:
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            mode = f.read().strip()
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) for line in f}
    except OSError:
        return False
    return mode == "0" and (info["MemTotal"] + info.get("SwapTotal", 0)) * 1024 < 2**38


@pytest.mark.skipif(
    not _overcommit_heuristic_with_small_memory(),
    reason="needs Linux heuristic overcommit and < 256 GiB",
)
def test_allocation_failure_is_a_value_error_not_an_abort():
    # 2**36 strings of 8 tokens = 512 GiB: under the cap, but the system refuses it.
    with pytest.raises(ValueError, match="too large to allocate"):
        G.sample(2**36, seed=0)
