"""Known-answer memorizers (``rhmfast simulate``) and the null runs fitted to a run:
the answer is known, so each property is checked against it."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_stats = pytest.importorskip("scipy.stats")

from rhmfast.analysis import load_run  # noqa: E402
from rhmfast.cli import main  # noqa: E402
from rhmfast.diffusion import TrainConfig  # noqa: E402
from rhmfast.knownanswers import memorizer  # noqa: E402
from rhmfast.knownanswers.memorizer import Memorizer, parse_schedule, string_weights  # noqa: E402
from rhmfast.knownanswers.nulls import lam_for_copy_fraction, null_runs  # noqa: E402
from rhmfast.knownanswers.simulate import simulate_run  # noqa: E402
from rhmfast.stats.sharpening import sharpened_grammar  # noqa: E402
from rhmfast.trainset import build_data  # noqa: E402

# 6 * 4**7 = 98,304 strings of 8 tokens: chance copies are rare but not impossible
BASE = dict(v=6, n=6, m=4, s=2, L=3, zipf_a=1.0, num_train=32, num_heldout=32, steps=64, first_checkpoint=16,
            checkpoints_per_octave=1, eval_samples=256, elbo_draws=2, progress=False, device="cpu")


def _cfg(tmp_path, name="run", **kw):
    return TrainConfig(**{**BASE, **kw}, run_dir=str(tmp_path / name))


def _copy_fraction(run):
    r = load_run(run)
    return r, r.copy_counts.sum(1) / r.num_samples


def test_lam_zero_copies_no_more_than_chance(tmp_path):
    cfg = _cfg(tmp_path, zipf_a=-1.0, sampling_reveal="one", eval_samples=512)
    r, _ = _copy_fraction(simulate_run(cfg, Memorizer(lam=0.0)))
    q = np.exp(r.train_logp).sum()  # one token per step: the sampler draws p_grammar exactly
    copies = int(r.copy_counts.sum())
    mean = q * r.num_samples.sum()
    assert copies <= scipy_stats.poisson.ppf(0.999, mean)
    assert r.valid_fraction.min() == 1.0  # an exact generalizer through a one-per-step sampler


@pytest.mark.parametrize("reveal", ["one", "ancestral"])
def test_lam_one_copies_only_with_one_token_per_step(tmp_path, reveal):
    r, frac = _copy_fraction(simulate_run(_cfg(tmp_path, sampling_reveal=reveal), Memorizer(lam=1.0)))
    if reveal == "one":
        assert (frac == 1.0).all()
    else:  # several tokens per step mix training strings: a perfect memorizer copies less
        assert 0.3 < frac.mean() < 1.0


def test_weighted_memorizer_copies_in_proportion_to_its_weights(tmp_path):
    mem = Memorizer(lam=1.0, tilt="logp", strength=8.0)
    run = simulate_run(_cfg(tmp_path, sampling_reveal="one", eval_samples=2048, steps=16), mem)
    r = load_run(run)
    truth = json.loads((run / "simulation.json").read_text())
    w = np.asarray(truth["weights"])
    u = (scipy_stats.rankdata(r.train_logp) - 1) / (len(w) - 1)  # ties share their mean rank
    np.testing.assert_allclose(w, 8.0 ** (u - 0.5) / np.mean(8.0 ** (u - 0.5)))
    assert np.argmax(w) == np.argmax(r.train_logp)  # the most probable string weighs most
    got = r.copy_counts.sum(0)
    assert scipy_stats.chisquare(got, got.sum() * w / w.sum()).pvalue > 1e-3


def test_direct_draw_matches_the_one_per_step_sampler():
    """With one token per step the simulation draws the mixture directly; the real
    sampler through the exact mixture denoiser gives the same distribution."""
    from rhmfast.diffusion.processes import make_process
    from rhmfast.diffusion.reference import MixtureDenoiser
    from rhmfast.knownanswers.simulate import _draw

    cfg = TrainConfig(**{**BASE, "v": 4, "n": 2, "m": 2, "zipf_a": 1.0, "num_train": 8, "num_heldout": 8,
                         "eval_samples": 4000}, sampling_reveal="one", run_dir="unused")
    data = build_data(cfg)
    w = string_weights(data.train, data.train_logp, cfg.s, "logp", 4.0)
    process = make_process("masked", cfg.v, 0)
    model = MixtureDenoiser(data.grammar, data.train, 0.4, w, process=process)
    dev = torch.device("cpu")
    (direct, memorized), (slow, unknown) = (_draw(model, process, cfg, data, 0.4, w, 16, dev, through_sampler=t)
                                             for t in (False, True))
    assert direct.shape == slow.shape and direct.dtype == slow.dtype
    assert unknown is None and abs(memorized.mean() - 0.4) < 0.03  # the training component's draws
    # 256 strings of this grammar: the two samples' string histograms agree (two-sample chi-square)
    keys = {r.tobytes(): i for i, r in enumerate(np.unique(np.concatenate([direct, slow]), axis=0))}
    counts = np.zeros((2, len(keys)))
    for row, x in enumerate((direct, slow)):
        for r in x:
            counts[row, keys[r.tobytes()]] += 1
    counts = counts[:, counts.sum(0) >= 10]
    assert scipy_stats.chi2_contingency(counts).pvalue > 1e-3
    copies = [np.isin(x.view(f"V{x.shape[1] * x.itemsize}").ravel(),
                      data.train.view(f"V{data.train.shape[1] * data.train.itemsize}").ravel()).mean()
              for x in (direct, slow)]
    assert abs(copies[0] - copies[1]) < 0.05 and copies[0] > 0.4


def test_string_weights_by_blocks_and_ties():
    cfg = TrainConfig(**BASE, run_dir="unused")
    data = build_data(cfg)
    w = string_weights(data.train, data.train_logp, cfg.s, "blocks", 2.0)
    assert w.mean() == pytest.approx(1.0) and w.max() / w.min() == pytest.approx(2.0)
    from rhmfast.stats import prototypicality_score

    score = prototypicality_score(data.train, cfg.s)
    assert scipy_stats.spearmanr(score, w).statistic > 0.99
    assert (string_weights(data.train, data.train_logp, cfg.s, "none", 5.0) == 1.0).all()
    flat = data.__class__(data.train, data.heldout, np.zeros(len(data.train)), data.heldout_logp)
    assert (string_weights(flat.train, flat.train_logp, cfg.s, "logp", 3.0) == 1.0).all()  # all tied: one rank


def test_validity_targets_are_met_level_by_level(tmp_path):
    target = {0: [(0, 0.2), (64, 0.5)], 2: 0.9}
    run = simulate_run(_cfg(tmp_path, sampling_reveal="one", eval_samples=400),
                       Memorizer(lam=[(0, 0.0), (64, 0.2)], validity=target))
    r = load_run(run)
    for t, step in enumerate(r.steps):
        vl = r.valid_levels_fraction[t]
        assert vl[0] == pytest.approx(np.interp(step, [0, 64], [0.2, 0.5]), abs=1.5 / 400)
        assert vl[2] == pytest.approx(0.9, abs=1.5 / 400)
        rec = r.eval(int(step))
        assert rec.valid[rec.copy_of >= 0].all()  # copies are training strings: they parse
    # a string broken at the bottom level only has an invalid pair of tokens
    rec = r.eval(int(r.steps[-1]))
    assert (~rec.valid_levels[:, 2]).sum() > 0


def test_chance_copies_come_at_the_rate_of_valid_samples(tmp_path):
    """A grammar sample that is a training string by chance is broken like any other, so
    a memorizer of nothing copies ``f * S`` (validity f, grammar mass S on the training
    set), and the sweeps' memorized-mass estimate reads zero at any validity."""
    from rhmfast.analysis.sweeps import CopyCounts
    from rhmfast.experiments.common import sampler_probability

    cfg = _cfg(tmp_path, v=4, n=2, m=2, num_train=8, num_heldout=8, steps=16, eval_samples=4000,
               sampling_reveal="one", elbo_draws=0)
    r = load_run(simulate_run(cfg, Memorizer(lam=0.0, validity={0: 0.3})))
    S = float(np.exp(r.train_logp).sum())
    n = float(r.num_samples.sum())
    copies = float(r.copy_counts.sum())
    assert 0.02 < S < 0.5 and r.valid_fraction == pytest.approx(0.3, abs=1 / 4000)
    sd = np.sqrt(n * 0.3 * S)
    assert abs(copies - n * 0.3 * S) < 4 * sd  # not n * S: chance copies are broken too
    mass = CopyCounts.of(r, sampler_probability(r)).memorized_mass()
    assert np.abs(mass).max() < 4 * sd / n


