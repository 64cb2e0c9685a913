"""The Random Hierarchy Model grammar: construction, sampling, parsing, exact
probabilities, enumeration and exact expected frequencies.

Levels are numbered from the root: level 0 holds one root symbol in ``[0, n)``,
level ``l`` holds ``s**l`` symbols in ``[0, v)``, level ``L`` is the string of
``d = s**L`` tokens. ``rules[0]`` has shape ``(n, m, s)`` and ``rules[l]`` (``l >= 1``)
shape ``(v, m, s)``; within a level every ``s``-tuple is distinct, so each string has
at most one derivation and parsing is a deterministic upward pass.

Randomness: ChaCha8 (``rand_chacha``) keyed by the explicit seed; strings are drawn
in fixed chunks of 1024 rows, chunk ``c`` on stream ``c``, so the same seeds give
the same arrays whatever the number of threads.

>>> import rhmfast
>>> g = rhmfast.RHM(v=6, n=6, m=4, s=2, L=4, seed=0)
>>> x = g.sample(3, seed=1)
>>> x.shape, x.dtype
((3, 16), dtype('uint8'))
>>> bool(g.parse(x).valid.all())
True
>>> g.unrank(g.rank(x)).tolist() == x.tolist()
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from rhmfast import _rhmfast, grammar_io
from rhmfast._args import MAX_SIZE, integer, show_int
from rhmfast._tokens import query_tokens
from rhmfast.grammar_io import FILE_FORMAT as FILE_FORMAT
from rhmfast.grammar_io import FILE_VERSION as FILE_VERSION

__all__ = ["RHM", "ParseResult", "Validity", "Derivation", "zipf", "sample", "study_grammar", "STUDY_GRAMMAR"]

_MAX_INT = 1 << 62


def _float_array(name: str, value: Any) -> np.ndarray:
    try:
        a = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"{name}: not a rectangular array ({e})") from None
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def zipf(m: int, a: float) -> np.ndarray:
    """Power-law rule probabilities: rank ``k = 1..m`` gets probability proportional
    to ``k**-(1+a)``; ``a = -1`` is uniform, ``a = 0`` is ``1/k`` (``TrainConfig.zipf_a``
    means the same).

    >>> zipf(4, 1.0).round(3).tolist()
    [0.702, 0.176, 0.078, 0.044]
    >>> zipf(4, -1.0).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    m = integer("m", m, lo=1)
    try:
        a = float(a)
    except (TypeError, ValueError):
        raise TypeError(f"a: expected a real number, got {type(a).__name__}") from None
    if not math.isfinite(a):
        raise ValueError(f"a = {a} must be finite")
    w = np.arange(1, m + 1, dtype=np.float64) ** -(1.0 + a)
    return w / w.sum()


class ParseResult(NamedTuple):
    """Parse of ``N`` strings.

    ``valid (N,)``: the whole string parses. ``valid_levels (N, L)``: column ``l`` is
    True iff every level-``l`` node's block (``s**(L-l)`` tokens) parses (column 0 is
    ``valid``; column ``l`` implies column ``l+1``). ``root (N,)``: root symbol or -1.
    ``symbols[l]``, ``rules[l]`` for ``l = 0..L-1``: ``(N, s**l)`` int64 symbols and
    rule indices of level ``l`` (-1 where undefined). ``log_prob (N,)``: exact
    log-probability, -inf where the string does not parse.
    """

    valid: np.ndarray
    valid_levels: np.ndarray
    root: np.ndarray
    symbols: list[np.ndarray]
    rules: list[np.ndarray]
    log_prob: np.ndarray


class Validity(NamedTuple):
    """What :meth:`RHM.check` returns: :class:`ParseResult` without the derivation."""

    valid: np.ndarray
    valid_levels: np.ndarray
    root: np.ndarray
    log_prob: np.ndarray


class Derivation(NamedTuple):
    """Derivations of sampled strings: ``symbols[l]`` and ``rules[l]`` are ``(N, s**l)``
    int64 arrays for the internal levels ``l = 0..L-1`` (level ``L`` is the string)."""

    symbols: list[np.ndarray]
    rules: list[np.ndarray]


