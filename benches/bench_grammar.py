"""Grammar benchmarks: rhmfast against vectorized numpy peers, side by side.

Peers (written here, on the same grammar and sizes):
- ``numpy_sample``: level-by-level sampler (one fancy-indexing pass per level).
- ``numpy_parse``: upward pass with a dense tuple->rule table per level giving
  per-level validity and log-probability.
Run: ``python benches/run.py grammar [--smoke]``.
"""

from __future__ import annotations

import resource
import time

import numpy as np

from rhmfast import RHM, zipf


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def numpy_sample(g: RHM, num: int, rng: np.random.Generator) -> np.ndarray:
    rules, probs, prior = g.rules, g.rule_probs, g.root_prior
    uniform = g.is_uniform
    x = rng.choice(g.n, size=(num, 1), p=prior)
    for level in range(g.L):
        if uniform:
            j = rng.integers(0, g.m, size=x.shape)
        else:
            cdf = np.cumsum(probs[level], axis=1)
            u = rng.random(x.shape)
            j = np.minimum((u[..., None] > cdf[x]).sum(-1), g.m - 1)
        x = rules[level][x, j].reshape(num, -1)
    return x.astype(g.dtype)


class NumpyParser:
    """Dense tuple -> rule-id tables per level; one vectorized pass per level."""

    def __init__(self, g: RHM) -> None:
        self.g = g
        self.weights = g.v ** np.arange(g.s - 1, -1, -1)
        self.tables = []
        for r in g.rules:
            t = np.full(g.v**g.s, -1, dtype=np.int64)
            codes = (r.reshape(-1, g.s) * self.weights).sum(-1)
            t[codes] = np.arange(len(codes))
            self.tables.append(t)
        self.logp = [np.log(p).ravel() for p in g.rule_probs]
        self.log_prior = np.log(g.root_prior)

    def __call__(self, x: np.ndarray, tree: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per-level validity and log-probability; with ``tree``, also keeps every
        level's symbols and rule indices (like ``RHM.parse``)."""
        g = self.g
        symbols, rules = [], []
        num = len(x)
        cur = x.astype(np.int64)
        valid_levels = np.zeros((num, g.L), dtype=bool)
        lp = np.zeros(num)
        for level in reversed(range(g.L)):
            tup = cur.reshape(num, -1, g.s)
            ok = (tup >= 0).all(-1)
            code = (np.maximum(tup, 0) * self.weights).sum(-1)
            rid = np.where(ok, self.tables[level][code], -1)
            good = rid >= 0
            lp += np.where(good, self.logp[level][np.maximum(rid, 0)], 0.0).sum(1)
            valid_levels[:, level] = good.all(1)
            cur = np.where(good, rid // g.m, -1)
            if tree:
                symbols.append(cur)
                rules.append(np.where(good, rid % g.m, -1))
        root = cur[:, 0]
        lp = np.where(root >= 0, lp + self.log_prior[np.maximum(root, 0)], -np.inf)
        return valid_levels, lp


def row(name: str, ours: float, peer: float | None, unit: str, amount: float) -> None:
    rate = amount / ours
    scale, prefix = (1e6, "M") if rate >= 1e6 else (1e3, "k")
    text = f"{name:<46} {ours * 1e3:9.1f} ms  {rate / scale:9.2f} {prefix}{unit}/s"
    if peer is not None:
        text += f"   numpy {amount / peer / 1e6:8.2f} M{unit}/s   ratio {peer / ours:6.1f}x"
    print(text, flush=True)


def main(smoke: bool) -> None:
    num = 20_000 if smoke else 1_000_000
    repeat = 1 if smoke else 3
    print(f"{'case':<46} {'rhmfast':>12}  {'rate':>13}")
    for label, probs in [("uniform", None), ("zipf a=1", zipf(4, 1.0))]:
        g = RHM(6, 6, 4, 2, 4, seed=0, rule_probs=probs)
        rng = np.random.default_rng(0)
        peer = best_of(lambda: numpy_sample(g, num, rng), repeat)  # noqa: B023
        ours = best_of(lambda: g.sample(num, seed=1), repeat)  # noqa: B023
        row(f"sample v6 n6 m4 s2 L4 {label}, {num} strings", ours, peer, "tok", num * g.d)

        x = g.sample(num, seed=2)
        parser = NumpyParser(g)
        vl, lp = parser(x)
        c = g.check(x)
        assert np.array_equal(vl, c.valid_levels) and np.allclose(lp, c.log_prob)
        bad = x.copy()
        bad[::3, 5] = (bad[::3, 5] + 1) % 6
        vl, lp = parser(bad)
        c = g.check(bad)
        assert np.array_equal(vl, c.valid_levels) and np.array_equal(
            np.isinf(lp), np.isinf(c.log_prob)
        )
        peer = best_of(lambda: parser(bad), repeat)  # noqa: B023
        ours = best_of(lambda: g.check(bad), repeat)  # noqa: B023
        row(f"check (validity per level + log_prob) {label}", ours, peer, "str", num)
        peer = best_of(lambda: parser(bad, tree=True), repeat)  # noqa: B023
        ours = best_of(lambda: g.parse(bad), repeat)  # noqa: B023
        row(f"parse (+ full derivation) {label}", ours, peer, "str", num)

    g = RHM(6, 6, 4, 2, 4, seed=0)
    unum = 10_000 if smoke else 1_000_000
    ours = best_of(lambda: g.sample(unum, seed=3, unique=True), repeat)
    row(f"unique {unum} of {g.num_strings:.2e} (exact, no replacement)", ours, None, "str", unum)
    gz = RHM(6, 6, 4, 2, 4, seed=0, rule_probs=zipf(4, 1.0))
    ours = best_of(lambda: gz.sample(unum, seed=3, unique=True), repeat)
    row(f"unique {unum}, zipf a=1 (rejection of repeats)", ours, None, "str", unum)
    ours = best_of(lambda: g.rank(g.sample(unum, seed=4)), 1)
    row(f"sample + rank {unum}", ours, None, "str", unum)

    big = RHM(65536, 16, 4, 2, 10, seed=0)
    bnum = 1_000 if smoke else 100_000
    ours = best_of(lambda: big.sample(bnum, seed=0), repeat)
    row(f"sample d=1024 v=65536, {bnum} strings", ours, None, "tok", bnum * big.d)
    xb = big.sample(bnum, seed=0)
    ours = best_of(lambda: big.check(xb), repeat)
    row(f"check d=1024 v=65536, {bnum} strings", ours, None, "str", bnum)

    # big indices: rank / unrank of strings whose number needs ~10**5 bits (near-linear
    # conversions; the quadratic ones took ~6 s for m = 3, L = 18)
    for m, L in [(2, 20), (3, 18)]:
        gb = RHM(m, 1, m, 2, L, seed=0)
        xr = gb.sample(3, seed=1, unique=True)
        ours = best_of(lambda: gb.unrank(gb.rank(xr)), 1)  # noqa: B023
        row(f"rank + unrank, m={m} L={L} ({gb.num_strings.bit_length()}-bit indices)", ours, None, "str", 3)

    many = 100_000 if smoke else 10_000_000
    t0 = time.perf_counter()
    xs = g.sample(many, seed=5)
    dt = time.perf_counter() - t0
    row(f"sample {many} strings d=16 ({xs.nbytes / 2**20:.0f} MiB out)", dt, None, "tok", xs.size)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory of this process: {peak:.2f} GiB")


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
