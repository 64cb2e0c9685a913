"""Loss formulas, posteriors, ELBO and samplers against direct computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rhmfast.diffusion.elbo import elbo_nll
from rhmfast.diffusion.processes import D3PMProcess, MaskedProcess, Noise
from rhmfast.diffusion.sampling import categorical, sample_d3pm, sample_masked

torch.set_num_threads(1)


def fixed_logits(table: torch.Tensor):
    """A denoiser whose output at position i is table[i] whatever the input."""

    def model(x, t):
        return table[None].expand(x.shape[0], -1, -1).clone()

    return model


# ---------------------------------------------------------------- masked loss
@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**31), v=st.integers(2, 5), d=st.integers(1, 6), B=st.integers(1, 4))
def test_masked_loss_matches_direct_formula(seed, v, d, B):
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(d, v, generator=g, dtype=torch.float64)
    x0 = torch.randint(0, v, (B, d), generator=g)
    p = MaskedProcess(v)
    noise = p.draw_noise(B, d, g)
    got = p.loss(fixed_logits(table), x0, noise)
    logp = torch.log_softmax(table, -1)
    for b in range(B):
        t = float(noise.t[b])
        direct = sum(-float(logp[i, x0[b, i]]) for i in range(d) if float(noise.u[b, i]) < t) / t
        assert math.isclose(float(got[b]), direct, rel_tol=1e-5, abs_tol=1e-6)


def test_antithetic_times_cover_unit_interval():
    p = MaskedProcess(3)
    t = p.draw_noise(8, 2, torch.Generator().manual_seed(1)).t
    gaps = torch.sort(t).values.diff()
    assert torch.allclose(gaps, torch.full_like(gaps, 1 / 8))
    assert bool((t > 0).all() and (t <= 1).all())


def test_masked_corrupt_masks_with_probability_t():
    p = MaskedProcess(4)
    x0 = torch.zeros(2, 20000, dtype=torch.long)
    noise = Noise(
        torch.tensor([0.2, 0.7], dtype=torch.float64), torch.rand(2, 20000, dtype=torch.float64)
    )
    frac = (p.corrupt(x0, noise) == 4).double().mean(1)
    assert torch.allclose(frac, torch.tensor([0.2, 0.7], dtype=torch.float64), atol=0.02)


def test_block_masks_hide_whole_aligned_blocks_at_rate_t():
    d, B = 16, 4000
    plain = MaskedProcess(4).draw_noise(B, d, torch.Generator().manual_seed(3))
    # no block rows: the very same noise as a process without the option
    zero = MaskedProcess(4, (2, 4, 8), 0.0).draw_noise(B, d, torch.Generator().manual_seed(3))
    assert torch.equal(plain.u, zero.u) and torch.equal(plain.t, zero.t)
    p = MaskedProcess(4, (4,), 1.0)
    noise = p.draw_noise(B, d, torch.Generator().manual_seed(3))
    assert torch.equal(noise.t, plain.t)  # the times are not touched
    masked = noise.u < noise.t[:, None]
    blocks = masked.reshape(B, d // 4, 4)
    assert bool((blocks == blocks[:, :, :1]).all())  # every aligned 4-block all or nothing
    # each position is still masked with probability t: E[mask - t] = 0
    assert abs(float((masked.double() - noise.t[:, None]).mean())) < 0.01
    # half the rows by blocks of 2 or 8, half by tokens
    mixed = MaskedProcess(4, (2, 8), 0.5).draw_noise(B, d, torch.Generator().manual_seed(4))
    m = mixed.u < mixed.t[:, None]
    whole2 = (m.reshape(B, 8, 2) == m.reshape(B, 8, 2)[:, :, :1]).all(dim=(1, 2))
    whole8 = (m.reshape(B, 2, 8) == m.reshape(B, 2, 8)[:, :, :1]).all(dim=(1, 2))
    # rows of whole 2-blocks: the block rows (about half) plus token rows that happen to be
    # (t near 0 or 1); rows of whole halves: about a quarter plus those
    assert 0.45 < float(whole2.double().mean()) < 0.65
    assert 0.2 < float(whole8.double().mean()) < 0.4
    with pytest.raises(ValueError, match="does not divide"):
        MaskedProcess(4, (3,), 1.0).draw_noise(2, 16, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="needs block_sizes"):
        MaskedProcess(4, (), 0.5)


def test_count_sampling_draws_k_with_probability_one_over_k():
    d, B = 6, 60000
    noise = MaskedProcess(4, count_sampling=True).draw_noise(B, d, torch.Generator().manual_seed(5))
    masked = noise.u < noise.t[:, None]
    k = masked.sum(1)
    assert torch.equal(k.double(), noise.t * d)  # t records k/d exactly
    harmonic = sum(1 / j for j in range(1, d + 1))
    assert torch.allclose(noise.w, torch.full((B,), harmonic, dtype=torch.float64))
    freq = torch.bincount(k, minlength=d + 1)[1:].double() / B
    expected = torch.tensor([1 / j / harmonic for j in range(1, d + 1)], dtype=torch.float64)
    # stratified fractions put the counts within one row of B * P(k)
    assert bool(((freq - expected).abs() * B <= 1.0 + 1e-9).all())
    # given k, every position equally likely to be masked
    for j in (1, 3):
        rows = masked[k == j].double()
        assert torch.allclose(rows.mean(0), torch.full((d,), j / d, dtype=torch.float64), atol=0.02)
    with pytest.raises(ValueError, match="cannot be combined"):
        MaskedProcess(4, (2,), 0.5, count_sampling=True)


def exact_masked_nelbo(model, x0: torch.Tensor, v: int) -> float:
    """sum_k (1/k) * mean over the k-subsets M of sum_{i in M} -log p(x0_i | x0 with M masked)."""
    d = x0.shape[1]
    total = 0.0
    for k in range(1, d + 1):
        subsets = list(itertools.combinations(range(d), k))
        acc = 0.0
        for sub in subsets:
            xt = x0.clone()
            xt[0, list(sub)] = v
            logp = torch.log_softmax(model(xt, None).double(), -1)[0]
            acc += sum(-float(logp[i, x0[0, i]]) for i in sub)
        total += acc / len(subsets) / k
    return total


def context_model(table: torch.Tensor, v: int):
    """A denoiser whose output depends on the visible tokens (so the masks matter)."""

    def model(x, t):
        counts = torch.nn.functional.one_hot(x, v + 1).double().sum(1)[:, None, :v]
        return table[None] + 0.4 * counts

    return model


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31), v=st.integers(2, 4), d=st.integers(1, 5))
def test_time_and_count_sampling_estimate_the_same_nelbo(seed, v, d):
    g = torch.Generator().manual_seed(seed)
    model = context_model(torch.randn(d, v, generator=g, dtype=torch.float64), v)
    x0 = torch.randint(0, v, (1, d), generator=g)
    exact = exact_masked_nelbo(model, x0, v)
    for count in (False, True):
        p = MaskedProcess(v, count_sampling=count)
        vals = p.loss(model, x0.expand(20000, -1), p.draw_noise(20000, d, g))
        se = float(vals.std()) / math.sqrt(len(vals))
        assert abs(float(vals.mean()) - exact) < 5 * se + 1e-5 * (1 + exact)  # float32 logits


# ---------------------------------------------------------------- D3PM
def transition_matrices(p: D3PMProcess):
    K = p.K
    Q = [torch.eye(K, dtype=torch.float64)]
    for t in range(1, p.T + 1):
        b = float(p.betas[t])
        Q.append((1 - b) * torch.eye(K, dtype=torch.float64) + b / K)
    Qbar = [torch.eye(K, dtype=torch.float64)]
    for t in range(1, p.T + 1):
        Qbar.append(Qbar[-1] @ Q[t])
    return Q, Qbar


def test_d3pm_schedule_and_marginals():
    p = D3PMProcess(4, steps=200)
    assert math.isclose(float(p.betas[1]), 1e-3) and math.isclose(float(p.betas[200]), 0.1)
    _, Qbar = transition_matrices(p)
    for t in (0, 1, 50, 200):
        x0 = torch.eye(4, dtype=torch.float64)[None]  # every one-hot x0 as a row
        got = p.q_marginal(x0, torch.tensor([t]))[0]
        assert torch.allclose(got, Qbar[t], atol=1e-12)


@settings(deadline=None, max_examples=30)
@given(K=st.integers(2, 5), t=st.integers(1, 12), seed=st.integers(0, 1000))
def test_d3pm_posterior_matches_bayes(K, t, seed):
    p = D3PMProcess(K, steps=12)
    Q, Qbar = transition_matrices(p)
    g = torch.Generator().manual_seed(seed)
    x0_probs = torch.softmax(torch.randn(1, 1, K, generator=g, dtype=torch.float64), -1)
    xt = torch.randint(0, K, (1, 1), generator=g)
    got = p.posterior(xt, x0_probs, torch.tensor([t]))[0, 0]
    # direct: p(x_{t-1}=j | x_t) ∝ sum_a x0_probs[a] Qbar_{t-1}[a, j] Q_t[j, x_t]
    direct = torch.zeros(K, dtype=torch.float64)
    for j in range(K):
        for a in range(K):
            direct[j] += x0_probs[0, 0, a] * Qbar[t - 1][a, j] * Q[t][j, xt[0, 0]]
    assert torch.allclose(got, direct / direct.sum(), atol=1e-12)


def test_d3pm_loss_matches_direct_kl():
    K, d, T = 3, 2, 10
    p = D3PMProcess(K, steps=T)
    g = torch.Generator().manual_seed(3)
    table = torch.randn(d, K, generator=g, dtype=torch.float64)
    x0 = torch.tensor([[0, 2], [1, 1]])
    for t in (1, 2, 7, T):
        noise = p.noise_at(torch.full((2,), (t - 0.5) / T, dtype=torch.float64), d, g)
        assert noise.t.long().tolist() == [t, t]
        xt = p.corrupt(x0, noise)
        got = p.loss(fixed_logits(table), x0, noise).double()
        pred = torch.softmax(table, -1)
        for b in range(2):
            total = 0.0
            for i in range(d):
                tt = torch.tensor([t])
                model_post = p.posterior(xt[b : b + 1, i : i + 1], pred[i][None, None], tt)[0, 0]
                if t == 1:
                    total += -math.log(float(model_post[x0[b, i]]))
                else:
                    onehot = torch.nn.functional.one_hot(x0[b, i], K).double()[None, None]
                    true_post = p.posterior(xt[b : b + 1, i : i + 1], onehot, tt)[0, 0]
                    total += sum(
                        float(q) * math.log(float(q) / float(m))
                        for q, m in zip(true_post, model_post, strict=True)
                        if q > 0
                    )
            ab = float(p.alpha_bar[T])
            hit, miss = ab + (1 - ab) / K, (1 - ab) / K
            prior = d * (hit * math.log(hit * K) + (K - 1) * miss * math.log(miss * K))
            assert math.isclose(float(got[b]), T * total + prior, rel_tol=1e-5)


# ---------------------------------------------------------------- ELBO on product models
def product_table(v: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(d, v, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_masked_elbo_is_tight_for_a_product_model():
    # for a context-free denoiser q_i the masked ELBO equals -sum_i log q_i(x_i) in expectation
    v, d = 4, 6
    table = product_table(v, d, 0)
    x = torch.randint(0, v, (5, d), generator=torch.Generator().manual_seed(1))
    exact = -torch.log_softmax(table, -1)[torch.arange(d), x].sum(1).numpy()
    est = elbo_nll(fixed_logits(table), MaskedProcess(v), x, draws=4000, seed=0)
    np.testing.assert_allclose(est, exact, rtol=0.03)


def test_d3pm_elbo_is_tight_when_the_reverse_process_is_exact():
    # For data with independent tokens x_i ~ prior_i, the x0-parameterised reverse step
    # sum_x0 q(x_{t-1}, x_t | x0) p~(x0) equals the true q(x_{t-1} | x_t) when p~ = prior
    # (not the Bayes posterior p(x0 | x_t)); then the ELBO is -log prior(x) up to the
    # negligible mismatch between q(x_T) and the uniform prior (alpha_bar_T ~ 3e-5).
    v, d = 3, 4
    p = D3PMProcess(v, steps=200)
    assert float(p.alpha_bar[200]) < 1e-4
    logits = product_table(v, d, 2)
    prior = torch.softmax(logits, -1)
    x = torch.randint(0, v, (4, d), generator=torch.Generator().manual_seed(5))
    exact = -torch.log(prior[torch.arange(d), x]).sum(1).numpy()
    est = elbo_nll(fixed_logits(logits), p, x, draws=20000, seed=0)  # T*KL_t is noisy
    np.testing.assert_allclose(est, exact, rtol=0.03)
    # a uniform p~ is the exact reverse of uniform data: the bound is d log v for any x
    flat = elbo_nll(fixed_logits(torch.zeros(d, v, dtype=torch.float64)), p, x, draws=20000, seed=0)
    np.testing.assert_allclose(flat, d * math.log(v), rtol=0.03)


# ---------------------------------------------------------------- samplers
def test_categorical_float64_frequencies():
    probs = torch.tensor([[0.1, 0.0, 0.6, 0.3]], dtype=torch.float64).expand(200000, 4)
    u = torch.rand(200000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    idx = categorical(probs, u)
    freq = torch.bincount(idx, minlength=4).double() / 200000
    assert freq[1] == 0
    assert torch.allclose(freq, probs[0], atol=0.005)


def support_denoiser(strings: torch.Tensor, weights: torch.Tensor, v: int):
    """Exact p(x0_i | x_t) for data = `strings` with probabilities `weights`."""
    mask_id = v

    def model(x, t):
        consistent = ((x[:, None, :] == strings[None]) | (x[:, None, :] == mask_id)).all(-1)
        w = consistent.double() * weights[None]
        w = w / w.sum(1, keepdim=True)
        onehot = torch.nn.functional.one_hot(strings, v).double()  # (S, d, v)
        probs = torch.einsum("bs,sdv->bdv", w, onehot)
        return torch.log(probs.clamp_min(1e-30))

    return model


def test_masked_sampler_reproduces_a_known_distribution():
    v, d = 3, 4
    strings = torch.tensor([[0, 1, 2, 0], [0, 2, 2, 1], [1, 1, 0, 0]])
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    x, stats = sample_masked(
        support_denoiser(strings, weights, v), MaskedProcess(v), num=3000, d=d, seed=0, steps=400
    )
    which = [next((k for k in range(3) if (row == strings[k].numpy()).all()), -1) for row in x]
    counts = np.bincount(np.array(which) + 1, minlength=4)
    assert counts[0] / 3000 < 0.03  # strings outside the support need simultaneous reveals
    freq = counts[1:] / counts[1:].sum()
    np.testing.assert_allclose(freq, weights.numpy(), atol=0.03)
    assert stats["row_evals"] <= 3000 * d


def test_masked_sampler_with_d_steps_on_a_product_model():
    v, d = 4, 5
    table = product_table(v, d, 7)
    x, _ = sample_masked(fixed_logits(table), MaskedProcess(v), num=4000, d=d, seed=1)
    probs = torch.softmax(table, -1).numpy()
    for i in range(d):
        freq = np.bincount(x[:, i], minlength=v) / 4000
        np.testing.assert_allclose(freq, probs[i], atol=0.03)


@pytest.mark.parametrize("steps", [0, 3, 50])
def test_cached_sampler_equals_plain_and_saves_passes(steps):
    v, d = 3, 6
    strings = torch.randint(0, v, (5, d), generator=torch.Generator().manual_seed(2))
    model = support_denoiser(strings, torch.full((5,), 0.2, dtype=torch.float64), v)
    a, sa = sample_masked(
        model, MaskedProcess(v), num=64, d=d, seed=9, steps=steps, cache=True, batch_size=32
    )
    b, sb = sample_masked(
        model, MaskedProcess(v), num=64, d=d, seed=9, steps=steps, cache=False, batch_size=32
    )
    np.testing.assert_array_equal(a, b)
    K = steps or d
    assert sb["row_evals"] == 64 * K
    assert sa["row_evals"] <= 64 * min(K, d)
    assert sa["forward_calls"] <= 2 * min(K, d)  # two batches of 32
    if K > d:
        assert sa["row_evals"] < sb["row_evals"]
    assert (a < v).all()


def test_sampler_is_deterministic_and_seed_dependent():
    table = product_table(4, 6, 0)
    a, _ = sample_masked(fixed_logits(table), MaskedProcess(4), num=50, d=6, seed=3)
    b, _ = sample_masked(fixed_logits(table), MaskedProcess(4), num=50, d=6, seed=3)
    c, _ = sample_masked(fixed_logits(table), MaskedProcess(4), num=50, d=6, seed=4)
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_d3pm_sampler_with_exact_reverse_matches_the_prior():
    v, d = 3, 3
    p = D3PMProcess(v, steps=200)
    logits = product_table(v, d, 4)
    x, stats = sample_d3pm(fixed_logits(logits), p, num=3000, d=d, seed=0)
    assert stats["forward_calls"] == 200 * 3  # three batches of at most 1024
    prior = torch.softmax(logits, -1)
    for i in range(d):
        freq = np.bincount(x[:, i], minlength=v) / 3000
        np.testing.assert_allclose(freq, prior[i].numpy(), atol=0.035)


def test_sampler_rejects_bad_arguments():
    table = product_table(2, 2, 0)
    with pytest.raises(ValueError, match="num"):
        sample_masked(fixed_logits(table), MaskedProcess(2), num=-1, d=2, seed=0)
    with pytest.raises(ValueError, match="steps"):
        sample_masked(fixed_logits(table), MaskedProcess(2), num=1, d=2, seed=0, steps=-2)
    with pytest.raises(ValueError, match="d = 0"):
        sample_d3pm(fixed_logits(table), D3PMProcess(2), num=1, d=0, seed=0)
    with pytest.raises(ValueError, match="draws"):
        elbo_nll(fixed_logits(table), MaskedProcess(2), np.zeros((1, 2), int), draws=0, seed=0)


def test_all_strings_enumeration_helper_sanity():
    # guards the support_denoiser reference itself: with one string it is deterministic
    s = torch.tensor([[2, 0, 1]])
    x, _ = sample_masked(
        support_denoiser(s, torch.ones(1, dtype=torch.float64), 3),
        MaskedProcess(3),
        num=10,
        d=3,
        seed=0,
    )
    assert (x == s.numpy()).all()


@settings(deadline=None, max_examples=25)
@given(
    seed=st.integers(0, 2**31),
    v=st.integers(2, 4),
    d=st.integers(1, 6),
    support=st.integers(1, 4),
    steps=st.integers(0, 20),
    num=st.integers(1, 20),
    batch=st.integers(1, 8),
)
def test_cached_sampler_equals_plain_sampler(seed, v, d, support, steps, num, batch):
    g = torch.Generator().manual_seed(seed)
    strings = torch.randint(0, v, (support, d), generator=g)
    weights = torch.softmax(torch.randn(support, generator=g, dtype=torch.float64), 0)
    model = support_denoiser(strings, weights, v)
    kw = dict(num=num, d=d, seed=seed, steps=steps, batch_size=batch)
    a, sa = sample_masked(model, MaskedProcess(v), cache=True, **kw)
    b, sb = sample_masked(model, MaskedProcess(v), cache=False, **kw)
    np.testing.assert_array_equal(a, b)
    assert sa["row_evals"] <= min(sb["row_evals"], num * d)
    batches = -(-num // batch)
    assert sa["forward_calls"] <= batches * min(steps or d, d)
    assert a.shape == (num, d) and ((a >= 0) & (a < v)).all()
