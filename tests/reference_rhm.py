"""A slow, obviously-correct pure-Python Random Hierarchy Model, the yardstick of
the grammar tests. Works on plain nested lists; no numpy in the algorithms."""

from __future__ import annotations

import itertools
import math
import random


class RefRHM:
    def __init__(self, g):
        """Copies the tables of an ``rhmfast.RHM`` into plain lists."""
        self.v, self.n, self.m, self.s, self.L = g.v, g.n, g.m, g.s, g.L
        self.d = self.s**self.L
        self.rules = [[[tuple(int(c) for c in t) for t in sym] for sym in lv] for lv in g.rules]
        self.probs = [[[float(p) for p in sym] for sym in lv] for lv in g.rule_probs]
        self.prior = [float(p) for p in g.root_prior]
        # Reverse tables: tuple -> (symbol, rule index), per level.
        self.parent = []
        for lv in self.rules:
            table = {}
            for a, sym in enumerate(lv):
                for j, t in enumerate(sym):
                    assert t not in table
                    table[t] = (a, j)
            self.parent.append(table)
        self.K = (self.d - 1) // (self.s - 1)

    def parse(self, x):
        """-> (valid_levels [L bools], root, symbols [L lists], rules [L lists], log_prob)."""
        s, L = self.s, self.L
        cur = [int(t) for t in x]
        symbols = [None] * L
        rules = [None] * L
        for level in reversed(range(L)):
            syms, rs = [], []
            for i in range(len(cur) // s):
                t = tuple(cur[i * s : (i + 1) * s])
                if -1 in t or t not in self.parent[level]:
                    syms.append(-1)
                    rs.append(-1)
                else:
                    a, j = self.parent[level][t]
                    syms.append(a)
                    rs.append(j)
            symbols[level], rules[level] = syms, rs
            cur = syms
        valid_levels = [all(a >= 0 for a in symbols[lv]) for lv in range(L)]
        root = symbols[0][0]
        if root < 0:
            return valid_levels, -1, symbols, rules, -math.inf
        logp = math.log(self.prior[root])
        for level in range(L):
            for a, j in zip(symbols[level], rules[level], strict=True):
                logp += math.log(self.probs[level][a][j])
        return valid_levels, root, symbols, rules, logp

    def expand(self, root, digits):
        """String and derivation from the root and the node rule choices (level order)."""
        cur = [root]
        symbols, rules, t = [], [], 0
        for level in range(self.L):
            symbols.append(list(cur))
            rules.append(list(digits[t : t + len(cur)]))
            nxt = []
            for a in cur:
                nxt.extend(self.rules[level][a][digits[t]])
                t += 1
            cur = nxt
        return cur, symbols, rules

    def enumerate(self):
        """Every string in rank order (root most significant, then the node choices
        in level order, left to right) with its probability."""
        out = []
        for choice in itertools.product(range(self.n), *[range(self.m)] * self.K):
            x, symbols, rules = self.expand(choice[0], list(choice[1:]))
            p = self.prior[choice[0]]
            for level in range(self.L):
                for a, j in zip(symbols[level], rules[level], strict=True):
                    p *= self.probs[level][a][j]
            out.append((tuple(x), p))
        return out

    def rank(self, x):
        _, root, _, rules, _ = self.parse(x)
        idx = root
        for level in range(self.L):
            for j in rules[level]:
                idx = idx * self.m + j
        return idx

    def sample(self, rng: random.Random):
        root = rng.choices(range(self.n), weights=self.prior)[0]
        cur, digits = [root], []
        for level in range(self.L):
            nxt = []
            for a in cur:
                j = rng.choices(range(self.m), weights=self.probs[level][a])[0]
                digits.append(j)
                nxt.extend(self.rules[level][a][j])
            cur = nxt
        return cur
