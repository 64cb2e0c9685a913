# Type stubs for the private native module, checked by `python -m mypy.stubtest rhmfast._rhmfast`.
__version__: str
__all__ = ["__version__"]

# --- grammar ---
from typing import Any, final

import numpy as np
import numpy.typing as npt

__all__ += ["Grammar"]

@final
class Grammar:
    @staticmethod
    def random(
        v: int,
        n: int,
        m: int,
        s: int,
        L: int,
        *,
        seed: int,
        rule_probs: list[npt.NDArray[np.float64]] | None = None,
        root_prior: npt.NDArray[np.float64] | None = None,
    ) -> Grammar: ...
    @staticmethod
    def from_rules(
        v: int,
        rules: list[npt.NDArray[np.int64]],
        *,
        rule_probs: list[npt.NDArray[np.float64]] | None = None,
        root_prior: npt.NDArray[np.float64] | None = None,
    ) -> Grammar: ...
    @property
    def v(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def m(self) -> int: ...
    @property
    def s(self) -> int: ...
    @property
    def L(self) -> int: ...
    @property
    def d(self) -> int: ...
    @property
    def num_strings(self) -> int: ...
    @property
    def is_uniform(self) -> bool: ...
    def rules(self) -> list[npt.NDArray[np.int64]]: ...
    def rule_probs(self) -> list[npt.NDArray[np.float64]]: ...
    def root_prior(self) -> npt.NDArray[np.float64]: ...
    def support_size(self) -> float: ...
    def sample(
        self, num: int, *, seed: int, unique: bool = False, return_tree: bool = False
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64] | None, npt.NDArray[np.int64] | None]: ...
    def parse(
        self, x: npt.NDArray[Any], *, tree: bool = True
    ) -> tuple[
        npt.NDArray[np.int64] | None,
        npt.NDArray[np.int64] | None,
        npt.NDArray[np.bool_],
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
    ]: ...
    def rank(self, x: npt.NDArray[Any]) -> list[int]: ...
    def unrank(
        self, ranks: list[int], *, return_tree: bool = False
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64] | None, npt.NDArray[np.int64] | None]: ...
    def symbol_marginals(self, level: int) -> npt.NDArray[np.float64]: ...
    def block_probs(
        self, blocks: npt.NDArray[Any], level: int, positions: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]: ...
    def kgram_probs(
        self, patterns: list[npt.NDArray[Any]], offsets: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]: ...

# --- index ---
__all__ += ["TrainingIndex", "block_counts", "kgram_counts", "kgram_counts_all"]

import os as os
from typing import Any as _Any
from typing import final as _final

from numpy.typing import NDArray as _NDArray

_I64 = _NDArray[np.int64]
_U32 = _NDArray[np.uint32]
# uint8, uint16, uint32 or int64, C-contiguous
_Tokens2 = _NDArray[_Any]
_Tokens1 = _NDArray[_Any]
# (K, width) windows in the dtype of the input tokens
_Win = _NDArray[_Any]

@_final
class TrainingIndex:
    def __new__(cls, train: _Tokens2) -> TrainingIndex: ...
    def lookup(self, samples: _Tokens2) -> tuple[_I64, _I64]: ...
    def longest_match(self, samples: _Tokens2) -> tuple[_I64, _I64, _I64]: ...
    def count(self, tokens: _Tokens1, offsets: _I64) -> _I64: ...
    def kgram_counts(self, max_k: int) -> list[tuple[_U32, _I64]]: ...
    def strings(self) -> _NDArray[np.uint32]: ...
    @property
    def suffix_array(self) -> np.ndarray: ...
    @property
    def lcp(self) -> np.ndarray: ...
    @property
    def num_strings(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | os.PathLike[str]) -> TrainingIndex: ...

# --- counting ---
def kgram_counts(x: _Tokens2, k: int) -> tuple[_Win, _I64]: ...
def kgram_counts_all(x: _Tokens2, max_k: int) -> list[tuple[_Win, _I64]]: ...
def block_counts(x: _Tokens2, s: int, level: int, *, positional: bool) -> tuple[_I64, _Win, _I64]: ...

# --- denoise ---
__all__ += ["Empirical", "grammar_posterior", "mixture_posterior"]

_Post = tuple[_NDArray[np.float64], _NDArray[np.float64]]

def grammar_posterior(
    g: Grammar,
    x: _NDArray[np.int64],
    *,
    mask_id: int | None = None,
    alpha_bar: _NDArray[np.float64] | None = None,
) -> _Post: ...
def mixture_posterior(
    g: Grammar,
    train: Empirical,
    lam: float,
    x: _NDArray[np.int64],
    *,
    mask_id: int | None = None,
    alpha_bar: _NDArray[np.float64] | None = None,
) -> _Post: ...
@_final
class Empirical:
    def __new__(
        cls, train: _Tokens2, v: int, weights: _NDArray[np.float64] | None = None
    ) -> Empirical: ...
    def posterior(
        self,
        x: _NDArray[np.int64],
        *,
        mask_id: int | None = None,
        alpha_bar: _NDArray[np.float64] | None = None,
    ) -> _Post: ...
    @property
    def num_strings(self) -> int: ...
    @property
    def d(self) -> int: ...
    @property
    def v(self) -> int: ...
