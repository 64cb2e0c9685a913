"""The one reader of untrusted files (rhmfast._io.untrusted) against hostile inputs, and
the command line on hostile sample files: every failure is one ValueError naming the
file (and the line), raised before anything is allocated or written."""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib
import pickle
import struct
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import pytest
from cli_errors import fails
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rhmfast.data as D
from rhmfast._io import jsonfile, untrusted
from rhmfast._io import toml as iotoml
from rhmfast._io.untrusted import InvalidFileError
from rhmfast.analysis import rundir

HYP = settings(deadline=None, max_examples=60, suppress_health_check=list(HealthCheck))


def npy_bytes(header: dict | None = None, payload: bytes = b"", *, raw_header: bytes | None = None) -> bytes:
    if raw_header is not None:
        return b"\x93NUMPY\x01\x00" + len(raw_header).to_bytes(2, "little") + raw_header + payload
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def save_npy(path: pathlib.Path, a: np.ndarray) -> pathlib.Path:
    np.save(path, a, allow_pickle=True)
    return path


def refused(fn, *args, match: str | None = None, **kw) -> str:
    """The message of the InvalidFileError ``fn`` raises (and nothing else)."""
    with pytest.raises(InvalidFileError) as err:
        fn(*args, **kw)
    text = str(err.value)
    assert "\n" not in text and "allow_pickle" not in text
    if match is not None:
        assert match in text, text
    return text


# ---- .npy ---------------------------------------------------------------------------------


def test_npy_round_trips_and_fortran_order(tmp_path):
    for a in (np.arange(12, dtype=">i2").reshape(3, 4), np.eye(3), np.zeros((0, 5), np.uint8),
              np.array(7), np.array([True, False]), np.array(["ab", "c"])):
        got = untrusted.read_npy(save_npy(tmp_path / "a.npy", a), max_elements=100)
        assert got.dtype == a.dtype and got.shape == a.shape and (got == a).all()
        assert got.flags.writeable
    f = np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3))
    p = save_npy(tmp_path / "f.npy", f)
    np.testing.assert_array_equal(untrusted.read_npy(p, max_elements=6), f)
    refused(untrusted.read_npy, p, max_elements=6, allow_fortran=False, match="Fortran order")


def test_npy_header_declaring_huge_shapes_is_refused_before_allocating(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (10**13,)}))
    t0 = time.perf_counter()
    msg = refused(untrusted.read_npy, p, max_elements=2**31)
    assert time.perf_counter() - t0 < 1
    assert str(p) in msg and "shape (10000000000000,), 10000000000000 elements" in msg
    assert "more than the limit of 2147483648 elements" in msg
    # within the element limit, but the file does not hold the data the header declares
    p.write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (1000, 1000)}))
    assert "is truncated" in refused(untrusted.read_npy, p, max_elements=10**7)
    p.write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (-1,)}))
    assert "negative shape" in refused(untrusted.read_npy, p, max_elements=10)
    # exactly at the limit is read; one over is not
    p = save_npy(tmp_path / "ok.npy", np.zeros((4, 5), np.uint8))
    assert untrusted.read_npy(p, max_elements=20).shape == (4, 5)
    refused(untrusted.read_npy, p, max_elements=19, match="20 elements, more than")


def test_npy_truncated_or_extended_at_every_byte(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(10, dtype=np.int32))
    data = (tmp_path / "a.npy").read_bytes()
    p = tmp_path / "cut.npy"
    for cut in range(len(data)):
        p.write_bytes(data[:cut])
        refused(untrusted.read_npy, p, max_elements=100)
    p.write_bytes(data + b"\0")
    refused(untrusted.read_npy, p, max_elements=100, match="1 bytes after the 40 its header declares")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: save_npy(p, np.array([1, None], dtype=object)), "holds Python objects; refused"),
        (lambda p: p.write_bytes(pickle.dumps(np.zeros(3))), "is not a .npy array"),
        (lambda p: save_npy(p, np.zeros(2, [("a", "<i8"), ("b", "<f8")])), "structured dtypes are refused"),
        (lambda p: save_npy(p, np.array(["2020-01-01"], "datetime64[D]")), "expected booleans, integers"),
        (lambda p: p.write_bytes(b"PK\x03\x04 not numpy"), "is not a .npy array (no NumPy header)"),
        (lambda p: p.write_bytes(b"\x93NUMPY\x03\x00" + bytes(20)), "version 3.0 is not read"),
        (lambda p: p.write_bytes(b"\x93NUMPY\x02\x00" + (60000).to_bytes(4, "little")), "header of 60000 bytes"),
        (lambda p: p.write_bytes(npy_bytes(raw_header=b"(" * 3000)), "unreadable .npy header"),
        (lambda p: p.write_bytes(npy_bytes(raw_header=b"-" * 3000 + b"1")), "unreadable .npy header"),
        (lambda p: p.write_bytes(npy_bytes(raw_header=b"{'descr': '<i8', 'fortran_order': 1, 'shape': (1,)}")),
         "fortran_order is not a valid bool"),
    ],
)
def test_npy_hostile_headers_and_dtypes(tmp_path, make, match):
    p = tmp_path / "x.npy"
    make(p)
    assert str(p) in refused(untrusted.read_npy, p, max_elements=10**6, match=match)


