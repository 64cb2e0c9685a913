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
    def index(self, x: npt.NDArray[Any]) -> list[int]: ...
    def from_index(
        self, indices: list[int], *, return_tree: bool = False
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64] | None, npt.NDArray[np.int64] | None]: ...
    def symbol_marginals(self, level: int) -> npt.NDArray[np.float64]: ...
    def block_probs(
        self, blocks: npt.NDArray[Any], level: int, positions: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]: ...
    def kgram_probs(
        self, patterns: list[npt.NDArray[np.uint32]], offsets: npt.NDArray[np.int64] | None = None
    ) -> npt.NDArray[np.float64]: ...

# --- index ---

# --- counting ---
