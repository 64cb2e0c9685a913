"""Saved grammars are untrusted input: every damaged, hostile or foreign file gets one
ValueError ``invalid grammar file PATH: ...`` (never another exception, an allocation
the file asks for, or a different grammar), and big indices round-trip (their speed is
measured in benches/bench_grammar.py)."""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile

import numpy as np
import pytest

import rhmfast.grammar_io as grammar_mod
from rhmfast import RHM, zipf

G = RHM(6, 6, 4, 2, 3, seed=0, rule_probs=zipf(4, 1.0))


def _save(tmp_path, name, grammar=G):
    path = tmp_path / name
    grammar.save(path)
    return path


def _repack(src, dst, *, compress=zipfile.ZIP_STORED, drop=(), add=()):
    """Copies an npz member by member (optionally deflated, some left out or added)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compress) as zout:
        for info in zin.infolist():
            if info.filename not in drop:
                zout.writestr(info.filename, zin.read(info))
        for name, data in add:
            zout.writestr(name, data)
    return dst


def _npy_bytes(header: dict, payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def _v1_json(path, g=G):
    doc = {"format": "rhmfast.RHM", "version": 1, "v": g.v, "n": g.n, "m": g.m, "s": g.s}
    doc |= {"L": g.L, "rules": [r.tolist() for r in g.rules]}
    doc |= {"rule_probs": [p.tolist() for p in g.rule_probs], "root_prior": g.root_prior.tolist()}
    path.write_text(json.dumps(doc))
    return path


def _v1_npz(path, g=G):
    arrays = {"format": np.array("rhmfast.RHM"), "version": np.array(1, dtype=np.int64)}
    arrays["params"] = np.array([g.v, g.n, g.m, g.s, g.L], dtype=np.int64)
    arrays["root_prior"] = g.root_prior
    for level, (r, p) in enumerate(zip(g.rules, g.rule_probs, strict=True)):
        arrays[f"rules_{level}"] = r
        arrays[f"rule_probs_{level}"] = p
    np.savez(path, **arrays)
    return path


def _load_error(path) -> str:
    with pytest.raises(ValueError, match="invalid grammar file") as e:
        RHM.load(path)
    return str(e.value)


# --- formats ------------------------------------------------------------------------


def test_saves_round_trip_atomically_with_checksums(tmp_path, monkeypatch):
    calls = []
    real_bytes, real_text = grammar_mod.atomic_write_bytes, grammar_mod.atomic_write_text
    monkeypatch.setattr(
        grammar_mod, "atomic_write_bytes", lambda p, b: (calls.append(p), real_bytes(p, b))
    )
    monkeypatch.setattr(
        grammar_mod, "atomic_write_text", lambda p, t: (calls.append(p), real_text(p, t))
    )
    j, z = _save(tmp_path, "g.json"), _save(tmp_path, "g.npz")
    assert calls == [str(j), str(z)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.json", "g.npz"]
    assert RHM.load(j) == G and RHM.load(z) == G
    doc = json.loads(j.read_text())
    assert doc["version"] == 2 and len(doc["sha256"]) == 64
    with zipfile.ZipFile(z) as f:
        assert "sha256.npy" in f.namelist()
    # A deflated copy (np.savez_compressed style) loads the same.
    assert RHM.load(_repack(z, tmp_path / "c.npz", compress=zipfile.ZIP_DEFLATED)) == G


def test_version_1_files_still_load(tmp_path):
    assert RHM.load(_v1_json(tmp_path / "v1.json")) == G
    assert RHM.load(_v1_npz(tmp_path / "v1.npz")) == G
    # A v1 file is unchecked, so it may not carry a checksum (a damaged v2 version tag).
    doc = json.loads(_save(tmp_path, "g.json").read_text())
    doc["version"] = 1
    (tmp_path / "g.json").write_text(json.dumps(doc))
    assert "unexpected ['sha256']" in _load_error(tmp_path / "g.json")


# --- damage -----------------------------------------------------------------------------


def _flip_all(path, flips: int, seed: int, *, checked: bool):
    """Single-bit flips of ``path`` (seeded): each loads as G or raises ValueError
    (v1 files, unchecked, may also load another valid grammar)."""
    data = path.read_bytes()
    rng = random.Random(seed)
    damaged = path.with_name("damaged" + path.suffix)
    outcomes = {"same": 0, "error": 0, "other": 0}
    for _ in range(flips):
        bit = rng.randrange(len(data) * 8)
        buf = bytearray(data)
        buf[bit // 8] ^= 1 << (bit % 8)
        damaged.write_bytes(bytes(buf))
        try:
            g = RHM.load(damaged)
        except ValueError as e:
            assert "invalid grammar file" in str(e), (bit, e)
            outcomes["error"] += 1
            continue
        if g == G:
            outcomes["same"] += 1
        else:
            assert not checked, f"bit {bit} of {path.name} loaded a different grammar"
            outcomes["other"] += 1
    for cut in sorted(rng.sample(range(len(data)), 40)):
        damaged.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="invalid grammar file"):
            RHM.load(damaged)
    return outcomes


def test_bit_flips_never_load_a_different_grammar(tmp_path):
    npz = _save(tmp_path, "g.npz")
    files = [_save(tmp_path, "g.json"), npz]
    files.append(_repack(npz, tmp_path / "deflated.npz", compress=zipfile.ZIP_DEFLATED))
    for seed, path in enumerate(files):
        out = _flip_all(path, 300, seed, checked=True)
        assert out["error"] > 200, out
    # Unchecked v1 files: any flip is still a ValueError or a valid grammar.
    for seed, path in enumerate([_v1_json(tmp_path / "v1.json"), _v1_npz(tmp_path / "v1.npz")]):
        _flip_all(path, 150, 10 + seed, checked=False)


def test_damaged_zip_structures_are_value_errors(tmp_path):
    npz = _save(tmp_path, "g.npz")
    data = npz.read_bytes()
    # An unknown compression method in the central directory (zipfile itself would
    # raise NotImplementedError).
    at = data.rfind(b"PK\x01\x02")
    bad = bytearray(data)
    bad[at + 10 : at + 12] = struct.pack("<H", 99)
    npz.write_bytes(bytes(bad))
    assert "compression" in _load_error(npz)
    # The npy magic of a member broken; a member encrypted-flagged; not a zip at all.
    bad = bytearray(data)
    start = data.find(b"\x93NUMPY")
    bad[start] = ord("X")
    npz.write_bytes(bytes(bad))
    _load_error(npz)
    bad = bytearray(data)
    bad[at + 8 : at + 10] = struct.pack("<H", 1)
    npz.write_bytes(bytes(bad))
    _load_error(npz)
    npz.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    _load_error(npz)
    # Missing, duplicated and unknown members.
    good = _save(tmp_path, "good.npz")
    assert "missing ['rules_1']" in _load_error(_repack(good, npz, drop=("rules_1.npy",)))
    with zipfile.ZipFile(good) as z:
        dup = ("rules_1.npy", z.read("rules_1.npy"))
    with pytest.warns(UserWarning, match="Duplicate name"):
        _repack(good, npz, add=[dup])
    assert "twice" in _load_error(npz)
    assert "unexpected" in _load_error(_repack(good, npz, add=[("notes.txt", b"hi")]))


def test_huge_declared_arrays_are_refused_before_allocating(tmp_path):
    good = _save(tmp_path, "good.npz")
    npz = tmp_path / "g.npz"
    huge = _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (400_000_000, 400)})
    msg = _load_error(_repack(good, npz, drop=("rules_0.npy",), add=[("rules_0.npy", huge)]))
    assert "shape (400000000, 400), expected (6, 4, 2)" in msg
    strings = _npy_bytes({"descr": "<U100", "fortran_order": False, "shape": (10**12,)})
    msg = _load_error(_repack(good, npz, drop=("format.npy",), add=[("format.npy", strings)]))
    assert "format" in msg
    # Parameters beyond the core's limits are refused before any table is read.
    params = np.array([6, 6, 4, 2, 40], dtype="<i8")
    body = _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (5,)}, params.tobytes())
    msg = _load_error(_repack(good, npz, drop=("params.npy",), add=[("params.npy", body)]))
    assert "d = s**L = 2**40 exceeds" in msg
    params = np.array([2**31, 6, 4, 2, 3], dtype="<i8")
    body = _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (5,)}, params.tobytes())
    msg = _load_error(_repack(good, npz, drop=("params.npy",), add=[("params.npy", body)]))
    assert "rule tables would hold" in msg
    # Only the dtypes the format writes (no objects, no big-endian, no structures).
    for descr in ("|O", ">i8", [("a", "<i8")], "<f8"):
        body = _npy_bytes({"descr": descr, "fortran_order": False, "shape": (6, 4, 2)}, b"")
        msg = _load_error(_repack(good, npz, drop=("rules_0.npy",), add=[("rules_0.npy", body)]))
        assert "dtype" in msg or "Object" in msg or "pickle" in msg, msg


def test_zip_bombs_are_not_inflated(tmp_path):
    good = _save(tmp_path, "good.npz")
    header = _npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (6, 4, 2)})
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            if info.filename != "rules_0.npy":
                zout.writestr(info.filename, zin.read(info))
        zi = zipfile.ZipInfo("rules_0.npy")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with zout.open(zi, "w", force_zip64=True) as f:
            f.write(header)
            zeros = bytes(1 << 20)
            for _ in range(256):  # 256 MiB of zeros, about 256 KiB deflated
                f.write(zeros)
    assert bomb.stat().st_size < 2 << 20
    assert "more than its shape" in _load_error(bomb)  # refused before inflating
    # The same bomb with its directory lying (file_size patched to the size the
    # header allows): the ZIP layer stops there and the CRC fails.
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(lying, "w") as zout:
        for info in zin.infolist():
            if info.filename != "rules_0.npy":
                zout.writestr(info.filename, zin.read(info))
        zout.writestr(
            zipfile.ZipInfo("rules_0.npy"), header + bytes(64 << 20), zipfile.ZIP_DEFLATED
        )
    data = bytearray(lying.read_bytes())
    at = -1
    while True:
        at = data.find(b"PK\x01\x02", at + 1)
        (name_len,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + name_len] == b"rules_0.npy":
            break
    struct.pack_into("<I", data, at + 24, len(header) + 6 * 4 * 2 * 8)
    lying.write_bytes(bytes(data))
    assert "CRC" in _load_error(lying)


def test_hostile_json(tmp_path):
    path = tmp_path / "g.json"
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        path.write_text(text)
        assert "nested deeper" in _load_error(path)
    doc = json.loads(_save(tmp_path, "g.json").read_text())
    doc["v"] = "6" * 5000
    path.write_text(json.dumps(doc).replace('"' + "6" * 5000 + '"', "6" * 5000))
    _load_error(path)  # a 5000-digit integer literal
    path.write_bytes(b"\xff\xfe{}")
    _load_error(path)
    path.write_text("")
    _load_error(path)


def test_oversized_files_are_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(grammar_mod, "_MAX_JSON_BYTES", 1000)
    path = _save(tmp_path, "g.json")
    assert "more than any grammar" in _load_error(path)


# --- big indices --------------------------------------------------------------------------


@pytest.mark.parametrize(("m", "L"), [(2, 20), (3, 18)])
def test_big_rank_round_trip(m, L):
    g = RHM(m, 1, m, 2, L, seed=0)
    x = g.sample(3, seed=1, unique=True)
    idx = g.rank(x)
    assert g.unrank(idx).tolist() == x.tolist()
    last = g.num_strings - 1
    assert g.rank(g.unrank(last)) == [last]
    assert g.rank(g.unrank([0, 1])) == [0, 1]
    # Messages never print the million-digit num_strings.
    with pytest.raises(ValueError, match=r"num_strings = a \d+-bit number"):
        g.unrank(g.num_strings)
    with pytest.raises(ValueError, match="negative"):
        g.unrank(-g.num_strings)