def test_rerun_is_reused_and_another_memorizer_rewrites(tmp_path):
    cfg = _cfg(tmp_path, steps=32)
    run = simulate_run(cfg, Memorizer(lam=0.5))
    first = (run / "eval" / "step_00000032.npz").read_bytes()
    stamp = (run / "simulation.json").stat().st_mtime_ns
    simulate_run(cfg, Memorizer(lam=0.5))
    assert (run / "simulation.json").stat().st_mtime_ns == stamp
    simulate_run(cfg, Memorizer(lam=0.0))
    assert (run / "eval" / "step_00000032.npz").read_bytes() != first
    with pytest.raises(ValueError, match="different config"):
        simulate_run(cfg.replace(num_train=16), Memorizer(lam=0.0))


def test_null_runs_follow_the_observed_copy_and_validity_curves(tmp_path):
    # an observed run that favours prototypical strings, with broken levels
    obs = simulate_run(_cfg(tmp_path, "observed", eval_samples=512),
                       Memorizer(lam=[(0, 0.0), (64, 0.6)], tilt="logp", strength=4.0,
                                 validity={0: [(0, 0.3), (64, 0.8)]}))
    r, frac = _copy_fraction(obs)
    nulls = null_runs(obs, tmp_path / "nulls", num=2, seed=5)
    for path in nulls:
        n, nfrac = _copy_fraction(path)
        assert np.array_equal(n.train, r.train) and np.array_equal(n.steps, r.steps)
        assert np.abs(nfrac - frac).max() < 0.12  # ancestral sampler: lam measured, then inverted
        assert (n.valid_levels_fraction[:, 0] <= r.valid_levels_fraction[:, 0] + 1e-9).all()
        truth = json.loads((path / "simulation.json").read_text())
        assert truth["memorizer"]["tilt"] == "none" and set(truth["weights"]) == {1.0}
        assert np.isnan(n.train_nll).all()  # elbo=False: not needed by the copy statistics


