"""rhmfast: exact, fast tools for studying memorization in diffusion models.

The grammar (:class:`RHM`), exact substring statistics and the training-set suffix
index need numpy only. The torch trainer lives in :mod:`rhmfast.diffusion` (extra
``rhmfast[train]``) and is imported lazily.

>>> import rhmfast
>>> g = rhmfast.RHM(v=6, n=6, m=4, s=2, L=4, seed=0)
>>> x = g.sample(8, seed=1)
>>> bool(g.parse(x).valid.all())
True
"""

from __future__ import annotations

import importlib

from rhmfast._rhmfast import __version__

# --- exact substring frequencies ---
from rhmfast.counting import block_counts, kgram_counts, kgram_counts_all

# --- grammar ---
from rhmfast.grammar import RHM, Derivation, ParseResult, Validity, sample, study_grammar, zipf

# --- training-set suffix index ---
from rhmfast.index import TrainingIndex, memorized

# --- reports ---
from rhmfast.metrics import memorization_report, prototypicality

__all__ = ["__version__"]
# grammar
__all__ += ["RHM", "Derivation", "ParseResult", "Validity", "sample", "study_grammar", "zipf"]
# training-set suffix index and exact substring frequencies
__all__ += ["TrainingIndex", "memorized", "kgram_counts", "kgram_counts_all", "block_counts"]
# reports
__all__ += ["prototypicality", "memorization_report"]
# bring your own model: data sets for any trainer, audits of any model's samples
__all__ += ["data", "audit"]


def __getattr__(name: str) -> object:
    # submodules imported on first use, so `import rhmfast` stays numpy-only and fast
    if name in ("data", "audit"):
        return importlib.import_module(f"rhmfast.{name}")
    raise AttributeError(f"module 'rhmfast' has no attribute {name!r}")
