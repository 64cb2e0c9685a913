"""Exact denoisers (``rhmfast.posterior``) against vectorized numpy peers, side by side.

Data: the study grammar v=6 n=6 m=4 s=2 L=4 (d=16) with the quick preset's rules (Zipf
a=1 at every level, grammar seed 0) and with uniform rules; strings sampled from it,
each token masked independently with probability 1/2 (mask id v = 6).
Peers (written here, float64, checked against rhmfast with ``np.allclose`` first):
- ``NumpyInsideOutside``: upward (inside) and downward (outside) messages on the tree,
  batched over strings; each level's rules as a dense ``(symbols, v**s)`` matrix of
  rule probabilities, so every message step is one matmul or einsum over the rules.
- ``onehot_posterior``: the training set as the prior; compatibility of every query with
  every training string by one-hot visible tokens @ one-hot training tokens, then the
  weights and the marginals by a second matmul.
Also: the CPU forward pass of the quick preset's denoiser (tree U-Net, width 128,
depth 2, built as the trainer builds it) on the same masked strings, per string.
Ratios > 1 mean rhmfast is faster. Run: ``python benches/run.py denoise [--smoke]``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from _timing import timed

from rhmfast import RHM
from rhmfast.posterior import EmpiricalPrior, GrammarPrior


def row(name: str, ours: tuple[float, float], peer: tuple[float, float], n: int, peer_name: str) -> None:
    """``ours``/``peer``: (wall, cpu) seconds for ``n`` strings."""
    print(
        f"{name:<40} rhmfast {n / ours[0]:>11,.0f} str/s ({ours[0] / n * 1e6:6.2f} us/str)"
        f"   {peer_name:<22} {n / peer[0]:>11,.0f} str/s"
        f"   wall ratio {peer[0] / ours[0]:7.1f}x   cpu ratio {peer[1] / max(ours[1], 1e-9):7.1f}x",
        flush=True,
    )


def half_masked(x: np.ndarray, v: int, rng: np.random.Generator) -> np.ndarray:
    """``x`` as int64 with each token replaced by the mask id ``v`` with probability 1/2."""
    out = x.astype(np.int64)
    out[rng.random(out.shape) < 0.5] = v
    return out


def evidence(x: np.ndarray, v: int) -> np.ndarray:
    """``(N, d, v)`` leaf likelihoods: one-hot of a seen token, all ones where masked."""
    e = np.ones((*x.shape, v))
    seen = x < v
    e[seen] = np.eye(v)[x[seen]]
    return e


class NumpyInsideOutside:
    """Exact marginals and log evidence of masked strings by inside-outside, for s = 2.

    ``T[l]`` is ``(symbols_l, v*v)``: ``T[l][A, b*v + c]`` = probability that ``A``
    rewrites to ``(b, c)``. Inside messages are rescaled to sum 1 per node (the scales'
    logs add up to the log evidence), outside messages likewise: marginals are then
    normalized products per position, unchanged by the per-node scales.
    """

    def __init__(self, g: RHM) -> None:
        assert g.s == 2, "this peer handles s = 2"
        self.g = g
        self.T = []
        for r, p in zip(g.rules, g.rule_probs, strict=True):
            t = np.zeros((r.shape[0], g.v * g.v))
            code = r[..., 0] * g.v + r[..., 1]  # (symbols, m)
            np.add.at(t, (np.arange(r.shape[0])[:, None], code), p)
            self.T.append(t)
        self.prior = g.root_prior

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g, v = self.g, self.g.v
        num = len(x)
        beta = evidence(x, v)  # level L inside messages (N, d, v)
        log_z = np.zeros(num)
        betas = [beta]
        for level in reversed(range(g.L)):
            b = betas[-1]
            pairs = (b[:, 0::2, :, None] * b[:, 1::2, None, :]).reshape(num, -1, v * v)
            up = pairs @ self.T[level].T  # (N, nodes, symbols)
            scale = up.sum(-1, keepdims=True)
            ok = scale > 0
            up = np.where(ok, up / np.where(ok, scale, 1.0), 0.0)
            with np.errstate(divide="ignore"):
                log_z += np.log(np.where(ok, scale, 0.0)).sum((1, 2))
            betas.append(up)
        betas.reverse()  # betas[l]: level l, (N, s**l, symbols)
        root = betas[0][:, 0, :] @ self.prior
        with np.errstate(divide="ignore"):
            log_z += np.log(root)
        alpha = np.broadcast_to(self.prior, (num, 1, len(self.prior)))
        for level in range(g.L):
            m = (alpha @ self.T[level]).reshape(num, -1, v, v)  # (N, nodes, b, c)
            b = betas[level + 1]
            left = np.einsum("nkbc,nkc->nkb", m, b[:, 1::2])
            right = np.einsum("nkbc,nkb->nkc", m, b[:, 0::2])
            alpha = np.stack([left, right], axis=2).reshape(num, -1, v)
            alpha = alpha / np.maximum(alpha.sum(-1, keepdims=True), 1e-300)
        joint = alpha * betas[g.L]
        tot = joint.sum(-1, keepdims=True)
        marg = np.where(tot > 0, joint / np.where(tot > 0, tot, 1.0), 1.0 / v)
        return marg, log_z


def onehot_posterior(
    train: np.ndarray, v: int, x: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The empirical posterior by two matrix products over one-hot tokens."""
    p, d = train.shape
    eye = np.eye(v, dtype=np.float32)
    t = eye[train].reshape(p, d * v)
    seen = x < v
    q = np.zeros((len(x), d, v), dtype=np.float32)
    q[seen] = eye[x[seen]]
    matches = q.reshape(len(x), d * v) @ t.T  # exact small integers in float32
    w = np.ones(p) if weights is None else np.asarray(weights, dtype=np.float64)
    compat = np.where(matches == seen.sum(1, keepdims=True), w, 0.0)  # (Q, P) float64
    mass = compat.sum(1)
    marg = (compat @ t.astype(np.float64)).reshape(len(x), d, v)
    ok = mass > 0
    marg = np.where(ok[:, None, None], marg / np.where(ok, mass, 1.0)[:, None, None], 1.0 / v)
    with np.errstate(divide="ignore"):
        log_ev = np.log(mass) - np.log(w.sum())
    return marg, log_ev


