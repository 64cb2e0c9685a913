"""Known-answer memorizers: what a simulated model memorizes, when, and how it fails
(numpy only). :mod:`rhmfast.knownanswers.simulate` writes such a model's run directory
(run space: real samples through the real sampler and evaluation);
:mod:`rhmfast.knownanswers.counts` draws the same model's copy counts directly (count
space, for the audit's null runs). Both read this module.

The model at step ``t`` is the mixture ``(1 - lam(t)) p_grammar + lam(t) p_train(w)``:
it memorizes a fraction ``lam(t)`` of its mass, spread over the training strings by the
weights ``w`` (:func:`string_weights`). Uniform weights make memorization independent
of the string (the null of every "which strings are memorized first" question); tilted
weights favour prototypical (``strength > 1``) or atypical (``strength < 1``) strings by
a known factor. ``validity`` breaks grammar samples (:class:`Breaker`) to follow a
trained model's per-level validity; ``sharpen`` over-produces common rules
(:func:`rhmfast.stats.sharpening.sharpened_grammar`).

>>> Memorizer(lam=[(0, 0.0), (100, 0.5)], tilt="logp", strength=4.0).describe()["lam"]
[(0, 0.0), (100, 0.5)]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rhmfast._args import integer, number
from rhmfast.stats.prototypicality import prototypicality_score
from rhmfast.stats.ranks import rankdata
from rhmfast.stats.sharpening import SHARPEN_RANGE

__all__ = ["Memorizer", "Schedule", "TILTS", "schedule_at", "parse_schedule", "string_weights",
           "onset_steps", "draw_mixture", "Breaker", "impose_validity"]

# a constant, knots ((step, value), ...) interpolated linearly in step, or a function of step
Schedule = float | Sequence[tuple[float, float]] | Callable[[int], float]

TILTS = ("none", "logp", "blocks")


def schedule_at(schedule: Schedule, step: int, name: str) -> float:
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
            training set, :func:`rhmfast.stats.prototypicality_score`).
        strength: weight of the most prototypical training string over the least
            (weights ``strength ** (u - 1/2)``, ``u`` the string's percentile rank of
            prototypicality); 1 is uniform, below 1 favours atypical strings.
        validity: level -> fraction of samples whose level parses, per step (levels as
            in ``RHM.check``: 0 = the whole string, ``L - 1`` = the pairs of tokens);
            levels left out are not broken beyond what the sampler does.
        sharpen: exponent ``beta`` of the grammar component's rule probabilities at
            each step (:func:`rhmfast.stats.sharpening.sharpened_grammar`; within
            ``SHARPEN_RANGE``): above 1 over-produces common rules, 1 (default) is the
            grammar.
        onsets: ``(first, last)`` steps: each training string starts being memorized at
            its own onset, spread evenly over ``[first, last]`` in an order drawn by the
            tilt's weights (:func:`onset_steps`: random for uniform weights, prototypical
            strings earlier for ``strength > 1``); at each step the training component
            draws uniformly among the strings whose onset has passed. None (default):
            every string from the start, by its weight.
        partial: share of the samples at each step that are partial copies: a training
            string (drawn as the whole copies are) with one aligned block, at a level
            and position drawn uniformly, replaced by that block of a grammar-component
            sample (:func:`draw_mixture`). They copy pieces of training strings without
            being copies.
    """

    lam: Schedule = 0.0
    tilt: str = "none"
    strength: float = 1.0
    validity: Mapping[int, Schedule] = dataclasses.field(default_factory=dict)
    sharpen: Schedule = 1.0
    onsets: tuple[float, float] | None = None
    partial: Schedule = 0.0

    def __post_init__(self) -> None:
        _check_schedule("lam", self.lam, 0.0, 1.0)
        if self.tilt not in TILTS:
            raise ValueError(f"tilt = {self.tilt!r}: must be one of {TILTS}")
        object.__setattr__(self, "strength", number("strength", self.strength, lo=0, lo_open=True))
        if not isinstance(self.validity, Mapping):
            raise TypeError(f"validity: expected a mapping level -> schedule, got {type(self.validity).__name__}")
        for level, sched in self.validity.items():
            integer("validity level", level)
            _check_schedule(f"validity[{level}]", sched, 0.0, 1.0)
        _check_schedule("sharpen", self.sharpen, *SHARPEN_RANGE)
        _check_schedule("partial", self.partial, 0.0, 1.0)
        if self.onsets is not None:
            if not isinstance(self.onsets, (tuple, list)) or len(self.onsets) != 2:
                raise TypeError(f"onsets: expected (first, last) steps, got {self.onsets!r}")
            first = number("onsets[0]", self.onsets[0], lo=0)
            last = number("onsets[1]", self.onsets[1], lo=first)
            object.__setattr__(self, "onsets", (first, last))

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the truth (schedules as given, functions by name)."""
        def sched(s: Schedule) -> Any:
            return getattr(s, "__name__", "function") if callable(s) else s
        out = {"lam": sched(self.lam), "tilt": self.tilt, "strength": self.strength,
               "validity": {str(k): sched(v) for k, v in self.validity.items()}, "sharpen": sched(self.sharpen)}
        if self.onsets is not None:  # only when used: earlier simulations keep their records
            out["onsets"] = list(self.onsets)
        if self.partial != 0.0:
            out["partial"] = sched(self.partial)
        return out


def string_weights(train: np.ndarray, train_logp: np.ndarray, s: int, tilt: str, strength: float) -> np.ndarray:
    """``(P,)`` weights of the training strings (mean 1) for a tilt and strength: the
    string at percentile rank ``u`` of its score (``log p(x)`` or the prototypicality
    score, ties at their mean rank) gets ``strength ** (u - 1/2)``.

    >>> x = np.array([[0, 0], [0, 1], [1, 1]], np.uint8)
    >>> w = string_weights(x, np.log([0.5, 0.3, 0.2]), 2, "logp", 4.0)
    >>> [round(float(a), 3) for a in w / w.min()]    # most probable string: 4x the least
    [4.0, 2.0, 1.0]
    """
    P = len(train)
    if tilt == "none" or strength == 1.0 or P < 2:
        return np.ones(P)
    if tilt == "logp":
        score = np.asarray(train_logp, np.float64)
        if not np.isfinite(score).all():
            raise ValueError("tilt = 'logp' needs the grammar's log p(x) of every training string")
    else:
        score = prototypicality_score(train, s)
    ranks = rankdata(score) - 1  # 0..P-1, ties at their mean rank
    w = float(strength) ** (ranks / (P - 1) - 0.5)
    return w / w.mean()


def onset_steps(weights: np.ndarray, onsets: tuple[float, float], seed: int) -> np.ndarray:
    """``(P,)`` the step at which each training string starts being memorized: the
    strings in a Plackett-Luce order by ``weights`` (a uniform random order for equal
    weights; heavier strings tend to come first), spread evenly over ``onsets``.

    >>> onset_steps(np.ones(3), (100, 300), seed=0).tolist() in ([100, 200, 300], [100, 300, 200],
    ...     [200, 100, 300], [200, 300, 100], [300, 100, 200], [300, 200, 100])
    True
    """
    w = np.asarray(weights, np.float64)
    keys = np.log(w) + np.random.default_rng([seed, 11]).gumbel(size=len(w))
    rank = np.empty(len(w))
    rank[np.argsort(-keys, kind="stable")] = np.arange(len(w))
    first, last = onsets
    return first + (last - first) * rank / max(len(w) - 1, 1)


def draw_mixture(grammar: Any, train: np.ndarray, weights: np.ndarray, lam: float, num: int, seed: int, *,
                 partial: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``num`` strings of the mixture in string space and which of them are memorized:
    each a training string drawn by ``weights`` with probability ``lam``, else a string
    of ``grammar`` (the model's grammar component). This is what the masked sampler
    driven by the mixture's exact denoiser draws with one token revealed per step.
    A further share ``partial`` are partial copies: a training string drawn by
    ``weights`` with one aligned block (level 1..L-1 and position drawn uniformly)
    replaced by the block at the same place of a ``grammar`` sample; they count as
    memorized (kept intact by :func:`impose_validity`). Zero weights everywhere: no
    string is memorized yet, and the grammar component draws in their place.

    >>> from rhmfast.grammar import RHM
    >>> g = RHM(4, 2, 2, 2, 2, seed=0)
    >>> train = g.sample(3, seed=1)
    >>> x, memorized = draw_mixture(g, train, np.ones(3), 1.0, 4, seed=0)
    >>> bool(memorized.all()), bool((x[:, None] == train[None]).all(-1).any(1).all())
    (True, True)
    """
    w = np.asarray(weights, np.float64)
    rng = np.random.default_rng([seed, 5])
    if not w.sum() > 0:
        lam = partial = 0.0
    copy = rng.random(num) < lam
    x = np.empty((num, train.shape[1]), train.dtype)
    if w.sum() > 0:
        x[copy] = train[rng.choice(len(w), size=int(copy.sum()), p=w / w.sum())]
    x[~copy] = grammar.sample(int((~copy).sum()), seed=seed)
    if partial > 0:  # its own stream: the whole copies and grammar draws stay as they were
        prng = np.random.default_rng([seed, 6])
        part = ~copy & (prng.random(num) < partial / max(1.0 - lam, 1e-12))
        k = int(part.sum())
        if k:
            base = train[prng.choice(len(w), size=k, p=w / w.sum())].copy()
            s, L = int(grammar.s), int(grammar.L)
            for i, row in enumerate(base):
                level = int(prng.integers(1, max(L, 2)))
                width = s ** (L - level)
                start = int(prng.integers(s**level)) * width
                row[start:start + width] = x[np.flatnonzero(part)[i], start:start + width]
            x[part] = base
            copy = copy | part
    return x, copy


class Breaker:
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


def impose_validity(
    x: np.ndarray, memorized: np.ndarray, breaker: Breaker, targets: dict[int, float], rng: np.random.Generator
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
