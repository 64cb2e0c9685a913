"""``rhmfast demo``: a short tour of the study grammar (v=6, n=6, m=4, s=2, L=4,
Zipf a=1 rule probabilities), with timings.

>>> from rhmfast.demo import run_demo
>>> run_demo(seed=0, num=20_000)  # doctest: +ELLIPSIS
RHM(v=6, n=6, m=4, s=2, L=4; non-uniform rules): d = 16 tokens, ...
"""

from __future__ import annotations

import time

import numpy as np

from rhmfast.grammar import study_grammar, zipf


def _fmt(x: np.ndarray) -> str:
    return " ".join(str(int(t)) for t in x)


def run_demo(seed: int = 0, num: int = 1_000_000) -> None:
    """Print a summary of the study grammar: size, samples with their exact
    probability and rank, a derivation, per-level validity of corrupted strings,
    exact against sampled block frequencies, and timings of ``num`` strings."""
    g = study_grammar(grammar_seed=seed, zipf_a=1.0)
    print(f"{g!r}: d = {g.d} tokens, {g.num_strings:,} distinct strings")
    print(f"rule probabilities per symbol (Zipf a=1): {np.round(zipf(4, 1.0), 3).tolist()}")
    print(f"level-0 rules of root 0: {[tuple(t) for t in g.rules[0][0].tolist()]}")

    x = g.sample(5, seed=seed)
    lp = g.log_prob(x)
    print("\nfive samples (tokens | log p | rank):")
    for row, lpi, rank in zip(x, lp, g.rank(x), strict=True):
        print(f"  {_fmt(row)} | {lpi:7.3f} | {rank}")
    p = g.parse(x[:1])
    print("derivation of the first (symbols / rule indices per level):")
    for level in range(g.L):
        print(f"  level {level}: {_fmt(p.symbols[level][0]):<16} / {_fmt(p.rules[level][0])}")

    n_eval = min(num, 100_000)
    clean = g.sample(n_eval, seed=seed + 1)
    rng = np.random.default_rng(seed)
    print(
        f"\nper-level validity of {n_eval:,} strings (columns: level 0 = root .. level {g.L - 1}):"
    )
    rows = [("clean samples", clean)]
    for k in (1, 2, 4):
        bad = clean.copy()
        for _ in range(k):
            pos = rng.integers(0, g.d, size=n_eval)
            bad[np.arange(n_eval), pos] = rng.integers(0, g.v, size=n_eval)
        rows.append((f"{k} token(s) resampled", bad))
    rows.append(
        ("uniform random tokens", rng.integers(0, g.v, size=(n_eval, g.d)).astype(np.uint8))
    )
    for name, data in rows:
        rates = g.check(data).valid_levels.mean(axis=0)
        print(f"  {name:<24} " + "  ".join(f"{r:6.3f}" for r in rates))

    level = g.L - 2
    width = g.s ** (g.L - level)
    blocks = clean.reshape(-1, width).astype(np.int64)
    codes = blocks @ (g.v ** np.arange(width - 1, -1, -1))
    uniq, first, counts = np.unique(codes, return_index=True, return_counts=True)
    top = np.argsort(counts)[::-1][:5]
    exact = g.block_probs(blocks[first[top]], level)
    print(
        f"\nmost common level-{level} blocks ({width} tokens), sampled vs exact pooled frequency:"
    )
    for i, e in zip(top, exact, strict=True):
        print(f"  {_fmt(blocks[first[i]])}  {counts[i] / len(blocks):.5f}  {e:.5f}")

    print(f"\ntimings ({num:,} strings):")
    t0 = time.perf_counter()
    big = g.sample(num, seed=seed + 2)
    t1 = time.perf_counter()
    c = g.check(big)
    t2 = time.perf_counter()
    u = g.sample(num // 10, seed=seed + 3, unique=True)
    t3 = time.perf_counter()
    print(f"  sample        {t1 - t0:7.3f} s  ({num * g.d / (t1 - t0) / 1e6:6.1f} M tokens/s)")
    print(
        f"  check + logp  {t2 - t1:7.3f} s  ({num / (t2 - t1) / 1e6:6.2f} M strings/s), all valid: {bool(c.valid.all())}"
    )
    print(f"  {len(u):,} unique  {t3 - t2:7.3f} s  (rejection of repeats: non-uniform rules)")