def test_npy_dtype_kinds_and_exact_dtype(tmp_path):
    p = save_npy(tmp_path / "f.npy", np.array([0.5]))
    refused(untrusted.read_npy, p, max_elements=10, kinds="iu", match="has dtype float64; expected integers")
    refused(untrusted.read_npy, p, max_elements=10, dtype="<f4", match="has dtype <f8, expected <f4")
    refused(untrusted.read_npy, p, max_elements=10, shape=(2,), match="has shape (1,), expected (2,)")
    refused(untrusted.read_npy, p, max_elements=10, ndim=2, match="expected 2 dimensions")
    with pytest.raises(FileNotFoundError):  # opening errors name the path themselves
        untrusted.read_npy(tmp_path / "missing.npy", max_elements=10)


@HYP
@given(hnp.arrays(st.sampled_from(["u1", "<u2", ">i4", "<i8", "<f8", ">f4", "?"]),
                  hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)), st.booleans())
def test_npy_reads_what_numpy_writes(a, fortran):
    a = np.asfortranarray(a) if fortran else a
    buf = io.BytesIO()
    np.save(buf, a)
    path = pathlib.Path(_tmp()) / "h.npy"
    path.write_bytes(buf.getvalue())
    got = untrusted.read_npy(path, max_elements=a.size)
    assert got.dtype == a.dtype and got.shape == a.shape
    np.testing.assert_array_equal(got, np.load(path))


@HYP
@given(st.binary(max_size=200))
def test_npy_random_bytes_after_the_magic(blob):
    path = pathlib.Path(_tmp()) / "r.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + blob)
    try:
        untrusted.read_npy(path, max_elements=100)
    except InvalidFileError:
        pass


def _tmp() -> str:
    return tempfile.mkdtemp()


# ---- .npz ---------------------------------------------------------------------------------


def _central(data: bytes, name: str) -> int:
    """The offset of ``name``'s central directory entry."""
    at = -1
    while True:
        at = data.index(b"PK\x01\x02", at + 1)
        (name_len,) = struct.unpack_from("<H", data, at + 28)
        if data[at + 46 : at + 46 + name_len] == name.encode():
            return at


def test_npz_round_trips(tmp_path):
    arrays = {"train": np.arange(12, dtype=np.uint8).reshape(3, 4), "logp": np.linspace(0, 1, 3)}
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "a.npz", **arrays)
        got = untrusted.read_npz(tmp_path / "a.npz", max_elements=100)
        assert sorted(got) == sorted(arrays)
        for k, a in arrays.items():
            np.testing.assert_array_equal(got[k], a)
        got = untrusted.read_npz(tmp_path / "a.npz", keys=("train",), optional=("logp", "x"), max_elements=100)
        assert sorted(got) == ["logp", "train"]


