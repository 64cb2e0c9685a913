"""Known-answer memorizers: run directories written by exact denoisers, not by training.

A simulated run has the contract of a training (``config.toml``, ``grammar.json``,
``data.npz``, ``metrics.jsonl``, ``eval/step_*.npz``; the same data and checkpoint steps
as :func:`~rhmfast.diffusion.train` with the same config), but its model at step ``t``
is the exact denoiser of

    ``(1 - lam(t)) p_grammar + lam(t) p_train(w)``

(:class:`~rhmfast.diffusion.reference.MixtureDenoiser`): it memorizes a fraction
``lam(t)`` of its mass, spread over the training strings by the weights ``w``. Uniform
weights make memorization independent of the string (the null of every "which strings
are memorized first" question); tilted weights favour prototypical (``strength > 1``)
or atypical (``strength < 1``) strings by a known factor. Samples go through the real
sampler, copies through the suffix index, validity through the parser and likelihoods
through the real ELBO code (the trainer's evaluation, :func:`trainer.evaluate`), so
every statistic of the experiments can be run on a known answer in seconds.

A trained model also makes invalid strings (the levels it has not learned yet). A third
component reproduces that: ``validity`` gives, per level, the fraction of samples whose
level parses at each step, and samples of the grammar component are broken at the lowest
failing level (one subtree replaced by a derivation of a symbol the parent has no rule
for) until the simulated per-level validity meets the target. A grammar sample that
happens to be a training string (a chance copy) is broken like any other, so chance
copies come at the rate of valid samples, as the experiments' chance count assumes;
memorized samples stay intact. Through the real sampler (more than one token revealed
per step) the two components mix within a string, so there every copy is kept intact. It changes the samples only, not the likelihoods.

A trained model may also over-produce what is common ("slop"). ``sharpen`` reproduces
that with a known amount: the grammar component at step ``t`` is the grammar with the
same rules and rule probabilities proportional to ``p_rule ** beta(t)``, renormalized
per parent (:func:`sharpened_grammar`; ``beta = 1`` is the grammar itself), so common
rules, and the blocks built from them, are over-produced while every sample stays
valid. Its samples and its likelihoods (the ELBO) both come from that sharpened mixture.

>>> import tempfile
>>> from rhmfast.analysis import load_run
>>> from rhmfast.diffusion import TrainConfig
>>> cfg = TrainConfig(v=4, n=2, m=2, s=2, L=3, num_train=8, num_heldout=8, steps=64,
...     first_checkpoint=32, eval_samples=64, elbo_draws=1, sampling_reveal="one", progress=False,
...     run_dir=tempfile.mkdtemp() + "/run")
>>> run = simulate_run(cfg, Memorizer(lam=1.0))
>>> r = load_run(run)
>>> {float(f) for f in r.copy_counts.sum(1) / r.num_samples}   # lam = 1: only copies
{1.0}
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rhmfast._fileio import atomic_write_bytes, atomic_write_text
from rhmfast.diffusion import checkpoint as ckpt
from rhmfast.diffusion.config import TrainConfig
from rhmfast.diffusion.data import RunData, build_data, save_data
from rhmfast.diffusion.processes import make_process
from rhmfast.diffusion.reference import MixtureDenoiser
from rhmfast.diffusion.sampling import sample

__all__ = ["Memorizer", "Schedule", "simulate_run", "string_weights", "parse_schedule", "sharpened_grammar"]

# a constant, knots ((step, value), ...) interpolated linearly in step, or a function of step
Schedule = float | Sequence[tuple[float, float]] | Callable[[int], float]

TILTS = ("none", "logp", "blocks")
SIMULATION_FILE = "simulation.json"


def _at(schedule: Schedule, step: int, name: str) -> float:
    if callable(schedule):
        value = float(schedule(step))
    elif isinstance(schedule, (int, float)):
        value = float(schedule)
    else:
        knots = np.asarray(schedule, dtype=np.float64)
        value = float(np.interp(step, knots[:, 0], knots[:, 1]))
    if not math.isfinite(value):
        raise ValueError(f"{name} at step {step} is {value}: must be finite")
    return value


def _check_schedule(name: str, schedule: Schedule, lo: float, hi: float) -> None:
    if callable(schedule):
        return  # checked at each step
    if isinstance(schedule, bool) or not isinstance(schedule, (int, float, list, tuple)):
        raise TypeError(f"{name}: expected a number, (step, value) knots or a function of step, "
                        f"got {type(schedule).__name__}")
    if isinstance(schedule, (int, float)):
        values = np.array([float(schedule)])
    else:
        try:
            knots = np.asarray(schedule, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: knots must be (step, value) pairs of numbers") from None
        if knots.ndim != 2 or knots.shape[1] != 2 or len(knots) == 0:
            raise ValueError(f"{name}: knots must be a non-empty list of (step, value) pairs")
        if not np.isfinite(knots).all() or (np.diff(knots[:, 0]) <= 0).any():
            raise ValueError(f"{name}: knot steps must be finite and increasing")
        values = knots[:, 1]
    if not (np.isfinite(values).all() and (values >= lo).all() and (values <= hi).all()):
        raise ValueError(f"{name}: values must lie in [{lo}, {hi}], got {values.tolist()}")


def parse_schedule(text: str, name: str = "schedule") -> Schedule:
    """``"0.3"`` (constant) or ``"0:0,1000:0.1,2600:0.5"`` (step:value knots).

    >>> parse_schedule("0:0,100:0.5")
    [(0.0, 0.0), (100.0, 0.5)]
    """
    try:
        if ":" not in text:
            return float(text)
        return [(float(a), float(b)) for a, b in (part.split(":") for part in text.split(","))]
    except ValueError:
        raise ValueError(f"{name} = {text!r}: expected a number or step:value knots "
                         "separated by commas, e.g. 0:0,1000:0.2") from None


@dataclasses.dataclass(frozen=True)
class Memorizer:
    """What a simulated model memorizes, and when.

    Attributes:
        lam: weight of the training-set component at each step, in [0, 1].
        tilt: ``"none"`` (uniform weights: the null), ``"logp"`` (by the grammar's
            ``log p(x)``) or ``"blocks"`` (by the block frequency of the string in the
            training set, :func:`rhmfast.analysis.prototypicality_score`).
        strength: weight of the most prototypical training string over the least
            (weights ``strength ** (u - 1/2)``, ``u`` the string's percentile rank of
            prototypicality); 1 is uniform, below 1 favours atypical strings.
        validity: level -> fraction of samples whose level parses, per step (levels as
            in ``RHM.check``: 0 = the whole string, ``L - 1`` = the pairs of tokens);
            levels left out are not broken beyond what the sampler does.
        sharpen: exponent ``beta >= 1`` of the grammar component's rule probabilities
            at each step (:func:`sharpened_grammar`); 1 (default) is the grammar.
    """

    lam: Schedule = 0.0
    tilt: str = "none"
    strength: float = 1.0
    validity: Mapping[int, Schedule] = dataclasses.field(default_factory=dict)
    sharpen: Schedule = 1.0

    def __post_init__(self) -> None:
        _check_schedule("lam", self.lam, 0.0, 1.0)
        if self.tilt not in TILTS:
            raise ValueError(f"tilt = {self.tilt!r}: must be one of {TILTS}")
        if isinstance(self.strength, bool) or not isinstance(self.strength, (int, float)):
            raise TypeError(f"strength: expected a number, got {type(self.strength).__name__}")
        if not (math.isfinite(self.strength) and self.strength > 0):
            raise ValueError(f"strength = {self.strength}: must be a finite number > 0")
        if not isinstance(self.validity, Mapping):
            raise TypeError(f"validity: expected a mapping level -> schedule, got {type(self.validity).__name__}")
        for level, sched in self.validity.items():
            if isinstance(level, bool) or not isinstance(level, int) or level < 0:
                raise ValueError(f"validity: level {level!r} must be an integer >= 0")
            _check_schedule(f"validity[{level}]", sched, 0.0, 1.0)
        _check_schedule("sharpen", self.sharpen, 1.0, math.inf)

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the truth (schedules as given, functions by name)."""
        def sched(s: Schedule) -> Any:
            return getattr(s, "__name__", "function") if callable(s) else s
        return {"lam": sched(self.lam), "tilt": self.tilt, "strength": self.strength,
                "validity": {str(k): sched(v) for k, v in self.validity.items()}, "sharpen": sched(self.sharpen)}


