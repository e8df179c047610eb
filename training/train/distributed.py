"""Data-parallel training across processes (``torchrun``), and the device a run trains on.

Started by ``torchrun --nproc_per_node N -m training.train ...`` every process joins one process
group (NCCL on CUDA, gloo on CPU). The *global* batch of step s is the one a single process
would draw (:class:`training.train.data.TrainImages` depends only on seed and s); rank r trains
on its contiguous share of rows, DistributedDataParallel averages the gradients, so the data
order — and a checkpoint — is the same on any number of processes and resumes on another
machine. Batch-norm statistics are per process (CPU has no synchronised batch norm), the one
thing that makes an N-process step differ from a one-process step beyond rounding.

Only rank 0 writes logs, checkpoints and validates; the others wait for it at a barrier.
Started plainly (``python -m training.train``) this is a one-process group of nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist

from shared.runtime import current_runtime

Device = Literal["auto", "cpu", "cuda"]


class DistributedError(ValueError):
    """A launch that cannot train: a batch that does not split, CUDA asked for and absent."""


@dataclass(frozen=True)
class Distributed:
    rank: int
    world: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def rows(self, batch_size: int) -> slice:
        """This process's rows of the global batch."""
        per = batch_size // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in DistributedDataParallel when there are several processes."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over processes of a tensor every process holds (logged loss terms)."""
        if not self.active:
            return values
        out = values.detach().to(self.device, torch.float64).clone()
        dist.all_reduce(out)
        return (out / self.world).cpu()

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(device: Device, local_rank: int = 0) -> torch.device:
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DistributedError("device: cuda, but this torch sees no CUDA device")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(device: Device, batch_size: int) -> Distributed:
    """Join the ``torchrun`` process group if this process was started by it; else one process."""
    if not dist.is_torchelastic_launched():
        return Distributed(0, 1, resolve_device(device))
    local_rank = current_runtime().local_rank or 0
    dev = resolve_device(device, local_rank)
    if not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    world, rank = dist.get_world_size(), dist.get_rank()
    if batch_size % world:
        dist.destroy_process_group()
        raise DistributedError(f"batch_size {batch_size} does not split over {world} processes "
                               f"(the global batch is divided between them; make it a multiple of {world})")
    return Distributed(rank, world, dev)

