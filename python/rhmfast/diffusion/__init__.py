"""Discrete diffusion on RHM strings (needs the ``train`` extra: torch, tqdm).

``TrainConfig`` needs no torch; ``train`` and ``generate_from_run`` import it on first use.

>>> from rhmfast.diffusion import TrainConfig
>>> TrainConfig(steps=10).steps
10
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rhmfast.diffusion.config import TrainConfig

if TYPE_CHECKING:
    from rhmfast.diffusion.generation import generate_from_run
    from rhmfast.diffusion.reference import EmpiricalDenoiser, GrammarDenoiser, MixtureDenoiser
    from rhmfast.diffusion.trainer import train

__all__ = ["TrainConfig", "generate_from_run", "train", "GrammarDenoiser", "EmpiricalDenoiser", "MixtureDenoiser"]

# name -> submodule; the loop lives in ``trainer`` (a submodule named ``train`` would
# shadow the function)
_LAZY = {"train": "trainer", "generate_from_run": "generation",
         "GrammarDenoiser": "reference", "EmpiricalDenoiser": "reference", "MixtureDenoiser": "reference"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # the submodules import torch: loaded on first use
        return getattr(importlib.import_module(f"rhmfast.diffusion.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'rhmfast.diffusion' has no attribute {name!r}")