def string_weights(data: RunData, s: int, tilt: str, strength: float) -> np.ndarray:
    """``(P,)`` weights of the training strings (mean 1) for a tilt and strength.

    >>> from rhmfast.diffusion.data import RunData
    >>> x = np.array([[0, 0], [0, 1], [1, 1]], np.uint8)
    >>> w = string_weights(RunData(x, x[:0], np.log([0.5, 0.3, 0.2]), np.zeros(0)), 2, "logp", 4.0)
    >>> [round(float(a), 3) for a in w / w.min()]    # most probable string: 4x the least
    [4.0, 2.0, 1.0]
    """
    P = len(data.train)
    if tilt == "none" or strength == 1.0 or P < 2:
        return np.ones(P)
    if tilt == "logp":
        score = np.asarray(data.train_logp, np.float64)
        if not np.isfinite(score).all():
            raise ValueError("tilt = 'logp' needs the grammar's log p(x) of every training string")
    else:
        from rhmfast.analysis.blocks import prototypicality_score

        score = prototypicality_score(data.train, s, reference=data.train)
    order = np.argsort(score, kind="stable")
    ranks = np.empty(P)
    ranks[order] = np.arange(P)
    for value in np.unique(score):  # ties share their mean rank
        hit = score == value
        ranks[hit] = ranks[hit].mean()
    w = float(strength) ** (ranks / (P - 1) - 0.5)
    return w / w.mean()


