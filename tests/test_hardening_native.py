"""Requests that would need more memory than the process can get are refused with a
ValueError saying how much (never an abort), integers that do not fit are ValueErrors
naming the parameter, and booleans, bytes and arrays of the wrong rank are refused.

The memory cases run in a subprocess under a 4 GiB address-space limit, as a careless
user's call would on a small machine: the process must survive and print the refusal."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rhmfast
from rhmfast import RHM, TrainingIndex, block_counts, kgram_counts, kgram_counts_all

G = RHM(6, 6, 4, 2, 3, seed=0)
X = G.sample(8, seed=0)

LIMITED = """
import resource, numpy as np, rhmfast
lim = 4 << 30
resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
rng = np.random.default_rng(0)
try:
    {call}
except ValueError as e:
    print("REFUSED", e)
"""


def _limited(call: str, expect: str = "REFUSED") -> str:
    if sys.platform != "linux":
        pytest.skip("address-space limits are a Linux test")
    code = textwrap.dedent(LIMITED).format(call=call)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"process died ({r.returncode}): {r.stderr[-2000:]}"
    assert expect in r.stdout, r.stdout
    return r.stdout


@pytest.mark.parametrize(
    ("call", "param"),
    [
        ("rhmfast.kgram_counts(rng.integers(0, 200, (1, 2**17)), 2**16)", "k"),
        ("rhmfast.kgram_counts_all(rng.integers(0, 6, (1, 4096)))", "max_k"),
        ("rhmfast.TrainingIndex(rng.integers(0, 6, (1, 4096))).kgram_counts(max_k=4096)", "max_k"),
        ("rhmfast.TrainingIndex(rng.integers(0, 16, (2**25, 8), dtype=np.uint8))", "train"),
    ],
)
def test_oversized_requests_are_refused_not_aborted(call, param):
    out = _limited(call)
    assert f"{param}:" in out and "GiB" in out and "too large to allocate" in out


def test_sparse_index_file_with_a_consistent_header_is_refused(tmp_path):
    # a 6 GiB sparse file whose header agrees with its length: refused before reading
    path = tmp_path / "big.idx"
    small = tmp_path / "small.idx"
    TrainingIndex(np.array([[0, 1, 2, 3, 0, 1, 2, 3]])).save(small)
    header = bytearray(small.read_bytes()[:52])
    num, d = 119_304_647, 8
    header[16:32] = struct.pack("<QQ", num, d)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(52 + 6 * num * (d + 1))
    out = _limited(f"rhmfast.TrainingIndex.load({str(path)!r})")
    assert "path:" in out and "GiB" in out


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: kgram_counts(X, 2**70), ValueError, r"k = \d+ must be in"),
        (lambda: kgram_counts(X, -1), ValueError, r"k = -1 must be in"),
        (lambda: kgram_counts(X, True), TypeError, "k: expected an integer, got a bool"),
        (lambda: kgram_counts(X, 1.5), TypeError, "k: expected an integer, got float"),
        (lambda: block_counts(X, 2**70, 1), ValueError, r"s = \d+ must be in"),
        (lambda: block_counts(X, 2, -1), ValueError, r"level = -1 must be in"),
        (lambda: kgram_counts_all(X, max_k=True), TypeError, "max_k: expected an integer"),
        (lambda: TrainingIndex(X).kgram_counts(max_k=-1), ValueError, r"max_k = -1 must be in"),
        (lambda: TrainingIndex(X).kgram_counts(max_k=2**70), ValueError, "max_k = "),
        (lambda: TrainingIndex(X).kgram_counts(max_k=True), TypeError, "max_k: expected an integer"),
        (lambda: TrainingIndex(X).kgram_counts(max_k=1.5), TypeError, "max_k: expected an integer"),
        (lambda: G.unrank(b"\x05"), TypeError, "i: expected an integer or a sequence"),
        (lambda: G.unrank("5"), TypeError, "i: expected an integer or a sequence"),
        (lambda: G.kgram_probs(np.zeros((2, 2, 2), np.int64)), ValueError, r"patterns\[0\]: expected a 1-D"),
        (lambda: G.kgram_probs([np.zeros((2, 2), np.int64)]), ValueError, r"patterns\[0\]: expected a 1-D"),
        (lambda: TrainingIndex(X).lookup(X[:, :4]), ValueError, "length 4, the training strings 8"),
        (lambda: rhmfast.memorized(X[:, :4], X), ValueError, "length 4, the training strings 8"),
    ],
)
def test_bad_scalars_and_shapes(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_index_kgram_counts_counts_first_when_the_worst_case_does_not_fit():
    # one constant string of 4096 tokens: every k-gram distinct would need ~43 GiB, the
    # real answer is one k-gram per k; it must be computed, not refused
    code = (
        "r = rhmfast.TrainingIndex(np.zeros((1, 4096), np.uint8)).kgram_counts(max_k=4096)\n"
        "    assert [c.tolist() for _, c in r.values()] == [[4097 - k] for k in range(1, 4097)]\n"
        "    print('computed')"
    )
    _limited(code, expect="computed")
