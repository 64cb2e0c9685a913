"""Best-of timing shared by the benches (wall time, and the CPU time of that run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

CPU: dict[str, float] = {}


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs; the CPU time (all threads) of that run is kept
    in ``CPU["last"]`` (on a shared machine, CPU-time ratios are the steadier figure)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, CPU["last"] = wall, cpu
    return best, out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[tuple[float, float], Any]:
    """``((wall, cpu), result)`` of the best of ``repeat`` runs."""
    wall, out = best_of(fn, repeat)
    return (wall, CPU["last"]), out