def sharpened_grammar(g: Any, beta: float) -> Any:
    """The grammar ``g`` with the same rules (and root prior) and rule probabilities
    proportional to ``p_rule ** beta``, renormalized per parent: ``beta > 1`` makes common
    rules commoner by a known amount; ``beta = 1`` returns ``g`` itself.

    >>> from rhmfast.grammar import RHM, zipf
    >>> g = RHM(4, 2, 2, 2, 2, seed=0, rule_probs=zipf(2, 1.0))
    >>> h = sharpened_grammar(g, 2.0)
    >>> p, q = g.rule_probs[0][0], h.rule_probs[0][0]
    >>> bool(np.allclose(q, p**2 / (p**2).sum())), sharpened_grammar(g, 1.0) is g
    (True, True)
    """
    from rhmfast.grammar import RHM

    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (math.isfinite(beta) and beta >= 1):
        raise ValueError(f"sharpen = {beta!r}: must be a finite number >= 1")
    if beta == 1.0:
        return g
    probs = []
    for p in g.rule_probs:
        q = np.asarray(p, np.float64) ** float(beta)
        probs.append(q / q.sum(axis=1, keepdims=True))
    return RHM.from_rules(g.rules, v=g.v, rule_probs=probs, root_prior=g.root_prior)


class _Breaker:
    """Breaks strings at a chosen level: one level-``l+1`` subtree is replaced by a
    derivation of a symbol that makes its parent's tuple no rule of level ``l``, so
    levels below ``l`` still parse and level ``l`` (and every level above) does not."""

    def __init__(self, g: Any, seed: int, pool: int = 2048) -> None:
        self.g, self.s, self.L = g, g.s, g.L
        self.rules = [{tuple(t) for t in r.reshape(-1, g.s).tolist()} for r in g.rules]
        x, tree = g.sample(pool, seed=seed, return_tree=True)
        self.blocks: list[dict[int, np.ndarray]] = []  # level -> symbol -> (k, width) blocks
        for level in range(1, g.L):
            w = g.s ** (g.L - level)
            blk = x.reshape(pool * g.s**level, w)
            sym = tree.symbols[level].reshape(-1)
            self.blocks.append({int(b): blk[sym == b] for b in np.unique(sym)})
        self.width = [g.v if level == g.L else g.n for level in range(g.L + 1)]

    def break_at(self, x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
        """``x (k, d)`` strings whose ``level`` parses, broken at ``level`` (rows where no
        replacement exists are returned unchanged)."""
        out = x.copy()
        parsed = self.g.parse(x)
        child = level + 1
        kids = out if child == self.L else parsed.symbols[child]
        w = self.s ** (self.L - child)
        rules = self.rules[level]
        for i in range(len(out)):
            for _ in range(16):  # a node whose every alternative is a rule is rare; try others
                parent = int(rng.integers(self.s**level))
                j = int(rng.integers(self.s))
                tup = [int(a) for a in kids[i, parent * self.s:(parent + 1) * self.s]]
                bad = [b for b in range(self.width[child]) if tuple(tup[:j] + [b] + tup[j + 1:]) not in rules]
                if child < self.L:
                    bad = [b for b in bad if b in self.blocks[child - 1]]
                if not bad:
                    continue
                b = bad[int(rng.integers(len(bad)))]
                pos = (parent * self.s + j) * w
                if child == self.L:
                    out[i, pos] = b
                else:
                    pool = self.blocks[child - 1][b]
                    out[i, pos:pos + w] = pool[int(rng.integers(len(pool)))]
                break
        return out


def _impose_validity(
    x: np.ndarray, memorized: np.ndarray, breaker: _Breaker, targets: dict[int, float], rng: np.random.Generator
) -> np.ndarray:
    """Break samples not ``memorized``, lowest level first, until each level's validity
    over all samples is at most its target (memorized strings parse)."""
    g, L = breaker.g, breaker.L
    x = x.copy()
    free = np.flatnonzero(~memorized)
    vl = np.asarray(g.check(x).valid_levels, bool)
    for level in range(L - 1, -1, -1):
        if level not in targets:
            continue
        excess = int(vl[:, level].sum()) - int(math.floor(targets[level] * len(x) + 1e-9))
        pick = free[vl[free, level]]
        if excess <= 0 or not len(pick):
            continue
        pick = rng.choice(pick, size=min(excess, len(pick)), replace=False)
        x[pick] = breaker.break_at(x[pick], level, rng)
        vl[pick] = np.asarray(g.check(x[pick]).valid_levels, bool)
    return x


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x))


