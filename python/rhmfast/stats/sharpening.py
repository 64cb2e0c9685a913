"""Over-production of common rules: the sharpened grammar, and its fit to a model's samples.

A model that learned the grammar's rules may still draw them at other frequencies. The
one-parameter family here raises every parent's rule probabilities to a power ``beta``
and renormalizes them per parent (the root prior is kept): ``beta > 1`` makes common
rules commoner ("slop"), ``beta < 1`` flatter, ``beta = 1`` is the grammar. Every string
has one derivation, so a sharpened grammar's probability of a string is exact.

:func:`fit_sharpening` is the maximum-likelihood ``beta`` of a set of valid strings. With
``A`` the summed log rule probabilities of their derivations and ``c[l, k]`` the number
of their level-``l`` nodes with parent symbol ``k``, the log-likelihood is
``beta A - sum c[l, k] log sum_r p[l, k, r] ** beta`` (plus a constant), concave in
``beta``; a model's draws that copy no training string also missed the training set,
which divides their likelihood by ``1 - Q(beta)`` (``Q`` the set's mass), no longer
concave: a grid in ``log beta``, then bisection on the derivative. The verdicts' chance
counts read a run's fit (:func:`rhmfast.analysis.memorization.fitted_sharpening`): the
chance copies of a generalizer that over-produces as the run does and memorized nothing.

>>> from rhmfast.grammar import RHM, zipf
>>> g = RHM(6, 6, 4, 2, 3, seed=0, rule_probs=zipf(4, 1.0))
>>> x = sharpened_grammar(g, 2.0).sample(20_000, seed=1)
>>> round(fit_sharpening(g, x), 1), round(fit_sharpening(g, g.sample(20_000, seed=2)), 1)
(2.0, 1.0)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rhmfast._args import number
from rhmfast.grammar import RHM

__all__ = ["SHARPEN_RANGE", "sharpened_grammar", "fit_sharpening"]

# the exponents a fit may return and a simulated model may use (beyond them a grammar's
# rules are all but deterministic, or all but uniform)
SHARPEN_RANGE = (1.0 / 16.0, 16.0)
_GRID = 97  # points in log beta over the range (0.058 apart)
_BISECTIONS = 30  # halvings between a grid point's neighbours: far below any sampling error
_REST_MIN = 1e-9  # below this mass left outside the excluded strings, 1 - Q has no digits left


def sharpened_grammar(g: RHM, beta: float) -> RHM:
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
    lo, hi = SHARPEN_RANGE
    beta = number("sharpen", beta, lo=lo, hi=hi)
    if beta == 1.0:
        return g
    probs = []
    for p in g.rule_probs:
        q = np.asarray(p, np.float64) ** beta
        probs.append(q / q.sum(axis=1, keepdims=True))
    return RHM.from_rules(g.rules, v=g.v, rule_probs=probs, root_prior=g.root_prior)


def _node_stats(g: RHM, x: Any, per_string: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per string of ``x``: whether it is possible (it parses, and by rules of nonzero
    probability: every sharpened grammar gives the others probability 0), its log root
    probability and its summed log rule probabilities ``A``; and the node counts per
    (level, parent symbol) row of the possible strings, per string ``(N, R)`` or summed
    ``(R,)``."""
    tree = g.parse(x)
    offsets = np.cumsum([0] + [np.shape(p)[0] for p in g.rule_probs])
    with np.errstate(divide="ignore"):
        logs = [np.log(np.asarray(p, np.float64)) for p in g.rule_probs]
        root = np.log(np.asarray(g.root_prior, np.float64))[np.maximum(tree.root, 0)]
    total = np.zeros(len(tree.valid))
    for level, lp in enumerate(logs):
        total[tree.valid] += lp[tree.symbols[level][tree.valid], tree.rules[level][tree.valid]].sum(1)
    ok = tree.valid & np.isfinite(total) & np.isfinite(root)
    rows = np.zeros((len(ok), offsets[-1])) if per_string else np.zeros(offsets[-1])
    for level, lp in enumerate(logs):
        sym = tree.symbols[level][ok]
        if per_string:
            np.add.at(rows, (np.repeat(np.flatnonzero(ok), sym.shape[1]), (offsets[level] + sym).ravel()), 1.0)
        else:
            rows[offsets[level]:offsets[level + 1]] += np.bincount(sym.ravel(), minlength=len(lp))
    return ok, np.where(ok, root, -np.inf), np.where(ok, total, -np.inf), rows