def test_npz_foreign_and_damaged_archives(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(pickle.dumps({"train": np.zeros(3)}))
    msg = refused(untrusted.read_npz, p, max_elements=10, match="is a Python pickle")
    assert "refused" in msg
    np.save(p.with_suffix(".npy"), np.zeros(3))
    p.write_bytes(p.with_suffix(".npy").read_bytes())
    refused(untrusted.read_npz, p, max_elements=10, match="single .npy array")
    p.write_text("hello")
    refused(untrusted.read_npz, p, max_elements=10, match="is not an .npz archive")
    np.savez(p, a=np.arange(100))
    good = p.read_bytes()
    for cut in range(0, len(good), 7):
        p.write_bytes(good[:cut])
        refused(untrusted.read_npz, p, max_elements=1000)
    p.write_bytes(good[: len(good) // 2])
    refused(untrusted.read_npz, p, max_elements=1000, match="not a readable .npz archive")
    np.savez(p, obj=np.array([{}], dtype=object))
    refused(untrusted.read_npz, p, max_elements=10, match="member 'obj' holds Python objects; refused")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("a.npy", good)
        z.writestr("notes.txt", b"hi")
    refused(untrusted.read_npz, p, max_elements=10, match="unexpected member 'notes.txt'")
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(p, "w") as z:
        z.writestr("a.npy", npy_bytes({"descr": "<i8", "fortran_order": False, "shape": ()}, bytes(8)))
        z.writestr("a.npy", npy_bytes({"descr": "<i8", "fortran_order": False, "shape": ()}, bytes(8)))
    refused(untrusted.read_npz, p, max_elements=10, match="appears twice")
    np.savez(p, a=np.arange(3))
    refused(untrusted.read_npz, p, keys=("b",), max_elements=10, match="no 'b' array (the archive holds ['a'])")


def test_npz_compression_and_encryption_flags(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.arange(3))
    data = bytearray(p.read_bytes())
    at = _central(bytes(data), "a.npy")
    bad = bytearray(data)
    bad[at + 10 : at + 12] = struct.pack("<H", 99)
    p.write_bytes(bytes(bad))
    refused(untrusted.read_npz, p, max_elements=10, match="unsupported compression 99")
    bad = bytearray(data)
    bad[at + 8 : at + 10] = struct.pack("<H", 1)
    p.write_bytes(bytes(bad))
    refused(untrusted.read_npz, p, max_elements=10, match="is encrypted")


def test_zip_bombs_are_not_inflated(tmp_path):
    header = npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (1 << 23,)})  # 64 MiB
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w") as z:
        zi = zipfile.ZipInfo("x.npy")
        zi.compress_type = zipfile.ZIP_DEFLATED
        with z.open(zi, "w") as f:
            f.write(header)
            for _ in range(64):
                f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 1 << 20
    t0 = time.perf_counter()
    refused(untrusted.read_npz, bomb, max_elements=1000, match="more than the limit of 1000 elements allows")
    assert time.perf_counter() - t0 < 1  # refused from the directory, never inflated
    # a directory that lies about the inflated size: more than deflate can give
    small = tmp_path / "small.npz"
    with zipfile.ZipFile(small, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (4,)}, bytes(32)))
    data = bytearray(small.read_bytes())
    struct.pack_into("<I", data, _central(bytes(data), "x.npy") + 24, 2**31)
    small.write_bytes(bytes(data))
    refused(untrusted.read_npz, small, max_elements=2**40, match="more than deflate can give")
    # a directory that lies within the ratio: the ZIP layer stops there and the CRC fails
    lying = tmp_path / "lying.npz"
    four = npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (4,)})
    with zipfile.ZipFile(lying, "w") as z:  # 64 KiB of data behind a header of shape (4,)
        z.writestr(zipfile.ZipInfo("x.npy"), four + bytes(1 << 16), zipfile.ZIP_DEFLATED)
    data = bytearray(lying.read_bytes())
    struct.pack_into("<I", data, _central(bytes(data), "x.npy") + 24, len(four) + 8 * 4)
    lying.write_bytes(bytes(data))
    refused(untrusted.read_npz, lying, max_elements=2**20, match="Bad CRC-32")


def test_overlapping_members_are_refused(tmp_path):
    p = tmp_path / "overlap.npz"
    np.savez(p, a=np.arange(1000), b=np.arange(3))
    data = bytearray(p.read_bytes())
    (offset_a,) = struct.unpack_from("<I", data, _central(bytes(data), "a.npy") + 42)
    struct.pack_into("<I", data, _central(bytes(data), "b.npy") + 42, offset_a)
    p.write_bytes(bytes(data))
    refused(untrusted.read_npz, p, max_elements=10**6, match="overlaps what follows it")


