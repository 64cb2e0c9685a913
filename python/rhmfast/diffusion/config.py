"""TrainConfig: every setting of a training run, one flat dataclass saved as TOML.

>>> from rhmfast.diffusion import TrainConfig
>>> c = TrainConfig(run_dir="runs/x", steps=100)
>>> TrainConfig.from_toml_string(c.to_toml()) == c
True
>>> c.replace(width=0)
Traceback (most recent call last):
...
ValueError: TrainConfig.width = 0: must be >= 1
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PROCESSES = ("masked", "d3pm")
MODELS = ("transformer", "unet")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("constant", "cosine")
MASK_SAMPLING = ("time", "count")
# seeds go to torch.manual_seed and the Rust core (u64); 2**63 leaves room for the
# offsets derived seeds add
SEED_LIMIT = 2**63


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see docs/ARCHITECTURE.md, "TrainConfig").

    Data come from an RHM grammar (``v, n, m, s, L``, Zipf rule tails) unless
    ``data_path`` names an ``.npz`` holding ``train`` (and optionally ``heldout``)
    token arrays. ``depth`` and ``heads`` size the transformer; the U-Net always has
    ``L`` levels of kernel = stride = ``s`` convolutions, ``width`` channels and
    ``depth`` residual blocks per level. Invalid values raise ``ValueError`` naming
    the key.
    """

    run_dir: str = "runs/x"
    # data
    v: int = 6
    n: int = 6
    m: int = 4
    s: int = 2
    L: int = 4
    grammar_seed: int = 0
    zipf_a: float = 0.0  # 0: uniform rules (not rhmfast.zipf(m, 0) = 1/k); > 0: k**-(1+a)
    zipf_levels: tuple[int, ...] = ()
    num_train: int = 256
    unique: bool = True
    num_heldout: int = -1  # -1: as many as num_train (the ELBO compares equal-sized sets)
    data_seed: int = 0
    data_path: str = ""
    # model and process
    process: str = "masked"
    model: str = "transformer"
    width: int = 128
    depth: int = 4
    heads: int = 4
    d3pm_steps: int = 200
    block_mask: float = 0.0  # masked process: fraction of each batch masked by aligned blocks
    # masked process: "time" draws t ~ U(0,1) and weighs by 1/t; "count" draws the number
    # masked k with P(k) ~ 1/k and weighs every masked token alike (the same expected loss)
    mask_sampling: str = "time"
    # optimisation
    steps: int = 5000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 100
    schedule: str = "constant"
    min_lr: float = 0.0
    grad_clip: float = 1.0
    ema: float = 0.999
    seed: int = 0
    # evaluation
    checkpoints_per_octave: int = 4
    first_checkpoint: int = 16
    eval_samples: int = 1024
    sampling_steps: int = 0
    elbo_draws: int = 8
    # runtime
    device: str = "auto"
    compile: bool = False
    bf16: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.zipf_levels, list):
            object.__setattr__(self, "zipf_levels", tuple(self.zipf_levels))
        self._check_types()
        self._check_values()

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a mapping; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig key(s) {unknown}; known keys: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_toml(cls, path: str | pathlib.Path) -> TrainConfig:
        """Load from a TOML file of top-level keys."""
        text = pathlib.Path(path).read_text(encoding="utf-8")
        try:
            return cls.from_toml_string(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {str(path)!r} is not valid TOML: {err}") from None

    @classmethod
    def from_toml_string(cls, text: str) -> TrainConfig:
        data = tomllib.loads(text)
        nested = [k for k, val in data.items() if isinstance(val, dict)]
        if nested:
            raise ValueError(f"TrainConfig TOML takes top-level keys only; found table(s) {nested}")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["zipf_levels"] = list(self.zipf_levels)
        return out

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml_string` reads back to an equal config."""
        lines = []
        for key, val in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(val)}")
        return "\n".join(lines) + "\n"

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some keys changed (validated like the constructor)."""
        return self.from_dict({**self.to_dict(), **changes})

    # ---- derived ------------------------------------------------------------------
    @property
    def d(self) -> int:
        """String length implied by the grammar keys (``s**L``)."""
        return int(self.s**self.L)

    @property
    def heldout_count(self) -> int:
        """Held-out strings drawn from the grammar: ``num_heldout``, or ``num_train`` when -1."""
        return self.num_train if self.num_heldout < 0 else self.num_heldout

    # ---- validation ---------------------------------------------------------------
    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            if kind == "int":
                ok = isinstance(val, int) and not isinstance(val, bool)
            elif kind == "float":
                ok = isinstance(val, (int, float)) and not isinstance(val, bool)
                if ok:
                    object.__setattr__(self, f.name, float(val))
            elif kind == "bool":
                ok = isinstance(val, bool)
            elif kind == "str":
                ok = isinstance(val, str)
            else:  # tuple[int, ...]
                ok = isinstance(val, tuple) and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in val
                )
            if not ok:
                raise TypeError(f"TrainConfig.{f.name} = {val!r}: expected {kind}")

    def _check_values(self) -> None:
        def need(cond: bool, key: str, rule: str) -> None:
            if not cond:
                raise ValueError(f"TrainConfig.{key} = {getattr(self, key)!r}: {rule}")

        for key in ("v", "n", "m", "L", "width", "depth", "heads", "steps", "batch_size"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        need(2 <= self.s <= 65536, "s", "must lie in [2, 65536]")
        # bounded before any power is taken: s**L and v**s of huge values never finish
        need(self.v <= 65536, "v", "must be <= 65536 (tokens are stored as uint16)")
        need(self.L <= 16 and self.d <= 65536, "L", "s**L must be <= 65536")
        if not self.data_path:
            tuples = self.v**self.s if self.s * math.log2(self.v + 1) < 64 else math.inf
            need(
                self.m * self.v <= tuples,
                "m",
                f"m*v = {self.m * self.v} exceeds v**s = {tuples}: rules cannot be unique",
            )
            need(
                self.m * self.n <= tuples,
                "n",
                f"m*n = {self.m * self.n} exceeds v**s = {tuples}: rules cannot be unique",
            )
            need(self.num_train >= 1, "num_train", "must be >= 1")
        need(self.num_train >= 0, "num_train", "must be >= 0")
        need(self.num_heldout >= -1, "num_heldout", "must be >= 0, or -1 for as many as num_train")
        need(math.isfinite(self.zipf_a) and self.zipf_a >= 0, "zipf_a", "must be finite and >= 0")
        for lev in self.zipf_levels:
            need(0 <= lev < self.L, "zipf_levels", f"levels must lie in [0, L={self.L})")
        need(
            not self.zipf_levels or self.zipf_a > 0,
            "zipf_levels",
            "names the levels of the Zipf tail, so zipf_a must be > 0",
        )
        need(self.process in PROCESSES, "process", f"must be one of {PROCESSES}")
        need(self.model in MODELS, "model", f"must be one of {MODELS}")
        if self.model == "transformer":
            need(self.width % self.heads == 0, "heads", f"must divide width = {self.width}")
            need((self.width // self.heads) % 2 == 0, "heads", "width/heads must be even")
        need(2 <= self.d3pm_steps <= 100000, "d3pm_steps", "must lie in [2, 100000]")
        need(math.isfinite(self.block_mask) and 0 <= self.block_mask <= 1, "block_mask", "must lie in [0, 1]")
        if self.block_mask > 0:
            need(self.process == "masked", "block_mask", "applies to the masked process only; use 0")
            need(self.L >= 2, "block_mask", "needs L >= 2 (blocks of s**1 .. s**(L-1) tokens)")
        need(self.mask_sampling in MASK_SAMPLING, "mask_sampling", f"must be one of {MASK_SAMPLING}")
        if self.mask_sampling == "count":
            need(self.process == "masked", "mask_sampling", "'count' applies to the masked process only")
            need(self.block_mask == 0, "mask_sampling", "'count' cannot be combined with block_mask > 0")
        need(math.isfinite(self.lr) and self.lr > 0, "lr", "must be finite and > 0")
        need(
            math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "weight_decay",
            "must be finite and >= 0",
        )
        need(self.warmup >= 0, "warmup", "must be >= 0")
        need(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}")
        need(
            math.isfinite(self.min_lr) and 0 <= self.min_lr <= self.lr,
            "min_lr",
            f"must lie in [0, lr = {self.lr}]",
        )
        need(
            math.isfinite(self.grad_clip) and self.grad_clip >= 0,
            "grad_clip",
            "must be finite and >= 0 (0 disables clipping)",
        )
        need(0 <= self.ema < 1, "ema", "must lie in [0, 1)")
        for key in ("seed", "grammar_seed", "data_seed"):
            need(0 <= getattr(self, key) < SEED_LIMIT, key, "must lie in [0, 2**63)")
        need(self.checkpoints_per_octave >= 1, "checkpoints_per_octave", "must be >= 1")
        need(self.first_checkpoint >= 1, "first_checkpoint", "must be >= 1")
        need(self.eval_samples >= 0, "eval_samples", "must be >= 0")
        need(self.sampling_steps >= 0, "sampling_steps", "must be >= 0 (0 means d)")
        need(self.elbo_draws >= 0, "elbo_draws", "must be >= 0 (0 skips the likelihood bound)")
        need(self.device in DEVICES, "device", f"must be one of {DEVICES}")
        if self.process == "d3pm":
            need(
                self.sampling_steps in (0, self.d3pm_steps),
                "sampling_steps",
                "d3pm samples with all d3pm_steps; use 0",
            )


def _toml_value(val: Any) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, int):
        return str(val)
    if isinstance(val, float):
        return repr(val) if math.isfinite(val) else ("inf" if val > 0 else "-inf")
    if isinstance(val, str):
        return '"' + val.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(val, list):
        return "[" + ", ".join(_toml_value(x) for x in val) + "]"
    raise TypeError(f"cannot write {val!r} as TOML")
