"""Plot helpers (matplotlib, imported lazily, Agg backend): every time axis is
log-scaled and labelled, every raw rate is drawn beside its baseline (dashed).

>>> import numpy as np, tempfile, pathlib
>>> from rhmfast.analysis.plots import figure_lines, save_figure
>>> fig = figure_lines(np.array([16, 32, 64]), {"copies": np.array([0.0, 0.1, 0.3])},
...                    ylabel="fraction", title="demo")
>>> paths = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "demo")
>>> [p.suffix for p in paths]
['.png', '.svg']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "STEP_LABEL",
    "step_tick_label",
    "pyplot",
    "save_figure",
    "figure_lines",
    "figure_quintile_curves",
    "figure_scatter_times",
    "figure_time_vs",
    "figure_block_frequencies",
    "figure_overproduction",
    "figure_null_tests",
    "figure_band",
]

STEP_LABEL = "training step (log scale)"


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend (imported on first use)."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'rhmfast[plot]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, stem: str | Path) -> tuple[Path, Path]:
    """Write ``stem.png`` (150 dpi) and ``stem.svg``; close the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    pyplot().close(fig)
    return png, svg


def step_tick_label(x: float, _pos: Any = None) -> str:
    """Compact tick label of a step count: ``300``, ``2k``, ``1.5M``.

    >>> [step_tick_label(x) for x in (300, 2000, 1500000)]
    ['300', '2k', '1.5M']
    """
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"


def _log_step_axis(ax: Any, steps: np.ndarray) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlabel(STEP_LABEL)
    pos = np.asarray(steps, np.float64)
    pos = pos[np.isfinite(pos) & (pos > 0)]
    lo, hi = (pos.min() / 1.2, pos.max() * 1.2) if pos.size else (1.0, 10.0)
    if pos.size:
        ax.set_xlim(lo, hi)
    # Matplotlib labels every minor tick of a short log axis ("2x10^2 3x10^2 ..."),
    # and the labels run into each other: label decades, and 2x / 5x (and 3x) when the
    # axis spans under ~1.5 decades (one decade), all in the compact form.
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(step_tick_label))
    if hi / lo < 30:
        subs = (2.0, 3.0, 5.0) if hi / lo < 10 else (2.0, 5.0)
        ax.xaxis.set_minor_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(FuncFormatter(step_tick_label))
    else:
        ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(range(2, 10))))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.25)


def figure_lines(
    steps: np.ndarray | Mapping[str, np.ndarray],
    lines: Mapping[str, np.ndarray],
    *,
    ylabel: str,
    title: str,
    baselines: Mapping[str, np.ndarray] | None = None,
    baseline_label: str = "baseline (no memorization)",
    logy: bool = False,
) -> Any:
    """One panel: ``lines`` against log step; ``baselines`` (same keys) dashed in the
    same colour, named ``baseline_label`` in the legend. ``steps`` may be one array or a
    mapping of arrays per line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    all_steps = []
    for i, (label, y) in enumerate(lines.items()):
        x = steps[label] if isinstance(steps, Mapping) else steps
        all_steps.append(np.asarray(x, np.float64))
        color = f"C{i % 10}"
        ax.plot(x, y, marker="o", ms=3, color=color, label=label)
        if baselines is not None and label in baselines:
            ax.plot(x, baselines[label], ls="--", color=color, alpha=0.8)
    if baselines:
        ax.plot([], [], ls="--", color="gray", label=baseline_label)
    _log_step_axis(ax, np.concatenate(all_steps) if all_steps else np.zeros(0))
    if logy:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def figure_quintile_curves(
    steps: np.ndarray,
    observed: np.ndarray,
    baseline: np.ndarray,
    *,
    ylabel: str,
    title: str,
    baseline_label: str = "baseline",
) -> Any:
    """``observed`` and ``baseline`` are ``(Q, T)``: one solid and one dashed line per
    prototypicality bin (Q1 = least prototypical)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    q = observed.shape[0]
    cmap = plt.get_cmap("viridis")
    for i in range(q):
        color = cmap(0.85 * i / max(q - 1, 1))  # stop before viridis' pale yellow end
        ax.plot(steps, observed[i], marker="o", ms=3, color=color, label=f"Q{i + 1}")
        if np.isfinite(baseline[i]).any():
            ax.plot(steps, baseline[i], ls="--", color=color, alpha=0.8)
    ax.plot([], [], ls="--", color="gray", label=baseline_label)
    _log_step_axis(ax, steps)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, title="prototypicality (Q5 = most)", title_fontsize=7)
    return fig