@HYP
@given(st.data())
def test_npz_bit_flips_read_the_same_arrays_or_fail_cleanly(data):
    buf = io.BytesIO()
    orig = {"train": np.arange(24, dtype=np.uint8).reshape(4, 6), "logp": np.linspace(-1, 0, 4)}
    (np.savez_compressed if data.draw(st.booleans()) else np.savez)(buf, **orig)
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, len(raw) * 8 - 1))
        raw[bit // 8] ^= 1 << (bit % 8)
    path = pathlib.Path(_tmp()) / "f.npz"
    path.write_bytes(bytes(raw))
    try:
        got = untrusted.read_npz(path, max_elements=1000)
    except InvalidFileError:
        return
    for k, a in got.items():  # the CRC and the header checks: a member that loads is intact
        if k in orig:
            np.testing.assert_array_equal(a, orig[k])


# ---- JSON ---------------------------------------------------------------------------------


def _depth(v) -> int:
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 0


_TEXT = st.text(alphabet=st.sampled_from(list('[]{}"\\ab\n\té') + ["\u2028"]), max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(_TEXT, ch, max_size=4),
    max_leaves=30,
)


@HYP
@given(_JSON, st.booleans(), st.sampled_from([3, 7, 1 << 20]))
def test_json_depth_is_exact_outside_strings(value, ascii_only, chunk):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    old = untrusted._CHUNK
    untrusted._CHUNK = chunk  # chunk boundaries inside strings and escapes
    try:
        assert untrusted.json_depth(raw) == _depth(value)
    finally:
        untrusted._CHUNK = old
    assert untrusted.read_json(raw, max_bytes=len(raw), max_depth=max(_depth(value), 1)) == value


@HYP
@given(st.binary(max_size=300))
def test_json_random_bytes_fail_cleanly(blob):
    try:
        untrusted.read_json(blob, max_bytes=1000, max_depth=4, name="blob")
    except InvalidFileError as err:
        assert str(err).startswith("blob: ")


def test_hostile_json(tmp_path):
    p = tmp_path / "d.json"
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        p.write_text(text)
        refused(untrusted.read_json, p, max_bytes=10**6, max_depth=64, match="nested deeper than 64 levels")
    p.write_text('["' + "[" * 100_000 + '"]')  # brackets inside a string do not nest
    assert untrusted.read_json(p, max_bytes=10**6, max_depth=1) == ["[" * 100_000]
    for tok in (str(2**70), str(2**63), str(-(2**63) - 1), "9" * 5000):
        p.write_text(f"[{tok}]")
        t0 = time.perf_counter()
        refused(untrusted.read_json, p, max_bytes=10**6, max_depth=4, match="outside the 64-bit integer range")
        assert time.perf_counter() - t0 < 1
    p.write_text(f"[{2**63 - 1}, {-(2**63)}]")
    assert untrusted.read_json(p, max_bytes=100, max_depth=4) == [2**63 - 1, -(2**63)]
    for tok in ("NaN", "Infinity", "-Infinity"):
        p.write_text(f"[{tok}]")
        refused(untrusted.read_json, p, max_bytes=100, max_depth=4, match="NaN and infinities are refused")
    p.write_bytes(b'{"a":\n "\xff"}')
    refused(untrusted.read_json, p, max_bytes=100, max_depth=4, match="line 2: is not UTF-8 text")
    p.write_text('{"a": }')
    refused(untrusted.read_json, p, max_bytes=100, max_depth=4, match="is not JSON (Expecting value at line 1")
    p.write_text("[1]" + " " * 100)
    refused(untrusted.read_json, p, max_bytes=100, max_depth=4, match="103 bytes, more than the limit of 100 bytes")


def test_jsonl_lines(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"tokens": [1, 2]}\n[3]\n')
    assert list(untrusted.iter_jsonl(p, max_bytes=100, max_depth=2)) == [(1, {"tokens": [1, 2]}), (2, [3])]
    p.write_text('{"tokens": [1, 2]}\n{"tokens": [1, ' + str(2**70) + "]}\n")
    refused(list, untrusted.iter_jsonl(p, max_bytes=1000, max_depth=4), match="line 2: number '1180591620717411303424'")
    p.write_text('{"tokens": [1, 2]}\n' + "[" * 100_000 + "\n")
    refused(list, untrusted.iter_jsonl(p, max_bytes=10**6, max_depth=8), match="line 2: nested deeper than 8")


# ---- text rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, match",
    [
        ("0 1\n2\n", "line 2: 1 tokens, but line 1 has 2 (ragged lines)"),
        ("0 1\n\n", "line 2: is empty"),
        ("0 1\n2 x\n", "line 2: token 'x' (position 1) is not an integer"),
        ("0 1\n2 ٣\n", "line 2: token '٣' (position 1) is not an integer"),  # int() would take it
        ("0 1\n2 1_0\n", "line 2: token '1_0' (position 1) is not an integer"),
        (f"0 {2**70}\n", "line 1: token '1180591620717411303424' (position 1) is outside the 64-bit"),
        (f"0 {2**63}\n", "is outside the 64-bit integer range"),
        (f"{'9' * 100000} 0\n", "line 1: token '99999999999999999999...99999999' (position 0) is outside"),
    ],
)
def test_int_rows_refused(tmp_path, text, match):
    p = tmp_path / "r.txt"
    p.write_text(text)
    refused(untrusted.read_int_rows, p, max_bytes=10**6, max_elements=100, match=match)


