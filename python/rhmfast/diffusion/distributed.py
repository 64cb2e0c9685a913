"""torchrun / DistributedDataParallel support; one process uses the same code path.

``torchrun --nproc-per-node 4 -m rhmfast train CONFIG.toml`` sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`setup` reads them,
joins the process group (NCCL on GPUs, gloo on CPUs) and picks the device. Every rank
draws the same global batch and noise and keeps its own slice, so the averaged gradient
equals the one-process gradient on the whole batch. Across nodes, ``run_dir`` must lie
on a filesystem every node sees: rank 0 writes the data and the checkpoints, every
rank reads them.

>>> info = setup("cpu")
>>> (info.rank, info.world, str(info.device))
(0, 1, 'cpu')
"""

from __future__ import annotations

import dataclasses
import datetime
import os

import torch
import torch.distributed as dist
from torch import nn


@dataclasses.dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    owns_group: bool  # whether setup() created the process group (and must destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def wrap(self, model: nn.Module) -> nn.Module:
        """``DistributedDataParallel(model)`` when there are several ranks, else ``model``."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} = {raw!r}: expected an integer") from None


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` when a GPU is visible, else ``mps``, else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("TrainConfig.device = 'cuda': no CUDA device is available")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if device == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError("TrainConfig.device = 'mps': MPS is not available")
    return torch.device(device)


def setup(device: str) -> DistInfo:
    """Read the torchrun environment, join the process group if needed, pick the device."""
    world = env_int("WORLD_SIZE", 1)
    rank = env_int("RANK", 0)
    local_rank = env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"RANK = {rank}, WORLD_SIZE = {world}: need 0 <= RANK < WORLD_SIZE")
    dev = resolve_device(device, local_rank)
    owns = False
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            rank=rank,
            world_size=world,
            # the other ranks wait at a barrier while rank 0 evaluates a checkpoint
            # (sampling, ELBO on every string): longer than the 10-minute default on CPUs
            timeout=datetime.timedelta(hours=2),
        )
        owns = True
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=dev, owns_group=owns)