def simulate_run(config: TrainConfig, memorizer: Memorizer, *, device: str = "cpu") -> pathlib.Path:
    """Write the run directory ``config.run_dir`` of the known-answer ``memorizer``
    (same data and checkpoint steps as training with ``config``); returns its path.
    The truth (weights per training string, ``lam`` per checkpoint) goes to
    ``simulation.json`` beside the contract's files, last: a run that has it is
    complete, and rerunning with the same memorizer returns at once (evaluations are
    pure functions of the config and the memorizer)."""
    from rhmfast.diffusion.trainer import _check_run_dir

    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__}")
    if not isinstance(memorizer, Memorizer):
        raise TypeError(f"memorizer must be a Memorizer, not {type(memorizer).__name__}")
    if config.data_path:
        raise ValueError("TrainConfig.data_path: a simulated run needs the grammar (draw the data from it)")
    bad_levels = [lev for lev in memorizer.validity if lev >= config.L]
    if bad_levels:
        raise ValueError(f"validity: levels {bad_levels} do not exist (TrainConfig.L = {config.L})")
    run = pathlib.Path(config.run_dir)
    _check_run_dir(config, run)
    truth_path = run / SIMULATION_FILE
    if truth_path.exists() and json.loads(truth_path.read_text())["memorizer"] == _jsonable(memorizer.describe()):
        return run  # written last: the run is complete, and a pure function of its settings
    truth_path.unlink(missing_ok=True)  # another memorizer's: its evaluations are replaced
    data = build_data(config)
    g = data.grammar
    weights = string_weights(data, config.s, memorizer.tilt, memorizer.strength)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "config.toml").exists():
        ckpt.atomic_write_bytes(run / "config.toml", config.to_toml().encode())
        g.save(str(run / "grammar.json"))
        save_data(run / "data.npz", data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of a few hundred strings: threads cost more than they give
    try:
        return _simulate(config, memorizer, run, data, weights, torch.device(device))
    finally:
        torch.set_num_threads(threads)


def _draw(model: MixtureDenoiser, process: Any, config: TrainConfig, data: RunData, lam: float,
          weights: np.ndarray, step: int, dev: torch.device, *, through_sampler: bool = False,
          grammar: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The evaluation samples of the memorizer at ``step`` and which of them the
    training component drew (None where that is unknown). One token revealed per step
    by the masked sampler from an exact denoiser draws exactly from the denoiser's prior
    (a product of exact conditionals), so there the mixture is drawn directly: a
    training string by ``weights`` with probability ``lam``, else a string of ``grammar``
    (the model's grammar component; default ``data.grammar``; tested against the
    sampler; ~10x faster). Otherwise through the real sampler, which mixes the two
    components within a string."""
    seed = config.seed * 1_000_003 + step
    if config.process == "masked" and config.sampling_reveal == "one" and not through_sampler:
        rng = np.random.default_rng([seed, 5])
        copy = rng.random(config.eval_samples) < lam
        x = np.empty((config.eval_samples, data.d), data.train.dtype)
        x[copy] = data.train[rng.choice(len(weights), size=int(copy.sum()), p=weights / weights.sum())]
        x[~copy] = (data.grammar if grammar is None else grammar).sample(int((~copy).sum()), seed=seed)
        return x, copy
    x = sample(model, process, num=config.eval_samples, d=data.d, seed=seed, steps=config.sampling_steps,
               reveal=config.sampling_reveal, device=dev).astype(data.train.dtype)
    return x, None


def _simulate(config: TrainConfig, memorizer: Memorizer, run: pathlib.Path, data: RunData, weights: np.ndarray,
              dev: torch.device) -> pathlib.Path:
    from rhmfast.diffusion.trainer import _copies, _save_eval, checkpoint_steps, evaluate

    g = data.grammar
    process = make_process(config.process, config.v, config.d3pm_steps)
    copy_lookup = _copies(data)
    steps = checkpoint_steps(config.steps, config.first_checkpoint, config.checkpoints_per_octave)
    breaker = _Breaker(g, seed=config.seed * 1_000_003 + 7) if memorizer.validity else None
    lams, betas, lines = [], [], []
    component: dict[float, Any] = {}  # beta -> the sharpened grammar (schedules are mostly flat)
    for step in steps:
        lam = _at(memorizer.lam, step, "lam")
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam at step {step} is {lam}: must lie in [0, 1]")
        lams.append(lam)
        beta = _at(memorizer.sharpen, step, "sharpen")
        if beta < 1.0:
            raise ValueError(f"sharpen at step {step} is {beta}: must be >= 1")
        betas.append(beta)
        if beta not in component:
            component[beta] = sharpened_grammar(g, beta)
        path = run / "eval" / f"step_{step:08d}.npz"
        model = MixtureDenoiser(component[beta], data.train, lam, weights, process=process)
        x, memorized = _draw(model, process, config, data, lam, weights, step, dev, grammar=component[beta])
        if breaker is not None and len(x):
            targets = {lev: _at(s, step, f"validity[{lev}]") for lev, s in memorizer.validity.items()}
            if memorized is None:  # through the sampler: every copy counts as memorized
                memorized = copy_lookup(x) >= 0
            x = _impose_validity(x, memorized, breaker, targets, np.random.default_rng([config.seed, step, 3]))
        record, arrays = evaluate(model, process, data, config, step, dev, copy_lookup, samples=x)
        record["lam"] = lam
        _save_eval(path, arrays, durable=False)  # recomputed if lost; a kill cannot tear it
        lines.append(json.dumps(record) + "\n")
    atomic_write_bytes(run / "metrics.jsonl", "".join(lines).encode(), durable=False)
    truth = {"memorizer": memorizer.describe(), "steps": steps, "lam": lams, "sharpen": betas,
             "weights": weights.tolist()}
    atomic_write_text(run / SIMULATION_FILE, json.dumps(truth) + "\n")
    return run
