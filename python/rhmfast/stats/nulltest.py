"""A statistic read against its null runs, and the one wording of every verdict.

Every verdict of rhmfast is a statistic on the observed runs, its two-stage bootstrap
interval (:mod:`rhmfast.stats.bootstrap`) and the same statistic on null runs of known
answer fitted to the observed ones (every string memorized at the same rate).
:class:`NullTest` turns the three into a decision with a Monte Carlo p-value whose
false-positive rate is at most ``alpha`` when the null runs are exchangeable with the
observed ones; :func:`answer` and :func:`verdict` put it in words.

>>> t = NullTest.of("D", 0.9, (0.5, 1.3), np.linspace(-0.3, 0.3, 19), alpha=0.05)
>>> t.decision, round(t.p, 3)
(1, 0.05)
>>> verdict("memorized", t, answer(t, above="yes", below="no, the opposite"))
'memorized: yes: D = +0.90 [+0.50, +1.30]; null +0.00 [-0.28, +0.29] over 19 null run sets, p = 0.05'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = ["NullTest", "answer", "verdict"]


@dataclasses.dataclass(frozen=True)
class NullTest:
    """A statistic against its null runs.

    Attributes:
        name: what the statistic is.
        value: its value on the observed runs.
        interval: 95% two-stage bootstrap interval of ``value``.
        null: the statistic on each null run set.
        alpha: the test's level.
        p: two-sided Monte Carlo p-value, ``(1 + #{|null - c| >= |value - c|}) / (K + 1)``
            with ``c`` the median of the null values and the observed one.
        null_name: what the null values are (a report's wording).
    """

    name: str
    value: float
    interval: tuple[float, float]
    null: np.ndarray
    alpha: float
    p: float
    null_name: str = "null run sets"

    @classmethod
    def of(cls, name: str, value: float, interval: tuple[float, float], null: Sequence[float] | np.ndarray,
           *, alpha: float = 0.05, null_name: str = "null run sets") -> NullTest:
        arr = np.asarray(null, np.float64)
        arr = arr[np.isfinite(arr)]
        if not np.isfinite(value) or not len(arr):
            return cls(name, float(value), interval, arr, alpha, float("nan"), null_name)
        # centred on the median of all K + 1 values, the observed one included: the K + 1
        # distances are then exchangeable under the null, so P(p <= alpha) <= alpha exactly
        # (a centre from the null values alone rejects 6.8% at alpha = 0.05 with K = 19)
        c = float(np.median(np.append(arr, value)))
        beyond = int((np.abs(arr - c) >= abs(value - c) - 1e-12).sum())
        return cls(name, float(value), (float(interval[0]), float(interval[1])), arr, alpha,
                   (1 + beyond) / (len(arr) + 1), null_name)

    @property
    def centre(self) -> float:
        return float(np.median(self.null)) if len(self.null) else float("nan")

    @property
    def decision(self) -> int:
        """+1 (effect above the null), -1 (below) or 0 (no effect detected)."""
        if not np.isfinite(self.p) or self.p > self.alpha:
            return 0
        return 1 if self.value > float(np.median(np.append(self.null, self.value))) else -1

    @property
    def null_band(self) -> tuple[float, float]:
        """Central 95% of the statistic on null runs."""
        if not len(self.null):
            return (float("nan"), float("nan"))
        lo, hi = np.quantile(self.null, [0.025, 0.975])
        return float(lo), float(hi)

    @property
    def detectable(self) -> float:
        """About the smallest distance from the null median the test could have detected
        at ``alpha`` (inf when too few null runs allow a p-value that small)."""
        k = len(self.null)
        allowed = int(np.floor(self.alpha * (k + 1) + 1e-9)) - 1  # null values allowed at or beyond
        if allowed < 0 or not k:
            return float("inf")
        dev = np.sort(np.abs(self.null - self.centre))[::-1]
        return float(dev[allowed]) if allowed < k else 0.0

    def summary(self, digits: int = 2) -> str:
        """``value [low, high]; null c [lo, hi] (K runs), p = ...``."""
        f = f"{{:+.{digits}f}}"
        lo, hi = self.null_band
        return (f"{self.name} = {f.format(self.value)} [{f.format(self.interval[0])}, {f.format(self.interval[1])}]; "
                f"null {f.format(self.centre)} [{f.format(lo)}, {f.format(hi)}] over {len(self.null)} {self.null_name}, "
                f"p = {self.p:.2g}")

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "value": self.value, "interval": list(self.interval), "null": self.null.tolist(),
                "null_band": list(self.null_band), "p": self.p, "alpha": self.alpha, "decision": self.decision,
                "detectable": self.detectable}


def answer(test: NullTest, *, above: str, below: str, why: str = "") -> str:
    """The answer ``test`` gives: ``above`` (the statistic above its null), ``below``, or
    "no effect detected" with the smallest distance from the null the test could have
    detected (or why it could detect none), or "not measurable" (``why``, when given)
    when the statistic or its p-value is undefined.

    >>> answer(NullTest.of("rho", -1.0, (-1, -1), np.linspace(-0.5, 0.5, 99)), above="no", below="yes")
    'yes'
    >>> answer(NullTest.of("rho", 0.0, (-1, 1), np.linspace(-0.5, 0.5, 99)), above="no", below="yes")
    'no effect detected (it would detect 0.48 or more from the null median at p <= 0.05)'
    """
    if not (np.isfinite(test.value) and np.isfinite(test.p)):
        return f"not measurable ({why})" if why else "not measurable"
    if test.decision > 0:
        return above
    if test.decision < 0:
        return below
    if not np.isfinite(test.detectable):
        return f"no effect detected (too few null values to reach p <= {test.alpha:g}; add null runs, seeds or values)"
    return f"no effect detected (it would detect {test.detectable:.2g} or more from the null median at p <= {test.alpha:g})"


def verdict(question: str, test: NullTest, said: str, *, digits: int = 2) -> str:
    """``"QUESTION: SAID: SUMMARY"`` (``"QUESTION? SAID: SUMMARY"`` for a question that
    ends in "?"): the :func:`answer` ``said`` and :meth:`NullTest.summary` (the answer
    alone when the test is not measurable)."""
    head = f"{question} {said}" if question.endswith("?") else f"{question}: {said}"
    if not (np.isfinite(test.value) and np.isfinite(test.p)):
        return head
    return f"{head}: {test.summary(digits)}"
