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
import os
import pathlib
from typing import Any

from rhmfast._args import integer
from rhmfast._io.toml import dump_toml, load_toml, tomllib
from rhmfast.grammar import STUDY_GRAMMAR

PROCESSES = ("masked", "d3pm")
MODELS = ("transformer", "unet")
DEVICES = ("auto", "cpu", "cuda", "mps")
SCHEDULES = ("constant", "cosine")
MASK_SAMPLING = ("time", "count")
# seeds go to torch.manual_seed and the Rust core (u64); 2**63 leaves room for the
# offsets derived seeds add
SEED_LIMIT = 2**63
UPPER_BOUNDS = (
    ("width", 2**16, "2**16"),
    ("depth", 2**10, "2**10"),
    ("heads", 2**10, "2**10"),
    ("steps", 2**36, "2**36"),
    ("batch_size", 2**24, "2**24"),
    ("warmup", 2**36, "2**36"),
    ("num_train", 2**40, "2**40"),
    ("num_heldout", 2**40, "2**40"),
    ("checkpoints_per_octave", 2**10, "2**10"),
    ("first_checkpoint", 2**36, "2**36"),
    ("eval_samples", 2**20, "2**20"),
    ("sampling_steps", 2**20, "2**20"),
    ("elbo_draws", 2**16, "2**16"),
)


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
    v: int = STUDY_GRAMMAR["v"]  # the study's grammar by default (rhmfast.study_grammar)
    n: int = STUDY_GRAMMAR["n"]
    m: int = STUDY_GRAMMAR["m"]
    s: int = STUDY_GRAMMAR["s"]
    L: int = STUDY_GRAMMAR["L"]
    grammar_seed: int = STUDY_GRAMMAR["grammar_seed"]
    zipf_a: float = -1.0  # rule probabilities k**-(1+a), as rhmfast.zipf(m, a); -1: uniform
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
    # "ancestral": each masked token revealed at step k with probability 1/(steps left),
    # several per step; "one": exactly one per step (d steps), exact for an exact denoiser
    sampling_reveal: str = "ancestral"
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
        """Load from a TOML file of top-level keys (:func:`rhmfast._io.toml.load_toml`:
        size bounded; a file that is not UTF-8 TOML is one ValueError naming it; an
        ``OSError`` from opening it passes through)."""
        return cls._from_table(load_toml(path))

    @classmethod
    def from_toml_string(cls, text: str) -> TrainConfig:
        """Load from TOML text of top-level keys."""
        return cls._from_table(tomllib.loads(text))

    @classmethod
    def _from_table(cls, data: dict[str, Any]) -> TrainConfig:
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
        return dump_toml(self.to_dict(), sort_keys=False)

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
        """Each field of its annotated type, numbers stored as Python ints and floats
        (integers through :func:`rhmfast._args.integer`: a bool is not one)."""
        for f in dataclasses.fields(self):
            val = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            new: Any
            try:
                if kind == "int":
                    new = integer(f.name, val, lo=None, hi=None)
                elif kind == "float":
                    if isinstance(val, bool) or not isinstance(val, (int, float)):
                        raise TypeError
                    new = float(val)  # finite or not: _check_values words each key's range
                elif kind in ("bool", "str"):
                    if not isinstance(val, bool if kind == "bool" else str):
                        raise TypeError
                    new = val
                else:  # tuple[int, ...]
                    if not isinstance(val, tuple):
                        raise TypeError
                    new = tuple(integer(f.name, x, lo=None, hi=None) for x in val)
            except TypeError:
                raise TypeError(f"TrainConfig.{f.name} = {val!r}: expected {kind}") from None
            object.__setattr__(self, f.name, new)

    def _check_values(self) -> None:
        def need(cond: bool, key: str, rule: str) -> None:
            if not cond:
                raise ValueError(f"TrainConfig.{key} = {getattr(self, key)!r}: {rule}")

        for key in ("v", "n", "m", "L", "width", "depth", "heads", "steps", "batch_size"):
            need(getattr(self, key) >= 1, key, "must be >= 1")
        # hard bounds far above any trainable size: beyond them arithmetic overflows
        # (step * batch_size indexes int64 tensors) or a loop never ends
        for key, hi, text in UPPER_BOUNDS:
            need(getattr(self, key) <= hi, key, f"must be <= {text}")
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
        need(math.isfinite(self.zipf_a) and self.zipf_a >= -1, "zipf_a", "must be finite and >= -1 (-1: uniform rules)")
        for lev in self.zipf_levels:
            need(0 <= lev < self.L, "zipf_levels", f"levels must lie in [0, L={self.L})")
        need(
            not self.zipf_levels or self.zipf_a > -1,
            "zipf_levels",
            "names the levels of the Zipf tail, so zipf_a must be > -1 (-1 is uniform)",
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
        need(self.sampling_reveal in ("ancestral", "one"), "sampling_reveal", "must be 'ancestral' or 'one'")
        if self.sampling_reveal == "one":
            need(self.process == "masked", "sampling_reveal", "'one' applies to the masked process only")
            need(self.sampling_steps in (0, self.d), "sampling_steps", "reveal 'one' takes d steps; use 0")
        need(self.elbo_draws >= 0, "elbo_draws", "must be >= 0 (0 skips the likelihood bound)")
        need(self.device in DEVICES, "device", f"must be one of {DEVICES}")
        if self.process == "d3pm":
            need(
                self.sampling_steps in (0, self.d3pm_steps),
                "sampling_steps",
                "d3pm samples with all d3pm_steps; use 0",
            )


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` of /proc/meminfo (else the
    free physical pages), lowered to the headroom of a cgroup v2 memory limit; ``None``
    where nothing can be read (memory checks are then skipped)."""
    free: int | None = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            pass
    try:
        cgroup = pathlib.Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            room = int(limit) - int((cgroup / "memory.current").read_text())
            free = room if free is None else min(free, room)
    except (OSError, ValueError):
        pass
    return free


def approx_params(config: TrainConfig, d: int | None = None) -> int:
    """Parameter count of the denoiser ``config`` builds for strings of length ``d``
    (default ``s**L``), from the layer shapes of ``models.py`` without building it."""
    d = config.d if d is None else d
    w, D = config.width, config.depth
    edges = (config.v + 1 + d + config.v + 4) * w + (2 * w * w if config.process == "d3pm" else 0)
    if config.model == "transformer":
        return edges + D * (12 * w * w + 13 * w)
    s, L = config.s, config.L
    return edges + D * (2 * L + 1) * (4 * w * w + 5 * w) + L * ((2 * s + 2) * w * w + (s + 3) * w)


def memory_estimate(
    config: TrainConfig,
    *,
    d: int | None = None,
    num_train: int | None = None,
    num_heldout: int | None = None,
) -> dict[str, tuple[int, int, str]]:
    """Coarse, rather high estimate of the memory a training of ``config`` needs, by the
    key that drives each part: ``{key: (device bytes, host bytes, what)}`` (on a CPU both
    are the same memory). ``d``, ``num_train``, ``num_heldout`` default to the config's."""
    d = config.d if d is None else d
    P = config.num_train if num_train is None else num_train
    H = config.heldout_count if num_heldout is None else num_heldout
    V, w, E = config.v + 1, config.width, config.eval_samples
    params = approx_params(config, d)
    # activations kept for backward (float32), per token and layer, plus logits and noise
    per_token = w * ((16 if config.model == "transformer" else 24) * config.depth + 4) + 4 * V + 8
    # inference: a few layers' activations and float64 probabilities per string
    infer = d * (32 * w + 24 * V + 48)
    elbo_rows = min(4096, (P + H) * config.elbo_draws)
    tok = 1 if config.v <= 256 else 2
    return {
        # weights, gradients, EMA, two AdamW moments; a checkpoint serializes 16 bytes a
        # parameter and holds three copies of them on the way to the file
        "width": (20 * params, 48 * params,
                  f"the model's ~{params} parameters (width = {w}, depth = {config.depth})"),
        "batch_size": (4 * config.batch_size * d * per_token, 0, "the training batch's activations"),
        # samples in batches of 1024; int64 samples, their token copy and parse results
        "eval_samples": (min(E, 1024) * infer, E * (24 * d + 2 * config.L), "the evaluation samples"),
        "elbo_draws": (elbo_rows * infer, 0, "the likelihood bound's batches"),
        # int64 copy on the device; tokens, suffix index, sampling and dedup sets on the host
        "num_train": (8 * P * d, P * (d * (tok + 32) + 200), "the training strings"),
        "num_heldout": (0, H * (d * (tok + 8) + 200), "the held-out strings"),
    }


def check_memory(
    config: TrainConfig,
    *,
    d: int | None = None,
    num_train: int | None = None,
    num_heldout: int | None = None,
    host_free: int | None = None,
    device_free: int | None = None,
) -> None:
    """Refuse, before anything is built, a training whose :func:`memory_estimate` exceeds
    the free memory: ``ValueError`` naming the key of the largest part and the bytes.
    ``host_free`` defaults to :func:`available_memory` (unknown: not checked);
    ``device_free`` is an accelerator's free memory (``None``: the device is the host)."""
    parts = memory_estimate(config, d=d, num_train=num_train, num_heldout=num_heldout)
    host_free = available_memory() if host_free is None else host_free
    if device_free is None:
        pools = [("", host_free, {k: dv + hs for k, (dv, hs, _) in parts.items()})]
    else:
        pools = [
            ("device ", device_free, {k: dv for k, (dv, _, _) in parts.items()}),
            ("host ", host_free, {k: hs for k, (_, hs, _) in parts.items()}),
        ]
    for pool, free, need in pools:
        total = sum(need.values())
        if free is None or total <= free:
            continue
        key = max(need, key=lambda k: need[k])
        raise ValueError(
            f"TrainConfig.{key} = {getattr(config, key)!r}: a training would need about "
            f"{total} bytes ({total / 2**30:.3g} GiB) of {pool}memory, {need[key]} bytes "
            f"for {parts[key][2]}; only {free} bytes ({free / 2**30:.3g} GiB) are available"
        )