class RHM:
    """A Random Hierarchy Model grammar.

    ``RHM(v, n, m, s, L, *, seed)`` draws each level's ``symbols * m`` rule tuples
    uniformly without replacement from all ``v**s`` tuples (needs ``n*m <= v**s`` and,
    when ``L >= 2``, ``v*m <= v**s``). ``rule_probs``: None (uniform), a list of ``L``
    entries, or a dict ``{level: probs}`` (missing levels uniform); an entry is
    ``(m,)`` (shared by the level's symbols) or ``(symbols, m)``; rank ``k`` is the
    rule's position in the symbol's list (see :func:`zipf`); a single ``(m,)`` array
    applies to every level. ``root_prior``: ``(n,)``, uniform by default.

    >>> g = RHM(6, 6, 4, 2, 4, seed=0, rule_probs=zipf(4, 1.0))
    >>> g.d, g.num_strings
    (16, 6442450944)
    >>> x = g.sample(2, seed=0)
    >>> bool(np.isfinite(g.log_prob(x)).all())
    True
    """

    __slots__ = ("_g",)

    def __init__(
        self,
        v: int,
        n: int,
        m: int,
        s: int,
        L: int,
        *,
        seed: int,
        rule_probs: Any = None,
        root_prior: Any = None,
    ) -> None:
        v, n, m = integer("v", v, lo=1), integer("n", n, lo=1), integer("m", m, lo=1)
        s, L = integer("s", s, lo=2), integer("L", L, lo=1)
        probs = _rule_probs(rule_probs, v=v, n=n, m=m, L=L)
        prior = _root_prior(root_prior, n)
        seed = integer("seed", seed, hi=2**64 - 1)
        self._g = _rhmfast.Grammar.random(
            v, n, m, s, L, seed=seed, rule_probs=probs, root_prior=prior
        )

    @classmethod
    def _wrap(cls, native: _rhmfast.Grammar) -> RHM:
        obj = cls.__new__(cls)
        obj._g = native
        return obj

    @classmethod
    def from_rules(
        cls,
        rules: Sequence[Any],
        *,
        v: int | None = None,
        rule_probs: Any = None,
        root_prior: Any = None,
    ) -> RHM:
        """A grammar from rule tables made elsewhere: a list of ``L`` integer arrays,
        level 0 ``(n, m, s)``, the others ``(v, m, s)``. ``v`` defaults to
        ``rules[1].shape[0]`` (or ``max + 1`` when ``L == 1``). Duplicated tuples within
        a level or out-of-range symbols raise ValueError.

        >>> g = RHM(3, 2, 2, 2, 2, seed=0)
        >>> h = RHM.from_rules(g.rules, rule_probs=g.rule_probs)
        >>> h == g
        True
        """
        if isinstance(rules, np.ndarray) or not isinstance(rules, Sequence) or not rules:
            raise TypeError("rules: expected a non-empty list of L integer arrays")
        tables = []
        for level, r in enumerate(rules):
            try:
                a = np.asarray(r)
            except ValueError as e:
                raise ValueError(f"rules[{level}]: not a rectangular array ({e})") from None
            if a.dtype.kind not in "iu":
                raise TypeError(f"rules[{level}]: expected integers, got dtype {a.dtype}")
            if a.ndim != 3:
                raise ValueError(
                    f"rules[{level}]: expected a 3-D array (symbols, m, s), got {a.ndim}-D"
                )
            tables.append(np.ascontiguousarray(a, dtype=np.int64))
        n, m, s = tables[0].shape
        L = len(tables)
        if v is None:
            v = (
                tables[1].shape[0]
                if L >= 2
                else (int(tables[0].max()) + 1 if tables[0].size else 1)
            )
        v = integer("v", v, lo=1)
        if n < 1 or m < 1 or s < 2:
            raise ValueError(f"rules[0] has shape {tables[0].shape}: needs n >= 1, m >= 1, s >= 2")
        probs = _rule_probs(rule_probs, v=v, n=n, m=m, L=L)
        prior = _root_prior(root_prior, n)
        return cls._wrap(_rhmfast.Grammar.from_rules(v, tables, rule_probs=probs, root_prior=prior))

    # --- parameters -------------------------------------------------------------

    @property
    def v(self) -> int:
        """Vocabulary size of levels 1..L."""
        return self._g.v

    @property
    def n(self) -> int:
        """Number of root symbols (classes)."""
        return self._g.n

    @property
    def m(self) -> int:
        """Rules per symbol."""
        return self._g.m

    @property
    def s(self) -> int:
        """Branching factor."""
        return self._g.s

    @property
    def L(self) -> int:
        """Depth."""
        return self._g.L

    @property
    def d(self) -> int:
        """String length ``s**L``."""
        return self._g.d

    @property
    def num_strings(self) -> int:
        """Number of distinct strings ``n * m**((d-1)/(s-1))`` (exact Python int)."""
        return self._g.num_strings

    @property
    def rules(self) -> list[np.ndarray]:
        """Rule tables: level 0 ``(n, m, s)``, others ``(v, m, s)``, int64."""
        return self._g.rules()

    @property
    def rule_probs(self) -> list[np.ndarray]:
        """Rule probabilities per level, ``(symbols, m)`` float64."""
        return self._g.rule_probs()

    @property
    def root_prior(self) -> np.ndarray:
        """Root prior, ``(n,)`` float64."""
        return self._g.root_prior()

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned dtype holding ``v`` symbols (the dtype of samples)."""
        v = self.v
        return np.dtype(np.uint8 if v <= 1 << 8 else np.uint16 if v <= 1 << 16 else np.uint32)

    @property
    def is_uniform(self) -> bool:
        """True when every rule distribution and the root prior are uniform."""
        return self._g.is_uniform

    def __repr__(self) -> str:
        kind = "uniform" if self.is_uniform else "non-uniform"
        return f"RHM(v={self.v}, n={self.n}, m={self.m}, s={self.s}, L={self.L}; {kind} rules)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RHM):
            return NotImplemented
        return (
            (self.v, self.n, self.m, self.s, self.L)
            == (other.v, other.n, other.m, other.s, other.L)
            and all(np.array_equal(a, b) for a, b in zip(self.rules, other.rules, strict=True))
            and all(
                np.array_equal(a, b) for a, b in zip(self.rule_probs, other.rule_probs, strict=True)
            )
            and np.array_equal(self.root_prior, other.root_prior)
        )

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Copies and worker processes rebuild the grammar from its validated tables.
        return (_rebuild, (self.v, self.rules, self.rule_probs, self.root_prior))

    def _levels(self, flat: np.ndarray | None) -> list[np.ndarray]:
        assert flat is not None
        s, out, off = self.s, [], 0
        for level in range(self.L):
            width = s**level
            out.append(flat[:, off : off + width])
            off += width
        return out

    def _with_tree(self, out: tuple[np.ndarray, Any, Any], return_tree: bool) -> Any:
        """``tokens``, or ``(tokens, Derivation)``, from the native ``(tokens, syms, rules)``."""
        tokens, syms, rules = out
        if return_tree:
            return tokens, Derivation(self._levels(syms), self._levels(rules))
        return tokens

    # --- sampling -----------------------------------------------------------------

    def sample(
        self, num: int, *, seed: int, unique: bool = False, return_tree: bool = False
    ) -> Any:
        """``num`` strings as a ``(num, d)`` array of :attr:`dtype`.

        ``unique=True`` gives distinct strings. With uniform rules and root prior this
        is exact sampling without replacement (uniform random indices, also beyond
        2**64). Otherwise strings are drawn with replacement and repeats discarded:
        this tilts the set toward rarer strings relative to the grammar (a likely
        string can appear only once), which is part of the "unique training set"
        experiment and must be kept in mind when comparing with ``exp(log_prob)``.
        ``return_tree=True`` returns ``(tokens, Derivation)``.

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> x, tree = g.sample(5, seed=2, unique=True, return_tree=True)
        >>> len({r.tobytes() for r in x}), [t.shape for t in tree.symbols]
        (5, [(5, 1), (5, 2), (5, 4), (5, 8)])
        """
        num, seed = integer("num", num), integer("seed", seed, hi=2**64 - 1)
        out = self._g.sample(num, seed=seed, unique=bool(unique), return_tree=bool(return_tree))
        return self._with_tree(out, return_tree)

    # --- parsing ------------------------------------------------------------------

    def parse(self, x: Any) -> ParseResult:
        """Parse every string of ``x`` (``(N, d)`` integers): validity overall and per
        level, root, derivation and exact log-probability.

        >>> g = RHM(6, 6, 4, 2, 2, seed=0)
        >>> x = g.sample(1, seed=0)
        >>> x[0, :2] = x[0, 2:]  # the first pair is still a rule, but the root may fail
        >>> p = g.parse(x)
        >>> p.valid_levels.shape, bool(p.valid_levels[0, 1])
        ((1, 2), True)
        """
        t = query_tokens(x, "x", width=self.d)
        syms, rules, valid_levels, root, log_prob = self._g.parse(t, tree=True)
        return ParseResult(
            valid_levels[:, 0].copy(),
            valid_levels,
            root,
            self._levels(syms),
            self._levels(rules),
            log_prob,
        )

    def check(self, x: Any) -> Validity:
        """Validity, per-level validity, root and log-probability without building the
        derivation (the fast path for evaluating generated samples).

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> bool(g.check(g.sample(4, seed=0)).valid.all())
        True
        """
        t = query_tokens(x, "x", width=self.d)
        _, _, valid_levels, root, log_prob = self._g.parse(t, tree=False)
        return Validity(valid_levels[:, 0].copy(), valid_levels, root, log_prob)

    def log_prob(self, x: Any) -> np.ndarray:
        """Exact log-probability of every string, ``-inf`` where it does not parse.

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> lp = g.log_prob(g.sample(1, seed=0))
        >>> bool(np.isclose(lp[0], 15 * np.log(1 / 4) + np.log(1 / 6)))
        True
        """
        return self.check(x).log_prob

    # --- enumeration ----------------------------------------------------------------

    def rank(self, x: Any) -> list[int]:
        """Rank of every string: its mixed-radix number (root most significant, then the
        rule of every internal node level by level, left to right), as Python ints in
        ``[0, num_strings)``. A string that does not parse raises ValueError.

        >>> g = RHM(3, 2, 2, 2, 2, seed=0)
        >>> g.rank(g.unrank([0, 15]))
        [0, 15]
        """
        return self._g.rank(query_tokens(x, "x", width=self.d))

    def unrank(self, i: Any, *, return_tree: bool = False) -> Any:
        """The strings with the given ranks (an int or a sequence of ints) as a
        ``(N, d)`` array; the inverse of :meth:`rank`.

        >>> g = RHM(3, 2, 2, 2, 2, seed=0)
        >>> g.unrank(3).shape
        (1, 4)
        """
        if isinstance(i, (str, bytes, bytearray, memoryview)):
            raise TypeError(
                f"i: expected an integer or a sequence of integers, got {type(i).__name__}"
            )
        items = (
            [i]
            if not isinstance(i, (Sequence, np.ndarray))
            else list(np.asarray(i, dtype=object).ravel())
            if isinstance(i, np.ndarray)
            else list(i)
        )
        ranks = [_int_any("i", x) for x in items]
        total = self.num_strings
        for x in ranks:
            if not 0 <= x < total:
                raise ValueError(
                    f"i: rank {show_int(x)} is not in [0, num_strings = {show_int(total)})"
                )
        out = self._g.unrank(ranks, return_tree=bool(return_tree))
        return self._with_tree(out, return_tree)

    # --- exact expected frequencies ---------------------------------------------------

    def symbol_marginals(self, level: int) -> np.ndarray:
        """``(s**level, symbols)`` float64: probability of each symbol at each node of
        ``level`` (0..L; level L gives the token marginals per position).

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> g.symbol_marginals(4).shape, bool(np.allclose(g.symbol_marginals(2).sum(1), 1))
        ((16, 6), True)
        """
        return self._g.symbol_marginals(integer("level", level, lo=-MAX_SIZE))

    def block_probs(self, blocks: Any, level: int, positions: Any = None) -> np.ndarray:
        """``(N,)`` float64: probability that the aligned level-``level`` block (width
        ``s**(L-level)``) at position ``positions[i]`` (in ``[0, s**level)``) equals
        ``blocks[i]``. ``positions=None``: the mean over positions (the pooled, position-
        free frequency); an int applies to every block.

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> x = g.sample(1, seed=0)
        >>> bool(np.isclose(g.block_probs(x, 0)[0], np.exp(g.log_prob(x)[0])))
        True
        """
        level = integer("level", level, lo=-MAX_SIZE)
        # an invalid level is refused by the core, which checks it first
        width = self.s ** (self.L - level) if 0 <= level <= self.L else None
        b = query_tokens(blocks, "blocks", width=width)
        pos = None
        if positions is not None:
            pos = _index_array("positions", positions, b.shape[0])
        return self._g.block_probs(b, level, pos)

    def kgram_probs(self, patterns: Any, offsets: Any = None) -> np.ndarray:
        """``(N,)`` float64: probability that a string holds ``patterns[i]`` (length
        ``1 <= k <= d``; a 2-D array or a list of 1-D arrays of any lengths) starting
        at token ``offsets[i]`` (an int applies to all). ``offsets=None`` gives the
        expected frequency per position: the mean over every offset ``0..d-k``.
        Computed exactly by an inside/outside pass over the rules, never by sampling.

        >>> g = RHM(6, 6, 4, 2, 4, seed=0)
        >>> x = g.sample(1, seed=0)
        >>> bool(np.isclose(g.kgram_probs(x, 0)[0], np.exp(g.log_prob(x)[0])))
        True
        >>> float(g.kgram_probs([[0]]).round(6)[0]) == float(g.symbol_marginals(4)[:, 0].mean().round(6))
        True
        """
        if (
            isinstance(patterns, np.ndarray)
            and patterns.ndim == 2
            or not isinstance(patterns, (Sequence, np.ndarray))
        ):
            pats = (
                list(query_tokens(patterns, "patterns"))
                if isinstance(patterns, np.ndarray)
                else None
            )
            if pats is None:
                raise TypeError(
                    "patterns: expected a 2-D integer array or a list of 1-D integer arrays"
                )
        else:
            pats = []
            pats = [query_tokens(p, f"patterns[{j}]", ndim=1) for j, p in enumerate(patterns)]
        offs = None
        if offsets is not None:
            offs = _index_array("offsets", offsets, len(pats))
        return self._g.kgram_probs(pats, offs)

    # --- persistence --------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save to ``.json`` or ``.npz`` (chosen by suffix); :meth:`load` reads it back.
        Both formats (version 2) carry a SHA-256 of their contents, so a damaged file
        never loads as a different grammar. The file is written atomically (temporary
        file, fsync, rename): a reader sees the old file or the whole new one. The
        formats are described in :mod:`rhmfast.grammar_io`.

        >>> import tempfile, pathlib
        >>> g = RHM(3, 2, 2, 2, 2, seed=0, rule_probs=zipf(2, 1.0))
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "g.json"
        >>> g.save(p); RHM.load(p) == g
        True
        """
        grammar_io.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RHM:
        """Load a grammar saved by :meth:`save`. The file is untrusted: it is never
        unpickled, its size, JSON depth, ``.npz`` members (names, ``.npy`` headers,
        dtypes, shapes, sizes before any data is inflated) are checked against the
        grammar's limits, its checksum is verified, and the grammar is re-validated
        (symbol ranges, rule uniqueness, probabilities). Any damaged, truncated,
        edited or foreign file raises one ValueError ``invalid grammar file PATH: ...``.
        Version-1 files (no checksum; what earlier builds saved) still
        load, fully validated but unchecked: a damaged v1 file that is still a valid
        grammar loads as that grammar."""
        g: RHM = grammar_io.load(path, cls.from_rules)
        return g


