"""Data-parallel pretraining with ``torchrun``: joining the group, and checking the ranks agree.

Started as ``torchrun --nproc_per_node=N -m minis2l pretrain``, each process trains on its
share of every global batch (DistributedDataParallel: gloo on CPU, nccl on CUDA). Started as a
plain process, everything here is a no-op and the run has one rank.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) unless started by torchrun."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def maybe_init_distributed(device: torch.device) -> bool:
    """Join the process group when torchrun started us; return whether we did."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return True


def local_device(device: torch.device, world: int) -> torch.device:
    """This process's GPU when several processes share a CUDA machine, else ``device``."""
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def mean_over_ranks(value: float, world: int) -> float:
    """The mean of ``value`` over every rank (``value`` itself with one rank)."""
    if world == 1:
        return value
    total = torch.tensor(value, dtype=torch.float64)
    dist.all_reduce(total)
    return total.item() / world


def compare_ranks(model: torch.nn.Module, world: int) -> dict[str, Any]:
    """Gather every rank's weights; return the largest difference from rank 0's."""
    flat = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    diff = max(float((g - gathered[0]).abs().max()) for g in gathered)
    return {"world_size": world, "max_weight_diff_across_ranks": diff}