def test_null_runs_copy_as_often_at_low_validity_with_one_token_per_step(tmp_path):
    """One token per step: ``lam`` is solved from ``lam + (valid - lam) q`` (chance copies
    are broken with the other grammar samples), so a null run copies as often as the
    observed one even where most samples are broken and ``q`` is large."""
    small = dict(v=4, n=2, m=2, num_train=8, num_heldout=8, eval_samples=2000, sampling_reveal="one", elbo_draws=0)
    obs = simulate_run(_cfg(tmp_path, "observed", **small),
                       Memorizer(lam=[(0, 0.0), (64, 0.2)], validity={0: 0.3}))
    r, frac = _copy_fraction(obs)
    q = float(np.exp(r.train_logp).sum())
    assert q > 0.05 and (r.valid_fraction < 0.31).all()
    null_frac = np.mean([_copy_fraction(p)[1] for p in null_runs(obs, tmp_path / "nulls", num=4, seed=9)], axis=0)
    sd = np.sqrt(frac * (1 - frac) / 2000 * (1 + 1 / 4))
    assert (np.abs(null_frac - frac) < 4 * sd + 1e-9).all(), (null_frac, frac)


def test_null_runs_of_another_seed_are_rewritten_and_a_trained_run_is_refused(tmp_path):
    from rhmfast.diffusion import TrainConfig

    obs = simulate_run(_cfg(tmp_path, "observed", steps=32), Memorizer(lam=0.3))
    first = null_runs(obs, tmp_path / "nulls", num=1, seed=5)[0]
    stamp = (first / "simulation.json").stat().st_mtime_ns
    assert null_runs(obs, tmp_path / "nulls", num=1, seed=5)[0] == first  # the same: reused
    assert (first / "simulation.json").stat().st_mtime_ns == stamp
    again = null_runs(obs, tmp_path / "nulls", num=1, seed=6)[0]  # derived data: rewritten
    assert again == first and TrainConfig.from_toml(again / "config.toml").seed == 6
    (again / "simulation.json").unlink()  # no longer a finished simulation: not removed
    with pytest.raises(ValueError, match="different config"):
        null_runs(obs, tmp_path / "nulls", num=1, seed=7)