def _rebuild(
    v: int, rules: list[np.ndarray], rule_probs: list[np.ndarray], root_prior: np.ndarray
) -> RHM:
    return RHM.from_rules(rules, v=v, rule_probs=rule_probs, root_prior=root_prior)


def _int_any(name: str, value: Any) -> int:
    """A non-negative Python int of any size (a rank)."""
    x = integer(name, value, lo=None, hi=None)
    if x < 0:
        raise ValueError(f"{name}: rank {show_int(x)} is negative")
    return x


def _index_array(name: str, value: Any, num: int) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integers, got dtype {a.dtype}")
    if a.ndim == 0:
        a = np.full(num, int(a), dtype=np.int64)
    if a.ndim != 1 or a.shape[0] != num:
        raise ValueError(
            f"{name}: expected {num} entries (one per pattern/block), got shape {a.shape}"
        )
    if a.size and int(a.min()) < 0:
        raise ValueError(f"{name}: contains {int(a.min())}, which is negative")
    if a.size and int(a.max()) >= _MAX_INT:
        raise ValueError(f"{name}: contains {int(a.max())}, which exceeds {_MAX_INT - 1}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _symbols(level: int, n: int, v: int) -> int:
    return n if level == 0 else v


def _rule_probs(rule_probs: Any, *, v: int, n: int, m: int, L: int) -> list[np.ndarray] | None:
    """Normalises ``rule_probs`` to ``L`` arrays of shape ``(symbols_l, m)``."""
    if rule_probs is None:
        return None
    if isinstance(rule_probs, Mapping):
        entries: list[Any] = [None] * L
        for key, value in rule_probs.items():
            level = integer("rule_probs", key, lo=None, hi=None)
            if not 0 <= level < L:
                raise ValueError(f"rule_probs: level {level} is not in [0, L={L})")
            entries[level] = value
    elif isinstance(rule_probs, np.ndarray) and rule_probs.ndim == 1:
        entries = [rule_probs] * L
    elif isinstance(rule_probs, (list, tuple)):
        if len(rule_probs) != L:
            raise ValueError(
                f"rule_probs: expected L = {L} entries (one per level), got {len(rule_probs)}"
            )
        entries = list(rule_probs)
    else:
        raise TypeError(
            "rule_probs: expected None, a list of L arrays, a dict {level: probs} or an (m,) array"
        )
    out = []
    for level, entry in enumerate(entries):
        syms = _symbols(level, n, v)
        if entry is None:
            out.append(np.full((syms, m), 1.0 / m))
            continue
        a = _float_array(f"rule_probs[{level}]", entry)
        if a.shape == (m,):
            a = np.broadcast_to(a, (syms, m))
        elif a.shape != (syms, m):
            raise ValueError(
                f"rule_probs[{level}]: shape {a.shape}, expected ({m},) or ({syms}, {m})"
            )
        out.append(np.ascontiguousarray(a))
    return out


def _root_prior(root_prior: Any, n: int) -> np.ndarray | None:
    if root_prior is None:
        return None
    a = _float_array("root_prior", root_prior)
    if a.shape != (n,):
        raise ValueError(f"root_prior: shape {a.shape}, expected ({n},)")
    return a


# the study's grammar (arXiv:2605.30642): strings of s**L = 16 tokens over 6 symbols;
# the defaults of study_grammar, sample, TrainConfig, the presets and `rhmfast data`
STUDY_GRAMMAR: dict[str, int] = {"v": 6, "n": 6, "m": 4, "s": 2, "L": 4, "grammar_seed": 0}


def study_grammar(
    *,
    v: int = STUDY_GRAMMAR["v"],
    n: int = STUDY_GRAMMAR["n"],
    m: int = STUDY_GRAMMAR["m"],
    s: int = STUDY_GRAMMAR["s"],
    L: int = STUDY_GRAMMAR["L"],
    grammar_seed: int = STUDY_GRAMMAR["grammar_seed"],
    zipf_a: float | None = None,
    zipf_levels: Sequence[int] | None = None,
) -> RHM:
    """``RHM(v, n, m, s, L, seed=grammar_seed)`` (defaults: the study's grammar) with Zipf
    rule probabilities ``zipf(m, zipf_a)`` at the levels ``zipf_levels`` (default or
    empty: every level; the others uniform) when ``zipf_a`` is given (``None`` or -1:
    uniform rules everywhere). The trainer, ``rhmfast data`` and :func:`sample` all
    build their grammar here.

    >>> g = study_grammar(zipf_a=1.0, zipf_levels=[0])
    >>> g.d, [bool(np.allclose(p, 0.25)) for p in g.rule_probs]   # uniform below the root
    (16, [False, True, True, True])
    """
    if zipf_a is None or zipf_a == -1:  # -1: TrainConfig's "uniform" (bit draws, no tables)
        return RHM(v, n, m, s, L, seed=grammar_seed)
    L = integer("L", L, lo=1)
    levels = [integer("zipf_levels", lev, hi=L - 1) for lev in zipf_levels] if zipf_levels else list(range(L))
    return RHM(v, n, m, s, L, seed=grammar_seed, rule_probs={lev: zipf(m, zipf_a) for lev in levels})


def sample(num: int, *, seed: int, unique: bool = False, **grammar: Any) -> np.ndarray:
    """``num`` strings of ``study_grammar(**grammar)`` (keywords ``v, n, m, s, L,
    grammar_seed, zipf_a, zipf_levels``; defaults: the study's grammar, uniform rules):
    the grammar the trainer and ``rhmfast data`` draw from with the same settings.
    Build the :class:`RHM` yourself to parse or score them.

    >>> import rhmfast
    >>> rhmfast.sample(4, seed=0, unique=True).shape
    (4, 16)
    >>> bool((rhmfast.sample(3, seed=1, zipf_a=1.0, zipf_levels=[0]) ==
    ...       rhmfast.study_grammar(zipf_a=1.0, zipf_levels=[0]).sample(3, seed=1)).all())
    True
    """
    return study_grammar(**grammar).sample(num, seed=seed, unique=unique)
