"""Which rank of how many this process is, read from the environment ``torchrun`` sets, and the process group.

``torchrun`` (``python -m torch.distributed.run``) starts one process per rank and gives each ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``. Outside it none is set: world size 1, rank 0, no process group, and every
function here is a cheap no-op that never imports ``torch.distributed`` (the local pipeline runs exactly as
without this module).

Inside it, :func:`init` starts the process group: ``nccl`` when the run's device is CUDA (each rank on
``cuda:LOCAL_RANK``), ``gloo`` on the CPU. Rank 0 is the *main* rank: it alone writes artifacts, checkpoints,
DVCLive rows and progress; the others compute with it and wait at collectives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: How long a rank waits at a collective for the others. Long on purpose: between two trainings of a stage
#: (E4's seeds) the other ranks wait while rank 0 alone evaluates the model it just trained. A rank that dies
#: does not leave the others waiting this long: torchrun stops every rank once one fails.
WAIT = timedelta(hours=12)


def rank_and_size() -> tuple[int, int]:
    """This process's (rank, world size): RANK and WORLD_SIZE as torchrun sets them (or a SLURM array script,
    examples/slurm); (0, 1) without them. ValueError (one line naming the fix) for values no launcher sets."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise ValueError(
            f"RANK={os.environ.get('RANK')!r} WORLD_SIZE={os.environ.get('WORLD_SIZE')!r}: expected integers; "
            "set them as torchrun does (RANK=0..N-1, WORLD_SIZE=N) or unset both"
        ) from None
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"RANK={rank} WORLD_SIZE={size}: need 0 <= RANK < WORLD_SIZE; set RANK=0..{max(size, 1) - 1}")
    return rank, size


def world_size() -> int:
    """How many ranks run this program (1 outside torchrun)."""
    return rank_and_size()[1]


def rank() -> int:
    """This process's rank, from 0 (0 outside torchrun)."""
    return rank_and_size()[0]


def local_rank() -> int:
    """This process's rank on its machine: the index of its GPU (0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this process is rank 0, the one that writes outputs."""
    return rank() == 0


def under_torchrun() -> bool:
    """Whether torchrun started this process (``LOCAL_RANK`` set), whatever the world size."""
    return "LOCAL_RANK" in os.environ


def active() -> bool:
    """Whether this process is one of several ranks with a process group (:func:`init` entered)."""
    if world_size() == 1:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _require_group() -> None:
    if world_size() > 1 and not active():
        raise RuntimeError(
            f"WORLD_SIZE={world_size()} but no process group: run inside `with advtui.distributed.init(device)`"
        )


@contextmanager
def init(device: str | torch.device = "cpu") -> Iterator[torch.device]:
    """Start the process group of this torchrun rank for the block, and yield the device the rank runs on.

    ``device`` is the run's resolved device: CUDA gives ``nccl`` and ``cuda:LOCAL_RANK`` (made the current
    device, so that ``"cuda"`` anywhere in the run means this rank's GPU), anything else ``gloo``. Outside
    torchrun (world size 1) it yields ``device`` and starts nothing. Bad input is one line naming the fix.
    """
    import torch

    device = torch.device(device)
    if world_size() == 1:
        yield device
        return
    import torch.distributed as dist

    if device.type == "cuda":
        if device.index is not None and device.index != local_rank():
            raise ValueError(f"device: {device} pins every rank to one GPU; set device: cuda or auto under torchrun")
        if local_rank() >= torch.cuda.device_count():
            raise ValueError(f"nproc: rank {local_rank()} has no GPU ({torch.cuda.device_count()} here); "
                             f"set nproc: {torch.cuda.device_count()} or fewer")
        torch.cuda.set_device(local_rank())
        device, backend = torch.device("cuda", local_rank()), "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"device: {device.type} cannot run under torchrun; set device: cpu, cuda or auto")
    dist.init_process_group(backend, timeout=WAIT)
    try:
        yield device
    finally:
        dist.destroy_process_group()


@contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks: e.g. a download that rank 0 makes and the
    others then find in place (every rank must enter it; nothing special outside torchrun)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def barrier() -> None:
    """Wait until every rank gets here (nothing outside torchrun)."""
    if world_size() > 1:
        _require_group()
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> None:
    """Replace ``tensor`` on every rank by its sum over the ranks (unchanged outside torchrun)."""
    if world_size() > 1:
        _require_group()
        import torch.distributed as dist

        dist.all_reduce(tensor)


def broadcast(tensor: torch.Tensor) -> None:
    """Overwrite ``tensor`` on every rank with rank 0's (unchanged outside torchrun)."""
    if world_size() > 1:
        _require_group()
        import torch.distributed as dist

        dist.broadcast(tensor, src=0)


def broadcast_object(obj: Any, group: Any = None) -> Any:
    """Rank 0's ``obj`` (any picklable value; the others' is ignored), on every rank of ``group`` (None: all)."""
    if world_size() == 1:
        return obj
    _require_group()
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0, group=group)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, by rank, on every rank (``[obj]`` outside torchrun)."""
    if world_size() == 1:
        return [obj]
    _require_group()
    import torch.distributed as dist

    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