def test_bad_memorizers_and_configs_name_the_parameter(tmp_path):
    for kw, match in [
        (dict(lam=1.5), "lam"), (dict(lam=float("nan")), "lam"), (dict(lam=[(0, 0.1), (0, 0.2)]), "increasing"),
        (dict(tilt="popular"), "tilt"), (dict(strength=0.0), "strength"), (dict(strength=float("inf")), "strength"),
        (dict(validity={-1: 0.5}), "level"), (dict(validity={0: 2.0}), r"validity\[0\]"),
        (dict(sharpen=0.01), "sharpen"), (dict(sharpen=float("inf")), "sharpen"), (dict(sharpen=[(0, 1.0), (8, 20.0)]), "sharpen"),
    ]:
        with pytest.raises(ValueError, match=match):
            Memorizer(**kw)
    with pytest.raises(TypeError, match="strength"):
        Memorizer(strength="2")
    with pytest.raises(ValueError, match="levels \\[5\\]"):
        simulate_run(_cfg(tmp_path), Memorizer(validity={5: 0.5}))
    with pytest.raises(ValueError, match="must lie in"):
        simulate_run(_cfg(tmp_path), Memorizer(lam=lambda step: 2.0))
    with pytest.raises(ValueError, match="sharpen at step"):
        simulate_run(_cfg(tmp_path), Memorizer(sharpen=lambda step: 0.01))
    with pytest.raises(TypeError, match="sharpen"):
        Memorizer(sharpen="2")
    with pytest.raises(TypeError, match="memorizer"):
        simulate_run(_cfg(tmp_path), 0.5)
    with pytest.raises(ValueError, match="step:value"):
        parse_schedule("0:0,oops")


