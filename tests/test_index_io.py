"""Saving and loading an index; bad input gives clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from rhmfast import TrainingIndex, memorized


@pytest.fixture
def train():
    return np.random.default_rng(3).integers(0, 5, size=(300, 16))


def test_save_load_roundtrip(tmp_path, train):
    index = TrainingIndex(train)
    path = tmp_path / "train.idx"
    index.save(path)
    back = TrainingIndex.load(path)
    assert (back.suffix_array == index.suffix_array).all()
    assert (back.lcp == index.lcp).all()
    q = train[::7]
    assert all((a == b).all() for a, b in zip(back.longest_match(q), index.longest_match(q)))
    assert (back.lookup(q)[0] == np.arange(0, 300, 7)).all() or (memorized(q, back)).all()
    assert not list(tmp_path.glob("*.tmp"))


def test_large_alphabet_roundtrip(tmp_path):
    x = (np.arange(4000, dtype=np.int64).reshape(500, 8) * 1_000_003) % (2**32 - 5)
    index = TrainingIndex(x)
    index.save(tmp_path / "big.idx")
    back = TrainingIndex.load(tmp_path / "big.idx")
    assert back.lookup(x[[4, 400]])[0].tolist() == [4, 400]
    assert back.count([x[3, 2:5], np.array([2**32 + 7])]).tolist() == [1, 0]


@pytest.mark.parametrize("cut", [0, 7, 40, 51, 60, -1])
def test_truncated_file_is_a_value_error(tmp_path, train, cut):
    path = tmp_path / "t.idx"
    TrainingIndex(train).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: cut % len(data)])
    with pytest.raises(ValueError, match="invalid file"):
        TrainingIndex.load(path)


def test_foreign_edited_and_versioned_files_are_rejected(tmp_path, train):
    path = tmp_path / "t.idx"
    TrainingIndex(train).save(path)
    data = bytearray(path.read_bytes())
    cases = {
        "foreign": b"PK\x03\x04" + bytes(data[4:]),
        "version": bytes(data[:8]) + (99).to_bytes(4, "little") + bytes(data[12:]),
        "huge": bytes(data[:16]) + (2**31).to_bytes(8, "little") + bytes(data[24:]),
        "edited": bytes(data[:-5]) + bytes([data[-5] ^ 0xFF]) + bytes(data[-4:]),
        "appended": bytes(data) + b"\0" * 8,
    }
    messages = {"foreign": "format tag", "version": "version 99", "huge": "sizes", "edited": "checksum", "appended": "header implies"}
    for name, blob in cases.items():
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=messages[name]):
            TrainingIndex.load(path)
    with pytest.raises(OSError):
        TrainingIndex.load(tmp_path / "missing.idx")


@pytest.mark.parametrize(
    "train, exc, match",
    [
        ([[1, 2], [3]], ValueError, "ragged"),
        (np.zeros((0, 4), dtype=np.int64), ValueError, "empty"),
        (np.zeros((3, 0), dtype=np.int64), ValueError, "empty"),
        ([[-1, 2]], ValueError, "outside"),
        ([[2**32, 2]], ValueError, "outside"),
        (np.array([1, 2, 3]), ValueError, "2-D"),
        (np.zeros((2, 2, 2), dtype=int), ValueError, "2-D"),
        (np.array([[0.5, 1.0]]), TypeError, "integer"),
        ([["a", "b"]], TypeError, "integer"),
    ],
)
def test_bad_training_sets(train, exc, match):
    with pytest.raises(exc, match=match):
        TrainingIndex(train)


def test_bad_queries():
    index = TrainingIndex(np.array([[0, 1, 2], [2, 1, 0]]))
    with pytest.raises(ValueError, match="samples"):
        index.lookup(np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="samples"):
        index.longest_match(np.array([[0.0, 1.0]]))
    with pytest.raises(TypeError, match="patterns"):
        index.count(np.array([0, 1]))
    with pytest.raises(ValueError, match="patterns\\[1\\]"):
        index.count([np.array([0]), np.array([[0]])])
    # another length cannot be a copy: refused, naming both lengths
    with pytest.raises(ValueError, match="length 2, the training strings 3"):
        index.lookup(np.array([[0, 1]]))
    with pytest.raises(ValueError, match="length 4, the training strings 3"):
        memorized(np.array([[0, 1, 2, 0]]), index)
    # defined answers: unknown and huge tokens, empty inputs
    assert index.lookup(np.array([[0, 1, 2**40]]))[0].tolist() == [-1]
    assert index.lookup(np.array([[0, 1, 2]], dtype=np.uint64))[0].tolist() == [0]
    assert index.longest_match(np.array([[9, 2, 1, 0, 9]]))[0].tolist() == [3]
    assert [a.shape for a in index.longest_match(np.zeros((0, 3), dtype=np.int64))] == [(0,)] * 3
    assert index.count([]).tolist() == []
    assert index.count([np.array([0, 1, 2, 0])]).tolist() == [0]
    assert index.count([np.array([], dtype=np.int64)]).tolist() == [8]
