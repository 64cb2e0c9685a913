"""Running an experiment's trainings: config files, parallel processes, resume, progress.

An experiment directory holds

```
EXP/
  experiment.toml        the resolved settings (a rerun with different ones is refused)
  configs/NAME.toml      one TrainConfig per training run (run_dir = EXP/runs/NAME)
  runs/NAME/             run directories (the contract in docs/ARCHITECTURE.md)
  logs/NAME.log          output of each training process
  done/NAME              written when a training finished
  figures/, results.json, report.md, report.html
```

Trainings are independent: by default they run in parallel processes
(``python -m rhmfast train configs/NAME.toml``), with the CPU threads split between
them; with ``nproc_per_node > 1`` each training is itself data-parallel under
``torchrun --standalone`` (its own rendezvous port, so several run side by side);
``--emit-commands`` prints the same commands for a cluster job array instead.
A killed experiment is resumed by running the same command again: finished runs are
skipped and unfinished ones resume from their last checkpoint (the trainer's job).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rhmfast._args import integer
from rhmfast._io.atomic import atomic_write_text
from rhmfast._io.toml import dump_toml
from rhmfast.diffusion.config import TrainConfig
from rhmfast.diffusion.trainer import train

__all__ = ["RunSpec", "check_parallel", "write_configs", "train_command", "run_trainings", "is_done"]

TrainFn = Callable[[Path], object]


@dataclass(frozen=True)
class RunSpec:
    """One training of an experiment: its name, the swept values, its TrainConfig."""

    name: str
    params: Mapping[str, Any]
    train: Mapping[str, Any] = field(default_factory=dict)


def config_path(exp_dir: Path, spec: RunSpec) -> Path:
    return exp_dir / "configs" / f"{spec.name}.toml"


def run_dir(exp_dir: Path, spec: RunSpec) -> Path:
    return exp_dir / "runs" / spec.name


def write_configs(exp_dir: Path, specs: Sequence[RunSpec]) -> list[Path]:
    """Write ``configs/NAME.toml`` for every run (``run_dir`` set, absolute)."""
    (exp_dir / "configs").mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        cfg = dict(spec.train)
        cfg["run_dir"] = str(run_dir(exp_dir, spec).resolve())
        path = config_path(exp_dir, spec)
        text = dump_toml(cfg)
        if not path.exists() or path.read_text() != text:
            atomic_write_text(path, text)
        paths.append(path)
    return paths


def train_command(cfg: Path, nproc_per_node: int = 1) -> list[str]:
    """The command that trains one run locally: ``python -m rhmfast train CFG``, under
    ``torchrun --standalone --nproc_per_node N`` when ``nproc_per_node > 1``.

    >>> train_command(Path("c.toml"), nproc_per_node=2)[1:5]
    ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']
    """
    cmd = ["-m", "rhmfast", "train", str(cfg.resolve())]
    if nproc_per_node > 1:
        cmd = ["-m", "torch.distributed.run", *_torchrun_flags(nproc_per_node), *cmd]
    return [sys.executable, *cmd]


def _torchrun_flags(nproc_per_node: int) -> list[str]:
    """One node, its own rendezvous on a free port, ``nproc_per_node`` processes."""
    return ["--standalone", f"--nproc_per_node={nproc_per_node}"]


def is_done(exp_dir: Path, spec: RunSpec) -> bool:
    """Finished: marked done by this runner, or (trained elsewhere) its final step's
    evaluation is in the run directory."""
    if (exp_dir / "done" / spec.name).exists():
        return True
    steps = spec.train.get("steps")
    return steps is not None and (run_dir(exp_dir, spec) / "eval" / f"step_{int(steps):08d}.npz").exists()


def mark_done(exp_dir: Path, spec: RunSpec) -> None:
    (exp_dir / "done").mkdir(parents=True, exist_ok=True)
    (exp_dir / "done" / spec.name).write_text("ok\n")


def _latest_step(run: Path) -> int:
    """Last step logged in ``metrics.jsonl`` (reads only the file's tail)."""
    path = run / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return 0
    for line in reversed(tail):
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # a torn or damaged line: progress only
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            return int(row["step"])
    return 0


def _cuda_devices(specs: Sequence[RunSpec]) -> int:
    if all(str(s.train.get("device", "auto")) == "cpu" for s in specs):
        return 0  # no need to import torch (seconds) to learn that
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def check_parallel(jobs: int | None, nproc_per_node: int) -> None:
    """``jobs`` (None or an integer >= 1) and ``nproc_per_node`` (an integer >= 1)."""
    if jobs is not None:
        integer("jobs", jobs, lo=1)
    integer("nproc_per_node", nproc_per_node, lo=1)


def run_trainings(
    exp_dir: Path,
    specs: Sequence[RunSpec],
    *,
    jobs: int | None = None,
    nproc_per_node: int = 1,
    train_fn: TrainFn | None = None,
    progress: bool = True,
) -> None:
    """Train every unfinished run of ``specs``.

    ``jobs``: parallel training processes (default: one per GPU; on CPUs one per run, up
    to twice the cores, one thread each: small models use a core better one process per
    thread than one process over several threads, and equal runs finish together instead
    of in waves that leave cores idle). ``jobs=1`` trains in this process.
    ``nproc_per_node``: processes per training under ``torchrun`` (DDP; on GPUs each job
    gets that many devices). ``train_fn`` (a callable taking a config path) replaces the
    rhmfast trainer and runs in this process.
    """
    check_parallel(jobs, nproc_per_node)
    todo = [s for s in specs if not is_done(exp_dir, s)]
    if not todo:
        return
    gpus = 0 if train_fn is not None else _cuda_devices(todo)
    cores = os.cpu_count() or 1
    if jobs is None:
        per_node = gpus if gpus else 2 * cores
        jobs = max(1, min(len(todo), per_node // nproc_per_node))
    (exp_dir / "logs").mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    total = sum(int(s.train.get("steps", 0)) for s in todo)
    bar = _Progress(total, [run_dir(exp_dir, s) for s in todo], enabled=progress, desc=exp_dir.name)
    try:
        if train_fn is not None or (jobs == 1 and nproc_per_node == 1):
            fn = train_fn or _train_in_process
            for spec in todo:
                fn(config_path(exp_dir, spec))
                mark_done(exp_dir, spec)
                bar.poll()
        else:
            threads = max(1, cores // (jobs * nproc_per_node))

            def launch(i_spec: tuple[int, RunSpec]) -> None:
                i, spec = i_spec
                env = dict(os.environ)
                env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), RAYON_NUM_THREADS=str(threads))
                if gpus:
                    first = (i * nproc_per_node) % gpus
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(str((first + k) % gpus) for k in range(nproc_per_node))
                log = exp_dir / "logs" / f"{spec.name}.log"
                with open(log, "ab") as f:
                    with lock:  # no new process once interrupted
                        if stop.is_set():
                            return
                        proc = subprocess.Popen(train_command(config_path(exp_dir, spec), nproc_per_node), stdout=f,
                                                stderr=subprocess.STDOUT, env=env)
                        procs.append(proc)
                    rc = proc.wait()
                if stop.is_set():
                    return
                if rc == 0:
                    mark_done(exp_dir, spec)
                else:
                    failures.append(f"{spec.name} (exit {rc}, log {log})")

            stop = threading.Event()
            lock = threading.Lock()
            procs: list[subprocess.Popen[bytes]] = []
            poller = threading.Thread(target=bar.run_until, args=(stop,), daemon=True)
            poller.start()
            pool = ThreadPoolExecutor(max_workers=jobs)
            try:
                list(pool.map(launch, enumerate(todo)))
            except BaseException:
                # interrupted (Ctrl-C, SIGTERM turned into an exception): stop the trainings;
                # they resume from their last checkpoint on the next run
                with lock:
                    stop.set()
                    for proc in procs:
                        if proc.poll() is None:
                            proc.terminate()
                    for proc in procs:
                        try:
                            proc.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            proc.kill()
                raise
            finally:
                stop.set()
                pool.shutdown(wait=True)
                poller.join()
    finally:
        bar.close()
    if failures:
        raise RuntimeError("training failed for: " + "; ".join(failures))


def _train_in_process(cfg: Path) -> object:
    return train(TrainConfig.from_toml(cfg))


class _Progress:
    """One bar over all trainings, fed by the steps logged in each ``metrics.jsonl``."""

    def __init__(self, total: int, runs: Sequence[Path], *, enabled: bool, desc: str) -> None:
        self.runs = list(runs)
        self.bar = None
        self.done = 0
        if enabled and total > 0:
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover - tqdm comes with the train extra
                return
            self.bar = tqdm(total=total, desc=f"{desc}: {len(runs)} run(s)", unit="step", file=sys.stderr)

    def poll(self) -> None:
        if self.bar is None:
            return
        now = sum(_latest_step(r) for r in self.runs)
        if now > self.done:
            self.bar.update(now - self.done)
            self.done = now

    def run_until(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.poll()
        self.poll()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_commands(
    exp_dir: Path, specs: Sequence[RunSpec], merge: Sequence[str], nproc_per_node: int = 1
) -> str:
    """One shell command per training (for a job array), then the merge command; with
    ``nproc_per_node > 1`` each under ``torchrun`` (edit its rendezvous for several nodes)."""
    lines = ["# one training per line; run them anywhere that sees this directory, then merge:"]
    launch = ["rhmfast", "train"]
    if nproc_per_node > 1:
        launch = ["torchrun", *_torchrun_flags(nproc_per_node), "-m", "rhmfast", "train"]
    lines += [shlex.join([*launch, str(config_path(exp_dir, s).resolve())]) for s in specs]
    lines.append("# merge: " + shlex.join(list(merge)))
    return "\n".join(lines) + "\n"