def fit_sharpening(g: RHM, x: Any, *, exclude: Any = None) -> float:
    """The maximum-likelihood exponent ``beta`` (within :data:`SHARPEN_RANGE`) of the
    sharpened grammars of ``g`` for the strings ``x`` (``(N, d)``); strings that do not
    parse, or use a rule of probability 0, are left out. ``exclude``: strings that ``x``
    cannot contain (a model's draws that copy no training string are its grammar draws
    conditioned on missing the training set: the likelihood divides by ``1 - Q``, ``Q``
    the mass of the distinct excluded strings, which matters where the set holds much of
    the mass; exponents at which ``Q`` is within 1e-9 of 1 are impossible). NaN when no
    string is left; 1 when every parent's rules involved are equally likely (every
    ``beta`` gives the same probabilities).

    >>> from rhmfast.grammar import RHM
    >>> g = RHM(4, 2, 2, 2, 2, seed=0)   # uniform rules: beta is not identifiable
    >>> fit_sharpening(g, g.sample(10, seed=0))
    1.0
    """
    ok, _, a_x, count = _node_stats(g, x, per_string=False)
    if not ok.any():
        return float("nan")
    total = float(a_x[ok].sum())
    with np.errstate(divide="ignore"):
        logp = np.concatenate([np.log(np.asarray(p, np.float64)) for p in g.rule_probs])
    finite = np.isfinite(logp)
    safe = np.where(finite, logp, 0.0)
    num = float(ok.sum())
    if exclude is not None:
        exclude = np.unique(np.asarray(exclude), axis=0)  # a string's mass counts once
        e_ok, e_root, e_a, e_rows = _node_stats(g, exclude, per_string=True)
        e_root, e_a, e_rows = e_root[e_ok], e_a[e_ok], e_rows[e_ok]
    else:
        e_root, e_a, e_rows = np.zeros(0), np.zeros(0), np.zeros((0, len(logp)))
    used = (count > 0) | (e_rows.sum(0) > 0)
    if np.all(np.where(finite, logp, -np.inf).max(1)[used] == np.where(finite, logp, np.inf).min(1)[used]):
        return 1.0

    def loglik_slope(beta: float) -> tuple[float, float]:
        """The log-likelihood (up to a constant) and its derivative: ``beta A - sum c
        log Z(beta)``, minus ``N log(1 - Q(beta))`` for the excluded strings' mass ``Q``."""
        w = np.where(finite, beta * safe, -np.inf)
        top = w.max(axis=1, keepdims=True)
        w = np.exp(w - top)
        z = w.sum(1)
        log_z, mean = np.log(z) + top[:, 0], (w * safe).sum(1) / z  # mean: d log Z / d beta
        value, slope = beta * total - float(count @ log_z), total - float(count @ mean)
        if len(e_a):
            q = np.exp(e_root + beta * e_a - e_rows @ log_z)
            rest = 1.0 - float(q.sum())
            if rest < _REST_MIN:  # the excluded strings hold (nearly) all the mass: impossible
                return -np.inf, -np.inf
            value -= num * np.log(rest)
            slope += num * float(q @ (e_a - e_rows @ mean)) / rest
        return value, slope

    # a grid in log beta finds the global maximum (the exclusion can make the likelihood
    # non-concave), then bisection on the slope refines it between the grid's neighbours
    grid = np.linspace(np.log(SHARPEN_RANGE[0]), np.log(SHARPEN_RANGE[1]), _GRID)
    values = [loglik_slope(float(np.exp(b)))[0] for b in grid]
    i = int(np.argmax(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
    if loglik_slope(float(np.exp(lo)))[1] <= 0 or loglik_slope(float(np.exp(hi)))[1] >= 0:
        return float(np.exp(grid[i]))  # at an end of the range (or flat)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if loglik_slope(float(np.exp(mid)))[1] > 0:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))