def test_int_rows_limits(tmp_path):
    p = tmp_path / "r.txt"
    p.write_text(f"{-(2**63)} {2**63 - 1} +5 {'0' * 30}7\n")
    assert untrusted.read_int_rows(p, max_bytes=1000, max_elements=4).tolist() == [[-(2**63), 2**63 - 1, 5, 7]]
    refused(untrusted.read_int_rows, p, max_bytes=1000, max_elements=3, match="1 lines of 4 tokens, more than the limit of 3")
    refused(untrusted.read_int_rows, p, max_bytes=10, max_elements=4, match="more than the limit of 10 bytes")
    p.write_bytes(b"0 1\n1 \xff\n")
    refused(untrusted.read_int_rows, p, max_bytes=100, max_elements=4, match="line 2: is not UTF-8 text")
    p.write_text("")
    assert untrusted.read_int_rows(p, max_bytes=100, max_elements=4).shape == (0, 0)


@HYP
@given(hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6)))
def test_int_rows_round_trip(x):
    p = pathlib.Path(_tmp()) / "x.txt"
    p.write_text("".join(" ".join(map(str, row)) + "\n" for row in x.tolist()))
    got = untrusted.read_int_rows(p, max_bytes=10**6, max_elements=x.size)
    np.testing.assert_array_equal(got, x.reshape(x.shape[0], x.shape[1]))


# ---- TOML, JSON files, errors ------------------------------------------------------------------


def test_load_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('steps = 10\n[train]\nlr = 0.5\n')
    assert iotoml.load_toml(p) == {"steps": 10, "train": {"lr": 0.5}}
    for text, match in (("a = = 1\n", "is not valid TOML"), ("a = " + "[" * 100_000 + "]" * 100_000 + "\n",
                        "nested too deeply"), ("a = " + "9" * 5000 + "\n", "is not valid TOML")):
        p.write_text(text)
        assert str(p) in refused(iotoml.load_toml, p, match=match)
    p.write_bytes(b"a = 1\nb = '\xe9'\n")
    refused(iotoml.load_toml, p, match="line 2: is not UTF-8 text")
    p.write_text("a = 1\n" * 10)
    refused(iotoml.load_toml, p, max_bytes=20, match="MAX_TOML_BYTES = 20")
    p.write_text("a = 1\n")
    assert iotoml.load_toml(p) == {"a": 1}
    p.write_text("a = = 1\n")
    with pytest.raises(ValueError, match="is not valid TOML"):
        iotoml.load_toml(p)


def test_run_directory_npz_is_read_untrusted(tmp_path):
    np.savez(tmp_path / "data.npz", train=np.array([[object()]], dtype=object))
    with pytest.raises(ValueError, match="not a readable .npz file .*holds Python objects; refused"):
        rundir.load_run(tmp_path)


@dataclasses.dataclass
class _Point:
    x: float
    where: pathlib.Path


def test_jsonable_and_write_json(tmp_path):
    value = {"a": np.arange(3), "b": (np.float32(0.5), np.bool_(True), np.int64(7)), 3: float("nan"),
             "p": _Point(float("-inf"), pathlib.Path("x/y")), True: None}
    want = {"a": [0, 1, 2], "b": [0.5, True, 7], "3": "nan", "p": {"x": "-inf", "where": "x/y"}, "true": None}
    assert jsonfile.jsonable(value) == want
    jsonfile.write_json(tmp_path / "results.json", value, indent=2)
    assert json.loads((tmp_path / "results.json").read_text()) == want
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left
    with pytest.raises(TypeError, match="cannot write a set"):
        jsonfile.jsonable({1})


@HYP
@given(_JSON, st.dictionaries(st.integers(), st.integers(), max_size=3))
def test_jsonable_is_what_json_reads_back(value, int_keys):
    """The simulator compares a record with one read back from JSON: the two agree."""
    for v in (value, int_keys, (value, [value])):
        assert jsonfile.jsonable(v) == json.loads(json.dumps(v))


