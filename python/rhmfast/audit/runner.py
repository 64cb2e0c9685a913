"""The audit job: read and check every input, count copies per sample set, run the
statistics against their nulls, write the report all at once (built in a temporary
sibling directory, then renamed), or nothing when an input is refused.

>>> audit("no-such-data-set", ["samples.npy"], num_null=10**9)
Traceback (most recent call last):
ValueError: num_null = 1000000000 must be in [19, 100000]
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

import rhmfast
from rhmfast._args import integer
from rhmfast.analysis.excess import excess_copies, quintile_contrast
from rhmfast.audit.samples import SampleSet, read_sample_sets
from rhmfast.audit.statistics import (
    QUINTILES,
    copy_run,
    count_copies,
    first_occurrence,
    memorization_test,
    prototype_test,
    verdicts,
)
from rhmfast.audit.writer import write_report
from rhmfast.data import Dataset, load
from rhmfast.stats import grammar_draws, prototypicality_score, quantile_bins
from rhmfast.stats.chance import poisson_sf

__all__ = ["audit", "MAX_NUM_NULL", "MAX_NUM_BOOT"]

#: the most null run sets (``num_null``) and bootstrap draws (``num_boot``) an audit takes:
#: each is a float64 per draw and a pass over the data, so 10**9 would ask for gigabytes
MAX_NUM_NULL = 100_000
MAX_NUM_BOOT = 100_000


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm comes with the train extra
        return None
    return tqdm(total=total, desc=desc, file=sys.stderr)


def prepare_out(out: pathlib.Path) -> pathlib.Path:
    """A fresh temporary sibling of ``out``; ``out`` itself must be absent, empty or an
    earlier audit (holding ``results.json``), which is then replaced whole."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"out = {str(out)!r}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / "results.json").exists():
        raise ValueError(f"out = {str(out)!r}: exists, is not empty and holds no earlier audit; "
                         "choose another directory")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_out(tmp: pathlib.Path, out: pathlib.Path) -> None:
    old = out.with_name(f".{out.name}.old{os.getpid()}")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def audit(dataset: Any, samples: Sequence[SampleSet | str | os.PathLike[str]], *, out: str | os.PathLike[str] | None = None,
          num_null: int = 199, num_boot: int = 1000, seed: int = 0, progress: bool | None = None,
          figures: bool | None = None) -> dict[str, Any]:
    """Audit ``samples`` (:class:`SampleSet` s, or sample file specs as the command line
    takes them) against ``dataset`` (a path or :class:`rhmfast.data.Dataset`); return the
    results (what ``results.json`` holds) and, with ``out``, write ``report.md``,
    ``report.html``, ``results.json`` and ``figures/`` there (all at once: built in a
    temporary sibling, then renamed). Every file is read and checked before anything is
    written. ``figures``: None = when matplotlib is installed. ``progress``: None = on a TTY."""
    num_null = integer("num_null", num_null, lo=19, hi=MAX_NUM_NULL)
    num_boot = integer("num_boot", num_boot, lo=10, hi=MAX_NUM_BOOT)
    seed = integer("seed", seed, lo=0)
    ds = dataset if isinstance(dataset, Dataset) else load(dataset)
    specs = [s for s in samples if not isinstance(s, SampleSet)]
    sets = [s for s in samples if isinstance(s, SampleSet)] + (read_sample_sets(specs, ds) if specs else [])
    if not sets:
        raise ValueError("samples: at least one sample file is needed")
    for s in sets:
        if s.samples.ndim != 2 or s.samples.shape[1] != ds.d or not len(s.samples):
            raise ValueError(f"samples {s.label!r}: expected a non-empty (B, d={ds.d}) array, got {s.samples.shape}")
    tmp = prepare_out(pathlib.Path(out)) if out is not None else None
    try:
        results = _audit(ds, sets, rhmfast, num_null, num_boot, seed, progress,
                         tmp, importlib.util.find_spec("matplotlib") is not None if figures is None else figures)
        if tmp is not None:
            assert out is not None
            commit_out(tmp, pathlib.Path(out))
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return results


def _audit(ds: Any, sets: list[SampleSet], rhmfast: Any, num_null: int, num_boot: int, seed: int,
           progress: bool | None, root: pathlib.Path | None, figures: bool) -> dict[str, Any]:
    g = ds.grammar
    T, P, H, L = len(sets), len(ds.train), len(ds.heldout), int(g.L)
    bar = _progress(2 * T + 1 + 3 * num_null, progress, "audit")
    tick = (lambda: bar.update(1)) if bar is not None else (lambda: None)
    index = rhmfast.TrainingIndex(ds.train)
    held_index = rhmfast.TrainingIndex(ds.heldout) if H else None
    score = prototypicality_score(ds.train, int(g.s))
    quint = quantile_bins(score, QUINTILES)
    p_train = np.exp(ds.train_logp) * first_occurrence(ds.train)
    p_held = np.exp(ds.heldout_logp) * first_occurrence(ds.heldout) if H else np.zeros(0)
    train_mass = float(p_train.sum())
    tick()

    per_set, reports, baselines = [], [], []
    train_counts, held_counts = np.zeros((T, P), np.int64), np.zeros((T, H), np.int64)
    num_valid = np.zeros(T, np.int64)
    for t, s in enumerate(sets):
        rep = rhmfast.memorization_report(s.samples, index, g)
        reports.append(rep)
        tick()
        # the same quantities on a fresh draw from the grammar of the same size: the null
        # of a model that learned the grammar and memorized nothing
        base = rhmfast.memorization_report(g.sample(len(s.samples), seed=seed + 1000 + t), index, g)
        baselines.append(base)
        tick()
        copy_of = rep["copy_of"]
        train_counts[t] = np.bincount(copy_of[copy_of >= 0], minlength=P)
        held_of = count_copies(s.samples, held_index, H)[0] if H else np.full(len(s.samples), -1)
        held_counts[t] = np.bincount(held_of[held_of >= 0], minlength=H)
        num_valid[t] = int(rep["valid"].sum())
        sm, bs = rep["summary"], base["summary"]
        obs_q = np.bincount(quint[copy_of[copy_of >= 0]], minlength=QUINTILES)
        # the chance count (rhmfast.stats.chance): the valid samples that copy nothing, over 1 - S
        draws = float(grammar_draws(num_valid[t] - int((copy_of >= 0).sum()), train_mass))
        chance_q = draws * np.bincount(quint, p_train, minlength=QUINTILES)
        hits = np.flatnonzero(copy_of >= 0)
        per_set.append({
            "label": s.label, "step": s.step, "file": str(s.path) if s.path is not None else None,
            "num_samples": int(len(s.samples)), "num_valid": int(num_valid[t]),
            "copies": {"sample": hits.tolist(), "train_index": copy_of[hits].tolist(),
                       "count": int(len(hits)), "chance": draws * train_mass,
                       "distinct": int(sm["distinct_copies"])},
            "heldout_copies": {"count": int((held_of >= 0).sum()), "chance": draws * float(p_held.sum())},
            "quintiles": {"observed": obs_q.tolist(), "chance": chance_q.tolist(),
                          "p_upper": poisson_sf(obs_q, chance_q).tolist()},
            "summary": sm, "grammar_draw": {k: bs[k] for k in ("copy_fraction", "longest_match_mean", "valid_levels",
                                                              "block_novelty", "tv_generated_vs_grammar",
                                                              "tv_generated_vs_train", "longest_match_histogram")},
        })

    tests = [memorization_test(ds, train_counts, held_counts, num_valid, num_null=num_null, num_boot=num_boot, seed=seed,
                               tick=tick)]
    proto_bf, band_bf = prototype_test(ds, train_counts, held_counts, num_valid, score, name="Q5 - Q1 excess copies "
                                       "(block frequency)", num_null=num_null, num_boot=num_boot, seed=seed, tick=tick)
    proto_lp, _ = prototype_test(ds, train_counts, held_counts, num_valid, ds.train_logp,
                                 name="Q5 - Q1 excess copies (log p)", num_null=num_null, num_boot=num_boot,
                                 seed=seed + 7, upto=[T - 1], tick=tick)
    tests += [proto_bf, proto_lp]
    if bar is not None:
        bar.close()
    run = copy_run(ds, train_counts, held_counts, np.arange(T))
    curve = np.array([quintile_contrast(excess_copies(run, u), score) for u in range(T)])
    band = np.quantile(band_bf, [0.025, 0.975], axis=0)
    pooled_obs = np.sum([r["quintiles"]["observed"] for r in per_set], axis=0)
    pooled_chance = np.sum([r["quintiles"]["chance"] for r in per_set], axis=0)
    results: dict[str, Any] = {
        "dataset": {"path": str(ds.path), "params": ds.params, "num_train": P, "num_heldout": H, "d": ds.d},
        "sets": per_set,
        "pooled_quintiles": {"observed": pooled_obs.tolist(), "chance": pooled_chance.tolist(),
                             "p_upper": poisson_sf(pooled_obs, pooled_chance).tolist(),
                             "train_strings": np.bincount(quint, minlength=QUINTILES).tolist()},
        "tests": {t.name: t.as_dict() for t in tests},
        "prototype_curve": {"value": curve.tolist(), "null_low": band[0].tolist(), "null_high": band[1].tolist()},
        "settings": {"num_null": num_null, "num_boot": num_boot, "seed": seed},
    }
    results["verdicts"] = verdicts(tests)
    if root is not None:
        write_report(root, ds, sets, results, tests, reports, baselines, figures, L)
    return results