def test_cli_simulate_one_run_and_errors(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(_cfg(tmp_path, steps=16).to_toml())
    assert main(["simulate", str(cfg), "--out", str(tmp_path / "cli"), "--lam", "0:0,16:1"]) == 0
    assert (tmp_path / "cli" / "simulation.json").exists()
    for argv, match in [
        (["simulate", str(cfg), "--lam", "2"], "lam"),
        (["simulate", str(cfg), "--validity", "x=0.5"], "--validity"),
        (["simulate", "nonsense"], "target"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err


def test_generate_from_a_reference_denoiser(tmp_path):
    from rhmfast.diffusion import generate_from_run
    from rhmfast.grammar import RHM

    run = simulate_run(_cfg(tmp_path, steps=16, sampling_reveal="one"), Memorizer(lam=0.0))
    g = RHM.load(str(run / "grammar.json"))
    x = np.load(generate_from_run(run, num=64, reference="grammar", device="cpu"))
    assert g.check(x).valid.all()
    x = np.load(generate_from_run(run, num=64, reference="train", device="cpu"))
    r = load_run(run)
    assert {row.tobytes() for row in x} <= {row.tobytes() for row in r.train}
    with pytest.raises(ValueError, match="lam"):
        generate_from_run(run, num=4, reference="mixture", lam=2.0, device="cpu")
    with pytest.raises(ValueError, match="no readable checkpoint"):
        generate_from_run(run, num=4, device="cpu")  # simulated: no checkpoints


def test_experiment_on_simulated_runs(tmp_path):
    from rhmfast.experiments import simulate

    exp = simulate("prototypes", Memorizer(lam=[(0, 0.0), (128, 0.5)]), preset="micro", out=tmp_path / "e",
                   progress=False)
    assert "Simulated runs" in (exp / "report.md").read_text()
    assert json.loads((exp / "results.json").read_text())["verdicts"]


# ---- sharpen: a known over-producer of common rules and blocks


def test_sharpened_grammar_samples_its_exact_rule_probabilities():
    """Rule frequencies of the sharpened component's samples (every level, every parent)
    against its exact probabilities ``p ** beta / sum``: a chi-square over all rules."""

    g = build_data(_cfg_plain()).grammar
    beta = 3.0
    h = sharpened_grammar(g, beta)
    assert [np.array_equal(a, b) for a, b in zip(h.rules, g.rules, strict=True)] == [True] * g.L
    x = h.sample(20_000, seed=11)
    parsed = g.parse(x)  # the same rules: every sample parses under the grammar
    assert bool(np.asarray(g.check(x).valid_levels).all())
    for level in range(g.L):
        p = g.rule_probs[level] ** beta
        np.testing.assert_allclose(h.rule_probs[level], p / p.sum(1, keepdims=True))
        parent = parsed.symbols[level].reshape(-1)
        kids = (x if level + 1 == g.L else parsed.symbols[level + 1]).reshape(len(parent), g.s)
        # each (parent, child tuple) is one rule (the RHM's rules of a level are distinct)
        lookup = {(a, tuple(r)): k for a in range(g.n) for k, r in enumerate(g.rules[level][a].tolist())}
        rule = np.array([lookup[(int(a), tuple(int(b) for b in c))] for a, c in zip(parent, kids, strict=True)])
        for a in np.unique(parent):
            obs = np.bincount(rule[parent == a], minlength=g.m)
            exp = h.rule_probs[level][a] * obs.sum()
            assert scipy_stats.chisquare(obs, exp).pvalue > 1e-4, (level, a, obs, exp)


def _cfg_plain(**kw):
    return TrainConfig(**{**BASE, **kw}, run_dir="unused")


def test_sharpened_memorizer_samples_and_likelihoods_come_from_the_sharpened_mixture(tmp_path):

    beta = 3.0
    cfg = _cfg(tmp_path, sampling_reveal="one", eval_samples=2048, steps=16, elbo_draws=8)
    run = simulate_run(cfg, Memorizer(lam=0.0, sharpen=beta))
    r = load_run(run)
    h = sharpened_grammar(build_data(cfg).grammar, beta)
    rec = r.eval(int(r.steps[-1]))
    logq = h.log_prob(rec.samples)
    assert np.isfinite(logq).all()
    # the exact denoiser's ELBO is unbiased for the model's -log p: the sharpened one's,
    # several nats from the grammar's
    logp_sharp = h.log_prob(r.train)
    gap = float(np.mean(-logp_sharp) - np.mean(-r.train_logp))
    assert abs(gap) > 2.0
    np.testing.assert_allclose(rec.train_nll.mean(), np.mean(-logp_sharp), atol=0.25 * abs(gap))
    # the samples are the sharpened grammar's: likelier under it than under the grammar
    assert np.mean(-logq) < np.mean(-build_data(cfg).grammar.log_prob(rec.samples))
    truth = json.loads((run / "simulation.json").read_text())
    assert truth["memorizer"]["sharpen"] == beta and truth["sharpen"] == [beta] * len(r.steps)


def test_sharpen_one_reproduces_the_grammar_bit_for_bit(tmp_path):
    """``sharpen = 1`` (as a number or as knots) is the grammar itself: the evaluations
    (samples, copies, validity, likelihoods) are byte-identical to the default's."""
    import hashlib

    def digest(run):
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((run / "eval").iterdir())}

    for reveal in ("one", "ancestral"):
        kw = dict(sampling_reveal=reveal, eval_samples=64, steps=32, elbo_draws=1)
        mem = dict(lam=[(0, 0.0), (32, 0.5)], validity={1: 0.6})
        a = simulate_run(_cfg(tmp_path, f"a{reveal}", **kw), Memorizer(**mem))
        b = simulate_run(_cfg(tmp_path, f"b{reveal}", **kw), Memorizer(**mem, sharpen=[(0, 1.0), (32, 1.0)]))
        assert digest(a) == digest(b)
        assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()


def test_lam_for_copy_fraction_one_token_per_step_formula_and_edges():
    from types import SimpleNamespace


    cfg = SimpleNamespace(sampling_reveal="one", process="masked")
    data = SimpleNamespace(train_logp=np.log([0.05, 0.05]))  # q = 0.1
    c = np.array([0.03, 0.2, 0.5])
    lam = lam_for_copy_fraction(cfg, data, np.ones(2), c, np.array([0.3, np.nan, 0.6]))
    # c = lam + (valid - lam) q; a NaN validity (no samples) counts as 1; lam >= 0
    np.testing.assert_allclose(lam, [0.0, (0.2 - 0.1) / 0.9, (0.5 - 0.06) / 0.9])
    full = SimpleNamespace(train_logp=np.log([0.5, 0.5]))  # every grammar sample is a copy
    assert (lam_for_copy_fraction(cfg, full, np.ones(2), c) == 0).all()
    with pytest.raises(ValueError, match="valid: shape"):
        lam_for_copy_fraction(cfg, data, np.ones(2), c, np.ones(2))


# ---------------------------------------------------------------- memorizer families


def test_onsets_memorize_each_string_from_its_own_step(tmp_path):
    """Per-string onsets: no string is copied before its onset; every copy after it is
    of a string whose onset has passed; tilted weights put prototypical onsets first."""
    cfg = _cfg(tmp_path, sampling_reveal="one", eval_samples=256, steps=64, first_checkpoint=8, elbo_draws=0)
    run = simulate_run(cfg, Memorizer(lam=0.5, onsets=(16, 48)))
    r = load_run(run)
    truth = json.loads((run / "simulation.json").read_text())
    onsets = np.array(truth["onsets"])
    assert sorted(onsets.tolist()) == pytest.approx(np.linspace(16, 48, len(onsets)).tolist())
    p = np.exp(r.train_logp)
    for t, step in enumerate(r.steps):
        early = onsets > step  # not memorized yet: copied by chance only (a grammar draw)
        chance = r.num_samples[t] * p[early].sum()
        assert r.copy_counts[t, early].sum() <= chance + 4 * np.sqrt(chance) + 2, step
    late = r.copy_counts[-1]
    assert (late[onsets <= r.steps[-1]] > 0).mean() > 0.8  # every string is on by the end
    w = string_weights(r.train, r.train_logp, cfg.s, "logp", 50.0)
    ranked = memorizer.onset_steps(w, (0.0, 1.0), seed=3)
    assert scipy_stats.spearmanr(ranked, r.train_logp)[0] < -0.5  # likely strings first


def test_partial_copies_copy_pieces_not_strings(tmp_path):
    """Partial copies share all but one aligned block with a training string and are
    (almost always) not copies themselves."""
    cfg = _cfg(tmp_path, sampling_reveal="one", eval_samples=512, steps=16, first_checkpoint=16, elbo_draws=0)
    r = load_run(simulate_run(cfg, Memorizer(lam=0.0, partial=1.0)))
    x = r.eval(int(r.steps[-1])).samples.astype(np.int64)
    train = r.train.astype(np.int64)
    assert r.copy_counts.sum() <= 0.1 * len(x)  # a replaced block may equal the original
    differ = (x[:, None, :] != train[None, :, :]).sum(-1).min(1)  # tokens from the nearest training string
    assert (differ <= cfg.s ** (cfg.L - 1)).all()  # at most one block of level >= 1
    with pytest.raises(ValueError, match="partial"):
        Memorizer(partial=1.5)
    with pytest.raises(ValueError, match="lam \\+ partial"):
        simulate_run(_cfg(tmp_path, "over", sampling_reveal="one", steps=16), Memorizer(lam=0.6, partial=0.6))
    with pytest.raises(ValueError, match="one token revealed"):
        simulate_run(_cfg(tmp_path, "anc", sampling_reveal="ancestral", steps=16), Memorizer(partial=0.2))