def test_invalid_file_error_pickles():
    err = InvalidFileError("'a.txt'", "token 'x' is not an integer", line=3)
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == "'a.txt': line 3: token 'x' is not an integer"
    assert isinstance(back, ValueError) and back.reason == "line 3: token 'x' is not an integer"


# ---- the command line on hostile sample files ---------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return D.write(tmp_path_factory.mktemp("ds") / "ds", v=6, n=6, m=4, s=2, L=3, num_train=50, num_heldout=20)


def _huge_npy(path: pathlib.Path) -> pathlib.Path:
    path.write_bytes(npy_bytes({"descr": "<i8", "fortran_order": False, "shape": (10**13,)}))
    return path


def _deep_jsonl(path: pathlib.Path) -> pathlib.Path:
    path.write_text('{"tokens": [0, 1, 2, 3, 4, 5, 0, 1]}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    return path


def _big_txt(path: pathlib.Path, dataset: pathlib.Path) -> pathlib.Path:
    lines = (dataset / "train.txt").read_text().splitlines()
    lines[2] = " ".join([str(2**70), *lines[2].split()[1:]])
    path.write_text("\n".join(lines) + "\n")
    return path


def test_audit_refuses_a_npy_header_declaring_1e13_elements(dataset, tmp_path, capsys):
    bad = _huge_npy(tmp_path / "huge.npy")
    t0 = time.perf_counter()
    line = fails(capsys, "audit", str(dataset), str(bad), "--out", str(tmp_path / "out"), "--no-progress")
    assert time.perf_counter() - t0 < 30
    assert line == (f"rhmfast audit: error: {str(bad)!r}: its header declares shape (10000000000000,), "
                    f"10000000000000 elements, more than the limit of {D.MAX_TOKENS} tokens per file "
                    "(rhmfast.data.MAX_TOKENS)")
    assert not (tmp_path / "out").exists()


def test_audit_refuses_a_jsonl_line_of_100000_brackets(dataset, tmp_path, capsys):
    bad = _deep_jsonl(tmp_path / "deep.jsonl")
    line = fails(capsys, "audit", str(dataset), str(bad), "--out", str(tmp_path / "out"), "--no-progress")
    assert line == f"rhmfast audit: error: {str(bad)!r}: line 2: nested deeper than 8 levels of brackets"
    assert not (tmp_path / "out").exists()


def test_audit_refuses_a_text_token_of_2_to_the_70(dataset, tmp_path, capsys):
    bad = _big_txt(tmp_path / "big.txt", dataset)
    line = fails(capsys, "audit", str(dataset), str(bad), "--out", str(tmp_path / "out"), "--no-progress")
    assert line == (f"rhmfast audit: error: {str(bad)!r}: line 3: token '1180591620717411303424' (position 0) "
                    "is outside the 64-bit integer range [-2**63, 2**63)")
    assert not (tmp_path / "out").exists()


def test_audit_refuses_num_null_beyond_its_limit(dataset, tmp_path, capsys):
    import rhmfast.audit as A

    line = fails(capsys, "audit", str(dataset), str(dataset / "train.npy"), "--num-null", "1000000000",
                 "--out", str(tmp_path / "out"), "--no-progress")
    assert line == f"rhmfast audit: error: num_null = 1000000000 must be in [19, {A.MAX_NUM_NULL}]"
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match=rf"num_boot = 1000000000 must be in \[10, {A.MAX_NUM_BOOT}\]"):
        A.audit(dataset, [str(dataset / "train.npy")], num_boot=10**9)
    with pytest.raises(ValueError, match=r"step N of step=N:PATH must be in \[0, 2\*\*63 - 1\]"):
        A.parse_sample_spec("step=" + "9" * 5000 + ":x.npy")


def test_audit_hostile_files_exit_2_with_one_line_in_a_subprocess(dataset, tmp_path):
    bad = _huge_npy(tmp_path / "huge.npy")
    out = subprocess.run([sys.executable, "-m", "rhmfast", "audit", str(dataset), str(bad), "--out",
                          str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "more than the limit" in out.stderr
    assert not (tmp_path / "out").exists()


def test_data_set_manifest_names_only_its_own_files(dataset, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    doc = json.loads((copy / "dataset.json").read_text())
    doc["files"]["../../etc/passwd"] = "0" * 64
    (copy / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="lists '../../etc/passwd', which is not a file of the data set"):
        D.load(copy)
    (copy / "dataset.json").write_text("[" * 100_000)
    with pytest.raises(ValueError, match="dataset.json is unreadable \\(nested deeper than 4 levels"):
        D.load(copy)