def figure_scatter_times(
    scores: Sequence[np.ndarray],
    times: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    xlabel: str,
    title: str,
    never_at: float,
) -> Any:
    """Memorization step (log y) against prototypicality, one colour per group; samples
    never memorized are drawn at ``never_at`` with an open marker."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (x, t, lab) in enumerate(zip(scores, times, labels, strict=True)):
        t = np.asarray(t, np.float64)
        fin = np.isfinite(t)
        ax.scatter(x[fin], t[fin], s=8, alpha=0.6, color=f"C{i % 10}", label=lab)
        if (~fin).any():
            ax.scatter(x[~fin], np.full((~fin).sum(), never_at), s=8, alpha=0.4,
                       facecolors="none", edgecolors=f"C{i % 10}")
    ax.axhline(never_at, color="gray", lw=0.5, ls=":")
    ax.set_yscale("log")
    ax.set_ylabel("memorization step (log scale; top line = never)")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return fig


def figure_time_vs(
    x: np.ndarray,
    times: Mapping[str, np.ndarray],
    *,
    xlabel: str,
    title: str,
    logx: bool = False,
    fit_proportional: bool = False,
    never_at: float | None = None,
) -> Any:
    """Memorization time (log y) against a swept parameter; ``times`` maps a label to
    one time per ``x``; ``+inf`` (never) is drawn at ``never_at`` with an open marker.
    ``fit_proportional`` adds the least-squares line ``t = c * x`` (in log space)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.asarray(x, np.float64)
    for i, (label, t) in enumerate(times.items()):
        t = np.asarray(t, np.float64)
        fin = np.isfinite(t)
        color = f"C{i % 10}"
        ax.plot(x[fin], t[fin], marker="o", color=color, label=label)
        if never_at is not None and (~fin).any():
            ax.scatter(x[~fin], np.full((~fin).sum(), never_at), facecolors="none", edgecolors=color)
        if fit_proportional and fin.sum() >= 1 and np.all(x[fin] > 0):
            c = float(np.exp(np.mean(np.log(t[fin]) - np.log(x[fin]))))
            xs = np.linspace(x[fin].min(), x[fin].max(), 50)
            ax.plot(xs, c * xs, ls="--", color=color, alpha=0.7, label=f"{label}: t = {c:.3g} x")
    if never_at is not None:
        ax.axhline(never_at, color="gray", lw=0.5, ls=":")
    if logx:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("memorization time: training step (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7)
    return fig


def figure_block_frequencies(tables: Sequence[Any], *, title: str) -> Any:
    """One log-log panel per level (``tables``: :class:`~rhmfast.analysis.BlockTable`
    objects): each block's generated frequency (filled) and training-set frequency
    (open) against its exact grammar probability (its training frequency when the
    grammar is unknown); the diagonal is "generated as often as the grammar says".
    Zero frequencies sit on the panel's floor line."""
    from matplotlib.ticker import NullFormatter

    plt = pyplot()
    tables = list(tables)
    fig, axes = plt.subplots(1, max(1, len(tables)), figsize=(3.2 * max(1, len(tables)), 3.6), squeeze=False)
    for ax, tab in zip(axes[0], tables, strict=False):
        known = bool(np.isfinite(tab.grammar).all())
        ref = tab.grammar if known else tab.train
        pos = ref > 0
        freqs = np.concatenate([tab.generated[tab.generated > 0], tab.train[tab.train > 0]])
        floor = float(freqs.min()) / 3 if freqs.size else 1e-6
        vals = np.concatenate([freqs, ref[pos]])
        x = ref[pos]
        ax.scatter(x, np.maximum(tab.generated[pos], floor), s=8, color="C0", label="generated")
        if known:
            ax.scatter(x, np.maximum(tab.train[pos], floor), s=10, facecolors="none", edgecolors="C1",
                       label="training set")
        if x.size:
            lo, hi = min(float(x.min()), floor), max(float(x.max()), float(vals.max()))
            ax.plot([lo, hi], [lo, hi], ls="--", color="gray", lw=0.8, label="as the grammar" if known else "as training")
        ax.axhline(floor, color="gray", lw=0.5, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # minor labels collide on narrow log ranges
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(("grammar probability" if known else "training frequency") + " (log scale)")
        ax.set_title(f"level {tab.level}", fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
    axes[0][0].set_ylabel("frequency among blocks (log scale)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def figure_overproduction(
    steps: np.ndarray,
    ratios: Mapping[str, np.ndarray],
    copy_fraction: np.ndarray,
    chance_copy_fraction: np.ndarray,
    *,
    ratio_min: float,
    reference: str,
    window: tuple[float, float] | None = None,
) -> Any:
    """Two panels over log step: each level's common-block ratio (``ratios``: label ->
    ratio per checkpoint) with the no-over-production line at 1 and the window threshold,
    and the copy fraction beside its chance rate; ``window`` (first, last step) shaded."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True)
    for i, (label, r) in enumerate(ratios.items()):
        ax1.plot(steps, r, marker="o", ms=3, color=f"C{i % 10}", label=label)
    ax1.axhline(1.0, color="gray", ls="--", lw=0.8, label=f"no over-production ({reference})")
    ax1.axhline(ratio_min, color="gray", ls=":", lw=0.8, label=f"window threshold x{ratio_min:g}")
    ax1.set_ylabel("common-block ratio")
    ax1.set_title("Over-production of common blocks, and whole copies")
    ax1.legend(fontsize=7)
    ax2.plot(steps, copy_fraction, marker="o", ms=3, color="C0", label="copy fraction")
    ax2.plot(steps, chance_copy_fraction, ls="--", color="C0", label="chance (no memorization, same validity)")
    ax2.set_ylabel("fraction of generated samples")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        _log_step_axis(ax, np.asarray(steps, np.float64))
        if window is not None:
            ax.axvspan(*window, color="orange", alpha=0.15)
    ax1.set_xlabel("")  # shared axis: labelled once, under the lower panel
    return fig


def figure_null_tests(tests: Sequence[Any], *, title: str) -> Any:
    """One row per :class:`~rhmfast.stats.NullTest`: the statistic on each
    null run set (grey dots, their central 95% as a bar) and the observed value with its
    bootstrap interval (black). Rows are scaled by their null band, so they share an axis."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.55 * max(len(tests), 1)))
    for i, t in enumerate(tests):
        lo, hi = t.null_band
        c = t.centre
        scale = max(hi - lo, 1e-12) / 2 if np.isfinite(hi - lo) and hi > lo else 1.0
        y = len(tests) - 1 - i
        ax.scatter((t.null - c) / scale, np.full(len(t.null), y) + 0.12, s=9, color="0.6")
        ax.plot([(lo - c) / scale, (hi - c) / scale], [y + 0.12] * 2, color="0.6", lw=4, alpha=0.5)
        v, (a, b) = (t.value - c) / scale, t.interval
        ax.errorbar([v], [y - 0.12], xerr=[[v - (a - c) / scale], [(b - c) / scale - v]], fmt="o", color="black",
                    capsize=3, ms=4)
    ax.axvline(0, color="gray", lw=0.5, ls=":")
    ax.set_yticks(range(len(tests)))
    ax.set_yticklabels([t.name for t in tests][::-1], fontsize=7)
    ax.set_xlabel("statistic minus the null median, in half-widths of the null's 95% band")
    ax.set_title(title)
    return fig


def figure_band(
    steps: np.ndarray,
    observed: np.ndarray,
    band: tuple[np.ndarray, np.ndarray],
    *,
    ylabel: str,
    title: str,
    band_label: str = "null runs (central 95%)",
    xlabel: str | None = None,
) -> Any:
    """A statistic over checkpoints (solid) inside the band null runs give it (shaded);
    with ``xlabel``, over that quantity (``steps`` is then any increasing x, on a linear axis)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.fill_between(steps, band[0], band[1], color="0.8", label=band_label)
    ax.plot(steps, observed, marker="o", ms=3, color="C0", label="observed")
    ax.axhline(0, color="gray", lw=0.5, ls=":")
    if xlabel is None:
        _log_step_axis(ax, np.asarray(steps, np.float64))
    else:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig
