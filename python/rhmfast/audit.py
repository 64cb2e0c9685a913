"""Judge any model's samples against a data set written by :mod:`rhmfast.data`.

``rhmfast audit DATASET SAMPLES... [--out DIR]`` (or :func:`audit`): exact copies (and of
which training strings) beside the chance count of a model that learned the grammar and
memorized nothing, per prototypicality quintile; longest match with the training set,
per-level validity and block novelty, over-production of blocks against training and
grammar frequencies (all from :func:`rhmfast.memorization_report`, each beside the same
quantity on a fresh draw from the grammar of the same size); with several training
steps (``step=1000:samples.npy``) the same as curves. Two calibrated statistics
(:mod:`rhmfast.analysis.excess`), each against a null computed without a model:

- **memorization**: mean excess copies per training string, training strings minus
  held-out strings of matched log p (:func:`~rhmfast.analysis.excess.excess_copies`).
  Null: run sets of a model that learned the grammar and memorized nothing (as many
  valid samples per step, drawn from the grammar, counted on the same strings). It
  assumes the non-memorized samples follow the grammar's distribution; the held-out
  control cancels departures that reach training and held-out strings of the same log
  p alike in expectation, not in spread. (A permutation of the train / held-out labels
  was tried and rejected: the data set's two sets are not exchangeable within log p
  bins, which made it reject 12% of null seeds.)
- **prototypes first**: the most minus the least prototypical quintile's excess copies
  (:func:`~rhmfast.analysis.excess.quintile_contrast`; by training-set block
  frequency, and by log p). Null: null run sets fitted to the observed samples, a
  memorizer that copies as often at every step but every training string at the same
  rate, its other draws from the grammar (the known-answer mixture in count space,
  :mod:`rhmfast.knownanswers.counts`).

numpy only; figures when matplotlib is installed.

>>> import tempfile, pathlib, numpy as np
>>> import rhmfast.data
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> ds = rhmfast.data.load(rhmfast.data.write(root / "rhm", L=3, num_train=100, num_heldout=100))
>>> samples = np.concatenate([ds.train[:5], ds.grammar.sample(195, seed=1)])
>>> res = audit(ds, [SampleSet("model", None, None, samples)], out=root / "audit", num_null=19, num_boot=20)
>>> res["sets"][0]["copies"]["train_index"][:5]
[0, 1, 2, 3, 4]
>>> sorted(p.name for p in (root / "audit").iterdir() if p.is_file())
['report.html', 'report.md', 'results.json']
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from rhmfast._io.jsonfile import write_json
from rhmfast.analysis.excess import excess_copies, quintile_contrast, string_sizes
from rhmfast.analysis.rundir import Run
from rhmfast.data import read_strings
from rhmfast.knownanswers.counts import fitted_lam, mixture_counts
from rhmfast.stats import (
    NullTest,
    answer,
    grammar_draws,
    prototypicality_score,
    quantile_bins,
    two_stage_interval,
    verdict,
)
from rhmfast.stats.chance import poisson_sf

__all__ = ["SampleSet", "parse_sample_spec", "read_sample_sets", "audit", "count_copies", "memorization_test",
           "prototype_test"]

QUINTILES = 5
#: the most null run sets (``num_null``) and bootstrap draws (``num_boot``) an audit takes:
#: each is a float64 per draw and a pass over the data, so 10**9 would ask for gigabytes
MAX_NUM_NULL = 100_000
MAX_NUM_BOOT = 100_000
_MAX_STEP = 2**63 - 1


@dataclasses.dataclass(frozen=True)
class SampleSet:
    """One file of samples: ``label``, training ``step`` (None when not given), the file."""

    label: str
    step: int | None
    path: pathlib.Path | None
    samples: np.ndarray


_SPEC = re.compile(r"step=([0-9]+):(.+)")


def parse_sample_spec(spec: str | os.PathLike[str]) -> tuple[int | None, pathlib.Path]:
    """``"step=1000:samples.npy"`` -> ``(1000, Path("samples.npy"))``; a bare path -> ``(None, path)``.

    >>> parse_sample_spec("step=1000:out/s.npy")
    (1000, PosixPath('out/s.npy'))
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"samples: expected a path or 'step=N:path', got {type(spec).__name__}")
    text = os.fspath(spec)
    m = _SPEC.fullmatch(text)
    if m:
        digits = m.group(1).lstrip("0")
        if len(digits) > 19 or int(digits or "0") > _MAX_STEP:
            raise ValueError(f"samples {text[:60]!r}: step N of step=N:PATH must be in [0, 2**63 - 1]")
        return int(m.group(1)), pathlib.Path(m.group(2))
    if text.startswith("step="):
        raise ValueError(f"samples {text!r}: expected step=N:PATH with N a non-negative integer")
    return None, pathlib.Path(text)


def read_sample_sets(specs: Sequence[str | os.PathLike[str]], dataset: Any) -> list[SampleSet]:
    """Read and check every sample file (against the data set's ``v`` and ``d``) before
    anything is computed; sets sorted by step. Either every file names its step or none."""
    if not specs:
        raise ValueError("samples: at least one sample file is needed")
    parsed = [parse_sample_spec(s) for s in specs]
    with_step = [st is not None for st, _ in parsed]
    if any(with_step) and not all(with_step):
        raise ValueError("samples: name the step of every file (step=N:PATH) or of none")
    steps = [st for st, _ in parsed if st is not None]
    if len(set(steps)) != len(steps):
        dup = next(s for s in steps if steps.count(s) > 1)
        raise ValueError(f"samples: step={dup} is given twice")
    v, d = int(dataset.grammar.v), int(dataset.grammar.d)
    sets = [SampleSet(f"step {st}" if st is not None else path.name, st, path, read_strings(path, v=v, d=d))
            for st, path in parsed]
    return sorted(sets, key=lambda s: int(s.step or 0)) if steps else sets


# -- counting ------------------------------------------------------------------------------


def _first_occurrence(x: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: the row is the first of the rows equal to it (where copies are counted)."""
    out = np.zeros(len(x), bool)
    if len(x):
        _, first = np.unique(x, axis=0, return_index=True)
        out[first] = True
    return out


def count_copies(samples: np.ndarray, index: Any, num: int) -> tuple[np.ndarray, np.ndarray]:
    """``(B,)`` index of the string each sample equals (-1: none; the smallest index of
    equal strings) in the :class:`~rhmfast.TrainingIndex` ``index``, and ``(num,)`` counts."""
    which, _ = index.lookup(samples)
    which = np.asarray(which, np.int64)
    return which, np.bincount(which[which >= 0], minlength=num)


def _run(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, steps: np.ndarray) -> Any:
    """An in-memory :class:`~rhmfast.analysis.Run` with these copy counts, so the
    calibrated statistics of the experiments apply to it unchanged."""
    run = Run(path=pathlib.Path(dataset.path), config={}, train=dataset.train, heldout=dataset.heldout,
              train_logp=dataset.train_logp, heldout_logp=dataset.heldout_logp, steps=np.asarray(steps, np.int64))
    run.copy_counts = np.asarray(train_counts, np.int64)  # cached_property: the instance value wins
    run.heldout_copy_counts = np.asarray(heldout_counts, np.int64)
    return run


def _null_inputs(dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ``p(x)`` of the training and held-out strings (zero on repeats, whose copies
    count at the first occurrence) and, per training row, the index of its first occurrence."""
    p_train = np.exp(dataset.train_logp) * _first_occurrence(dataset.train)
    p_heldout = np.exp(dataset.heldout_logp) * _first_occurrence(dataset.heldout)
    _, first, inverse = np.unique(dataset.train, axis=0, return_index=True, return_inverse=True)
    return p_train, p_heldout, first[np.ravel(inverse)]


def memorization_test(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, num_valid: np.ndarray, *,
                      num_null: int = 199, num_boot: int = 1000, seed: int = 0,
                      tick: Callable[[], object] | None = None) -> Any:
    """Mean excess copies per training string over all steps (training minus held-out
    strings of matched log p), as a :class:`~rhmfast.stats.NullTest`
    against ``num_null`` null run sets of a model that learned the grammar and memorized
    nothing: at every step ``num_valid`` draws from the grammar, counted on the same
    strings (so the statistic's own bias on this data set, from log p bins that match
    only roughly, is in the null too).

    ``train_counts (T, P)``, ``heldout_counts (T, H)``: copies of each string per step;
    ``num_valid (T,)``: valid samples per step."""
    name = "excess copies per training string"
    T, H = len(train_counts), len(dataset.heldout)
    if not H:
        return NullTest.of(name, float("nan"), (float("nan"),) * 2, [])
    run = _run(dataset, train_counts, heldout_counts, np.arange(T))
    upto = T - 1
    value = float(excess_copies(run, upto).mean())
    interval = two_stage_interval([run], string_sizes,
                                  lambda r, tr, ho: float(excess_copies(r, upto, strings=tr, heldout=ho).mean()),
                                  num_boot=num_boot, seed=seed)
    p_train, p_heldout, first_train_of = _null_inputs(dataset)
    rng = np.random.default_rng(seed + 1)
    null = np.empty(num_null)
    nothing = np.zeros(T)  # a model that memorized nothing: lam = 0 at every step
    for k in range(num_null):
        tr, ho = mixture_counts(rng, p_train, p_heldout, first_train_of, nothing, num_valid)
        null[k] = float(excess_copies(_run(dataset, tr, ho, np.arange(T)), upto).mean())
        if tick is not None:
            tick()
    return NullTest.of(name, value, interval, null)


def prototype_test(dataset: Any, train_counts: np.ndarray, heldout_counts: np.ndarray, num_valid: np.ndarray,
                   score: np.ndarray, *, name: str, num_null: int = 199, num_boot: int = 1000, seed: int = 0,
                   upto: Sequence[int] | None = None, tick: Callable[[], object] | None = None
                   ) -> tuple[Any, np.ndarray]:
    """Most minus least prototypical quintile (by ``score``) of excess copies per string
    over all steps, as a :class:`~rhmfast.stats.NullTest` against
    ``num_null`` null run sets fitted to the observed copy counts (every training string
    memorized at the same rate). Also returns ``(K, len(upto))``: the null statistic over
    steps ``0..u`` for each ``u`` of ``upto`` (the band of the curve)."""
    T = len(train_counts)
    ups = list(range(T)) if upto is None else list(upto)
    run = _run(dataset, train_counts, heldout_counts, np.arange(T))
    last = T - 1

    def stat(r: Any, u: int, tr: np.ndarray | None = None, ho: np.ndarray | None = None) -> float:
        sc = score if tr is None else score[tr]
        return quintile_contrast(excess_copies(r, u, strings=tr, heldout=ho), sc)

    value = stat(run, last)
    interval = two_stage_interval([run], string_sizes, lambda r, tr, ho: stat(r, last, tr, ho), num_boot=num_boot,
                                  seed=seed)
    p_train, p_heldout, first_train_of = _null_inputs(dataset)
    rng = np.random.default_rng(seed + 2)
    curves = np.empty((num_null, len(ups)))
    null = np.empty(num_null)
    lam = fitted_lam(train_counts.sum(1), num_valid, float(p_train.sum()))
    for k in range(num_null):
        tr, ho = mixture_counts(rng, p_train, p_heldout, first_train_of, lam, num_valid)
        nr = _run(dataset, tr, ho, np.arange(T))
        curves[k] = [stat(nr, u) for u in ups]
        null[k] = curves[k, ups.index(last)] if last in ups else stat(nr, last)
        if tick is not None:
            tick()
    return NullTest.of(name, value, interval, null), curves


# -- the audit -----------------------------------------------------------------------------


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


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.{digits}g}"


def _prepare_out(out: pathlib.Path) -> pathlib.Path:
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


def _commit_out(tmp: pathlib.Path, out: pathlib.Path) -> None:
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
    import rhmfast
    from rhmfast._args import integer
    from rhmfast.data import Dataset, load

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
    tmp = _prepare_out(pathlib.Path(out)) if out is not None else None
    try:
        results = _audit(ds, sets, rhmfast, num_null, num_boot, seed, progress,
                         tmp, importlib.util.find_spec("matplotlib") is not None if figures is None else figures)
        if tmp is not None:
            assert out is not None
            _commit_out(tmp, pathlib.Path(out))
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
    p_train = np.exp(ds.train_logp) * _first_occurrence(ds.train)
    p_held = np.exp(ds.heldout_logp) * _first_occurrence(ds.heldout) if H else np.zeros(0)
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
    run = _run(ds, train_counts, held_counts, np.arange(T))
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
    results["verdicts"] = _verdicts(tests)
    if root is not None:
        _write(root, ds, sets, results, tests, reports, baselines, figures, L)
    return results


def _verdicts(tests: Sequence[Any]) -> list[str]:
    what = ["Memorized (training strings copied beyond held-out strings of the same log p)?",
            "Prototypical strings memorized first (by training-set block frequency)?",
            "Prototypical strings memorized first (by log p)?"]
    # fewer training than held-out copies is no kind of memorization: it says the model's
    # string probabilities depart from the grammar's (the null assumes them)
    below = ["no (training strings copied less than held-out strings of the same log p: the model's string "
             "probabilities depart from the grammar's, which this null assumes)", "no, the opposite", "no, the opposite"]
    out = []
    for question, t, no in zip(what, tests, below):
        said = answer(t, above="yes", below=no, why=f"{t.name} undefined: no copies or no held-out strings")
        line = verdict(question, t, said, digits=3)
        if np.isfinite(t.p):
            line += f"; false-positive rate on the null runs {t.false_positive_rate:.0%}"
        out.append(line)
    return out


def _write(root: pathlib.Path, ds: Any, sets: list[SampleSet], results: dict[str, Any], tests: Sequence[Any],
           reports: list[dict[str, Any]], baselines: list[dict[str, Any]], figures: bool, L: int) -> None:
    from rhmfast.report import Report

    report = Report(root, "rhmfast audit")
    for line in results["verdicts"]:
        report.verdict(line)
    per = results["sets"]
    report.heading("Setup")
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in ds.params.items())
    report.text(f"Data set `{ds.path}`: {len(ds.train)} training and {len(ds.heldout)} held-out strings of "
                f"d = {ds.d} tokens ({params}). {len(sets)} sample set(s): "
                + ", ".join(f"{r['label']} ({r['num_samples']} samples)" for r in per) + ".")
    report.text("Chance is a model that learned the grammar and memorized nothing: its valid samples are "
                "independent draws from the grammar, so it copies training string x with probability p(x) per valid "
                "sample (expected copies: number of valid samples times the summed p(x) of the distinct training "
                "strings). It assumes the model's valid strings follow the grammar's distribution; a model that "
                "over-produces common strings copies common training and held-out strings alike, which the "
                "held-out comparison below separates from memorization. Baselines marked 'grammar draw' are the "
                "same quantity on a fresh draw from the grammar of the same size.")
    report.heading("Calibrated statistics")
    report.text("Excess copies = copies of each training string minus the mean copies of held-out strings in the "
                "same log p decile (`rhmfast.analysis.excess.excess_copies`), summed over all sample sets. "
                f"Memorization is read against {len(tests[0].null)} null run sets of a model that learned the "
                "grammar and memorized nothing (as many valid samples per step, drawn from the grammar); the "
                f"quintile contrasts against {len(tests[1].null)} null run sets fitted to the observed copy counts "
                "(every training string memorized at the same rate, other draws from the grammar). Each verdict quotes its false-positive rate on its own null "
                "(leave one out). Known-answer calibration of these tests (grammar samples, a uniform memorizer, "
                "a prototype-first memorizer) is in tests/test_audit.py and the README.")
    report.table(["statistic", "value", "95% interval", "null median", "null 95%", "p", "decision"],
                 [[t.name, _fmt(t.value), f"[{_fmt(t.interval[0])}, {_fmt(t.interval[1])}]", _fmt(t.centre),
                   f"[{_fmt(t.null_band[0])}, {_fmt(t.null_band[1])}]", _fmt(t.p, 2), t.decision] for t in tests])
    report.heading("Copies")
    report.table(["set", "samples", "valid", "copies", "chance", "distinct copied", "held-out copies",
                  "held-out chance"],
                 [[r["label"], r["num_samples"], r["num_valid"], r["copies"]["count"], _fmt(r["copies"]["chance"]),
                   r["copies"]["distinct"], r["heldout_copies"]["count"], _fmt(r["heldout_copies"]["chance"])]
                  for r in per])
    pq = results["pooled_quintiles"]
    report.text("Copies per prototypicality quintile (training-set block frequency, Q1 least prototypical), all "
                "sets pooled; p = P(at least this many copies) under chance (Poisson).")
    report.table(["quintile", "training strings", "copies", "chance", "p (upper)"],
                 [[f"Q{q + 1}", pq["train_strings"][q], pq["observed"][q], _fmt(pq["chance"][q]),
                   _fmt(pq["p_upper"][q], 2)] for q in range(QUINTILES)])
    last = per[-1]
    counts = np.bincount(np.asarray(last["copies"]["train_index"], np.int64), minlength=len(ds.train))
    top = np.argsort(-counts, kind="stable")[:10]
    top = top[counts[top] > 0]
    if len(top):
        report.text(f"Most copied training strings ({last['label']}; every copy, by sample, in results.json):")
        report.table(["training index", "copies", "log p"],
                     [[int(i), int(counts[i]), _fmt(float(ds.train_logp[i]), 4)] for i in top])
    report.heading("Validity, longest match, novelty")
    report.table(["set", "valid", *[f"valid level {lv}" for lv in range(L)], "longest match (grammar draw)"],
                 [[r["label"], _fmt(r["summary"]["valid_fraction"]),
                   *[_fmt(v) for v in r["summary"]["valid_levels"]],
                   f"{_fmt(r['summary']['longest_match_mean'])} ({_fmt(r['grammar_draw']['longest_match_mean'])})"]
                  for r in per])
    report.text("Block novelty per level (fraction of aligned blocks absent at that position from the training "
                "set; level 0 = whole string, level L = single tokens), grammar draw in brackets:")
    report.table(["set", *[f"level {lv}" for lv in range(L + 1)]],
                 [[r["label"], *[f"{_fmt(a)} ({_fmt(b)})" for a, b in zip(r["summary"]["block_novelty"],
                                                                          r["grammar_draw"]["block_novelty"])]]
                  for r in per])
    report.heading("Over-production of blocks")
    report.text("Total variation between the samples' block distribution and the grammar's (and the training "
                "set's), mean over positions, per level; the grammar draw shows the finite-sample floor. "
                "Descriptive: no calibrated null is computed for over-production without a model.")
    report.table(["set", *[f"TV grammar L{lv}" for lv in range(L + 1)], *[f"TV train L{lv}" for lv in range(L + 1)]],
                 [[r["label"], *[f"{_fmt(a)} ({_fmt(b)})" for a, b in zip(r["summary"]["tv_generated_vs_grammar"],
                                                                          r["grammar_draw"]["tv_generated_vs_grammar"])],
                   *[f"{_fmt(a)} ({_fmt(b)})" for a, b in zip(r["summary"]["tv_generated_vs_train"],
                                                             r["grammar_draw"]["tv_generated_vs_train"])]]
                  for r in per])
    rows = []
    for lv, blocks in last["summary"]["top_overproduced"].items():
        for b in blocks[:3]:
            rows.append([lv, b["position"], " ".join(map(str, b["block"])), _fmt(b["generated_freq"]),
                         _fmt(b["train_freq"]), _fmt(b["grammar_prob"])])
    report.text(f"Most over-produced blocks ({last['label']}), against the grammar:")
    report.table(["level", "position", "block", "samples", "training set", "grammar"], rows)
    if figures:
        _figures(report, results, tests)
    else:
        report.text("(figures: install matplotlib, `pip install 'rhmfast[plot]'`)")
    if all(s.path is not None for s in sets):
        report.heading("Reproduce")
        report.code("rhmfast audit " + " ".join(shlex.quote(a) for a in [str(ds.path), *(
            (f"step={s.step}:" if s.step is not None else "") + str(s.path) for s in sets)])
            + " --num-null {num_null} --seed {seed}".format(**results["settings"]))
    report.write()
    write_json(root / "results.json", results, indent=1)


def _figures(report: Any, results: dict[str, Any], tests: Sequence[Any]) -> None:
    from rhmfast.analysis.plots import (
        figure_band,
        figure_lines,
        figure_null_tests,
        pyplot,
        save_figure,
    )

    root = report.root
    # percentile intervals of a discrete statistic can miss its value by a hair; drawn
    # around it (figure only), and undefined statistics left out
    shown = [dataclasses.replace(t, interval=(min(t.interval[0], t.value), max(t.interval[1], t.value)))
             for t in tests if np.isfinite(t.value) and np.isfinite(t.interval).all() and len(t.null)]
    save_figure(figure_null_tests(shown, title="calibrated statistics against their nulls"),
                root / "figures/null_tests")
    report.figure("figures/null_tests", "Each statistic (black, 95% bootstrap interval) against its null (grey).")
    plt = pyplot()
    pq = results["pooled_quintiles"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = np.arange(QUINTILES)
    ax.bar(x - 0.2, pq["observed"], 0.4, label="observed copies")
    ax.bar(x + 0.2, pq["chance"], 0.4, label="chance (learned the grammar, memorized nothing)", color="0.6")
    ax.set_xticks(x, [f"Q{q + 1}" for q in x])
    ax.set_xlabel("prototypicality quintile (training-set block frequency)")
    ax.set_ylabel("copies")
    ax.legend(fontsize=7)
    ax.set_title("copies per quintile, all sets pooled")
    save_figure(fig, root / "figures/quintiles")
    report.figure("figures/quintiles", "Copies per prototypicality quintile beside chance.")
    per = results["sets"]
    steps = np.array([r["step"] for r in per])
    if len(per) > 1 and all(r["step"] is not None for r in per):
        steps = np.maximum(steps.astype(np.float64), 1.0)
        n = np.array([r["num_samples"] for r in per], np.float64)
        fig = figure_lines(steps, {"training copies": np.array([r["copies"]["count"] for r in per]) / n,
                                   "held-out copies": np.array([r["heldout_copies"]["count"] for r in per]) / n},
                           baselines={"training copies": np.array([r["copies"]["chance"] for r in per]) / n,
                                      "held-out copies": np.array([r["heldout_copies"]["chance"] for r in per]) / n},
                           ylabel="fraction of samples", title="copies over training", baseline_label="chance")
        save_figure(fig, root / "figures/copies")
        report.figure("figures/copies", "Fraction of samples that copy a training (held-out) string, chance dashed.")
        L = len(per[0]["summary"]["valid_levels"])
        fig = figure_lines(steps, {f"level {lv}": np.array([r["summary"]["valid_levels"][lv] for r in per])
                                   for lv in range(L)}, ylabel="valid fraction", title="per-level validity")
        save_figure(fig, root / "figures/validity")
        report.figure("figures/validity", "Fraction of samples valid at each level (0 = whole string).")
        fig = figure_lines(steps, {f"level {lv}": np.array([r["summary"]["block_novelty"][lv] for r in per])
                                   for lv in range(L + 1)},
                           baselines={f"level {lv}": np.array([r["grammar_draw"]["block_novelty"][lv] for r in per])
                                      for lv in range(L + 1)},
                           ylabel="block novelty", title="blocks absent from the training set",
                           baseline_label="grammar draw")
        save_figure(fig, root / "figures/novelty")
        report.figure("figures/novelty", "Per-level block novelty; a fresh grammar draw of the same size dashed.")
        pc = results["prototype_curve"]
        fig = figure_band(steps, np.array(pc["value"], np.float64), (np.array(pc["null_low"]), np.array(pc["null_high"])),
                          ylabel="Q5 - Q1 excess copies", title="prototypes first, copies up to each step")
        save_figure(fig, root / "figures/prototype_curve")
        report.figure("figures/prototype_curve", "Q5 - Q1 excess copies (block frequency) up to each step, inside "
                      "the band of null run sets fitted to the observed copies.")
