"""Suffix index and exact counts against their peers, on the same data in one run.

Data: uniform random strings of length 32 over 16 symbols (200,000 strings; the
one-hot peer uses 20,000 training strings, as in the issue). Peers: pydivsufsort
(suffix array; ``sa_search`` for counts and naive longest-match extension), numpy
packed-code ``np.unique`` for every k = 1..8, a Python set of bytes, and the one-hot
matrix-product copy check. Ratios > 1 mean rhmfast is faster.
"""

from __future__ import annotations

import os

import numpy as np
from _timing import timed

import rhmfast


def row(name: str, ours: float, peer: float, unit: str, n: float, peer_name: str) -> None:
    """``ours``/``peer``: (wall, cpu) seconds."""
    print(
        f"{name:<28} rhmfast {n / ours[0]:>13,.0f} {unit}/s   {peer_name:<28} {n / peer[0]:>13,.0f} {unit}/s"
        f"   wall ratio {peer[0] / ours[0]:7.1f}x   cpu ratio {peer[1] / max(ours[1], 1e-9):7.1f}x",
        flush=True,
    )


def numpy_unique_all_k(x: np.ndarray, v: int, max_k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    x64 = x.astype(np.int64)
    for k in range(1, max_k + 1):
        codes = np.zeros((x.shape[0], x.shape[1] - k + 1), dtype=np.int64)
        for j in range(k):
            codes = codes * v + x64[:, j : x.shape[1] - k + 1 + j]
        out.append(np.unique(codes.ravel(), return_counts=True))
    return out


def onehot_copies(samples: np.ndarray, train: np.ndarray, v: int) -> np.ndarray:
    eye = np.eye(v, dtype=np.float32)
    t = eye[train].reshape(train.shape[0], -1)
    s = eye[samples].reshape(samples.shape[0], -1)
    hits = (s @ t.T) == train.shape[1]
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def main(smoke: bool = False) -> None:
    from pydivsufsort import divsufsort, sa_search

    rng = np.random.default_rng(0)
    v, d = 16, 32
    n_train = 2_000 if smoke else 200_000
    repeat = 1 if smoke else 3
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1))
    x = rng.integers(0, v, size=(n_train, d)).astype(np.uint8)
    tokens = n_train * (d + 1)
    print(f"{n_train} strings x {d} tokens over {v} symbols, {threads} rayon threads")

    # suffix array (+ LCP) build
    text = np.concatenate([x + 1, np.zeros((n_train, 1), np.uint8)], axis=1).ravel()
    t_peer, sa_peer = timed(lambda: divsufsort(text), repeat)
    t_ours, index = timed(lambda: rhmfast.TrainingIndex(x), repeat)
    row("SA+LCP build vs SA alone", t_ours, t_peer, "tok", tokens, "pydivsufsort divsufsort")
    print(f"  index memory {index.memory_bytes / tokens:.2f} bytes/token (persistent)")
    # the same on grammar samples with a fat tail (Zipf a=2: many repeated strings and
    # long shared prefixes, the chunk sort's harder case)
    xr = rhmfast.sample(n_train, seed=1, v=v, n=v, m=4, s=2, L=5, zipf_a=2.0).astype(np.uint8)
    text_r = np.concatenate([xr + 1, np.zeros((n_train, 1), np.uint8)], axis=1).ravel()
    t_peer, _ = timed(lambda: divsufsort(text_r), repeat)
    t_ours, _ = timed(lambda: rhmfast.TrainingIndex(xr), repeat)
    row("  same, RHM Zipf a=2 samples", t_ours, t_peer, "tok", tokens, "pydivsufsort divsufsort")

    # all k-gram counts, k = 1..8
    max_k = 8
    t_peer, ref = timed(lambda: numpy_unique_all_k(x, v, max_k), 1)
    t_ours, spec = timed(lambda: rhmfast.kgram_counts_all(x, max_k=max_k), repeat)
    assert all(len(spec[k][1]) == len(ref[k - 1][1]) for k in spec)
    row("all k-gram counts k=1..8", t_ours, t_peer, "tok", n_train * d, "numpy packed np.unique")

    # exact-copy lookups
    q = np.concatenate([x[: n_train // 2], rng.integers(0, v, size=(n_train // 2, d)).astype(np.uint8)])
    train_set = {r.tobytes() for r in x}
    t_peer, hits_peer = timed(lambda: [r.tobytes() in train_set for r in q], repeat)
    t_ours, (which, _) = timed(lambda: index.lookup(q), repeat)
    assert ((which >= 0) == np.array(hits_peer)).all()
    row("lookup", t_ours, t_peer, "q", len(q), "Python set of bytes")

    small = x[: (2_000 if smoke else 20_000)]
    small_index = rhmfast.TrainingIndex(small)
    qs = np.concatenate([small[:500], rng.integers(0, v, size=(500, d)).astype(np.uint8)])
    t_peer, w_peer = timed(lambda: onehot_copies(qs, small, v), 1)
    t_ours, (w_ours, _) = timed(lambda: small_index.lookup(qs), repeat)
    assert ((w_ours >= 0) == (w_peer >= 0)).all()
    row("lookup vs 20k train", t_ours, t_peer, "q", len(qs), "one-hot matrix product")

    # substring counts (patterns of 1..12 tokens cut from the data)
    n_pat = 2_000 if smoke else 20_000
    lens = rng.integers(1, 13, size=n_pat)
    rows_ = rng.integers(0, n_train, size=n_pat)
    offs = rng.integers(0, d - 12, size=n_pat)
    pats = [x[r, o : o + k] for r, o, k in zip(rows_, offs, lens)]
    t_peer, c_peer = timed(lambda: [sa_search(text, sa_peer, p + 1)[0] for p in pats], 1)
    t_ours, c_ours = timed(lambda: index.count(pats), repeat)
    assert c_ours.tolist() == c_peer
    row("substring counts (list)", t_ours, t_peer, "q", n_pat, "pydivsufsort sa_search")
    same_len = np.stack([x[r, o : o + 8] for r, o in zip(rows_, offs)])
    big = np.tile(same_len, (10 if not smoke else 1, 1))
    t_ours2, _ = timed(lambda: index.count(big), repeat)
    print(f"{'substring counts (2-D, k=8)':<28} rhmfast {len(big) / t_ours2[0]:>13,.0f} q/s  ({len(big) / t_ours2[1]:,.0f} q per CPU-second)")

    # longest match: the peer extends each start position while sa_search finds it
    n_lm = 200 if smoke else 2_000
    samples = rng.integers(0, v, size=(n_lm, d)).astype(np.uint8)
    samples[: n_lm // 2, 8:24] = x[rng.integers(0, n_train, size=n_lm // 2), 8:24]

    def naive_longest(s: np.ndarray) -> int:
        best = 0
        for i in range(d):
            m = best + 1
            while i + m <= d and sa_search(text, sa_peer, s[i : i + m] + 1)[0] > 0:
                best = m
                m += 1
        return best

    t_peer, l_peer = timed(lambda: [naive_longest(s) for s in samples], 1)
    many = np.tile(samples, (10 if not smoke else 1, 1))
    t_ours, (l_ours, _, _) = timed(lambda: index.longest_match(many), repeat)
    assert l_ours[:n_lm].tolist() == l_peer
    t_ours_per = (t_ours[0] * len(samples) / len(many), t_ours[1] * len(samples) / len(many))
    row("longest_match", t_ours_per, t_peer, "q", n_lm, "sa_search naive extension")
    print(f"  longest_match {len(many) / t_ours[0] / threads:,.0f} queries/s per thread (wall), {len(many) / t_ours[1]:,.0f} per CPU-second")

    # save / load
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.idx")
        t_save, _ = timed(lambda: index.save(path), 1)
        t_load, _ = timed(lambda: rhmfast.TrainingIndex.load(path), 1)
        print(f"save {t_save[0] * 1e3:.0f} ms, load (checked) {t_load[0] * 1e3:.0f} ms")


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