def same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(
        np.allclose(a[0], b[0], atol=1e-10)
        and np.array_equal(np.isinf(a[1]), np.isinf(b[1]))
        and np.allclose(a[1][np.isfinite(a[1])], b[1][np.isfinite(b[1])])
    )


def quick_config() -> Any:
    """The quick preset's TrainConfig (tree U-Net width 128, depth 2, Zipf a=1 grammar)."""
    from rhmfast.diffusion.config import TrainConfig
    from rhmfast.experiments.presets import TRAIN

    return TrainConfig.from_dict({**TRAIN["quick"], "run_dir": "unused"})


def unet_forward(x: np.ndarray, v: int, batch: int) -> tuple[float, float, int]:
    """Best-of-3 (wall, cpu) seconds of one forward pass over ``x`` in batches, and the
    parameter count, of the quick preset's denoiser built as the trainer builds it."""
    import torch

    from rhmfast.diffusion.models import count_params
    from rhmfast.diffusion.processes import MaskedProcess
    from rhmfast.diffusion.trainer import model_for

    cfg = quick_config()
    torch.manual_seed(0)
    model = model_for(cfg, MaskedProcess(v), x.shape[1]).eval()
    xt = torch.from_numpy(x)

    def run() -> None:
        with torch.inference_mode():
            for i in range(0, len(xt), batch):
                model(xt[i : i + batch])

    run()  # warm-up (allocator, kernels)
    t, _ = timed(run, 3)
    return t[0], t[1], count_params(model)


def main(smoke: bool = False) -> None:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    v = 6
    num = 500 if smoke else 10_000
    n_check = 200 if smoke else 500
    repeat = 1 if smoke else 3
    threads = int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1))
    print(f"{threads} rayon threads, torch {torch.get_num_threads()} threads; tokens masked with p = 1/2")

    # 1. grammar prior: exact inside-outside
    from rhmfast.trainset import make_grammar

    study = None
    quick = make_grammar(quick_config())  # the quick preset's grammar: Zipf a=1, every level
    for label, g in [("quick preset, zipf a=1", quick), ("uniform", RHM(6, 6, 4, 2, 4, seed=0))]:
        rng = np.random.default_rng(0)
        x = half_masked(g.sample(num, seed=1), v, rng)
        prior, peer = GrammarPrior(g), NumpyInsideOutside(g)
        check = x[:n_check].copy()
        check[: n_check // 4, 3] = (g.sample(1, seed=9)[0, 3] + 1) % v  # some impossible
        ours_out = prior.posterior(check, mask_id=v)
        assert same((ours_out.marginals, ours_out.log_evidence), peer(check)), label
        assert np.isfinite(prior.posterior(x[:n_check], mask_id=v).log_evidence).all()
        t_peer, _ = timed(lambda: peer(x), repeat)  # noqa: B023
        t_ours, _ = timed(lambda: prior.posterior(x, mask_id=v), repeat)  # noqa: B023
        row(f"grammar posterior, {label}", t_ours, t_peer, num, "numpy inside-outside")
        if study is None:
            study = (x, t_ours)

    assert study is not None
    x, t_ours = study
    batch = quick_config().batch_size  # the preset's training batch (128)
    f_wall, f_cpu, params = unet_forward(x if not smoke else x[:256], v, batch)
    n_f = len(x) if not smoke else 256
    per_f, per_o = f_wall / n_f, t_ours[0] / len(x)
    print(
        f"{'vs quick preset U-Net forward':<40} rhmfast {per_o * 1e6:6.2f} us/str   tree U-Net "
        f"{params / 1e6:.2f}M params, batch {batch}, one forward pass {per_f * 1e6:6.2f} us/str"
        f"   wall ratio {per_f / per_o:6.1f}x   cpu ratio {f_cpu / n_f / max(t_ours[1] / len(x), 1e-12):6.1f}x",
        flush=True,
    )

    # 2. empirical prior: bitsets vs one-hot matrix products
    g = quick
    n_train = 2_000 if smoke else 20_000
    n_q = 200 if smoke else 2_000
    train = g.sample(n_train, seed=2, unique=True)
    rng = np.random.default_rng(1)
    fresh = g.sample(n_q // 2, seed=3)
    picked = train[rng.integers(0, n_train, size=n_q - n_q // 2)]
    q = half_masked(np.concatenate([picked, fresh]), v, rng)
    weights = rng.random(n_train) + 0.1
    for w in (None, weights):
        post = EmpiricalPrior(train, v, weights=w).posterior(q, mask_id=v)
        assert same((post.marginals, post.log_evidence), onehot_posterior(train, v, q, w))
    emp = EmpiricalPrior(train, v)
    possible = np.isfinite(emp.posterior(q, mask_id=v).log_evidence).mean()
    t_peer, _ = timed(lambda: onehot_posterior(train, v, q), 1 if smoke else 2)
    t_ours, _ = timed(lambda: emp.posterior(q, mask_id=v), repeat)
    row(f"empirical posterior, {n_train // 1000}k train", t_ours, t_peer, n_q, "one-hot matmuls")
    print(f"  (half the queries are masked training strings; {possible:.0%} of queries possible)")


if __name__ == "__main__":
    import sys

    main(smoke="--smoke" in sys.argv)
