"""Splitting a stage's chunks over ranks, and merging them back into what one process would have made.

Construction (E2/E3) and robust accuracy are embarrassingly parallel: they work in chunks whose results
depend only on the chunk (its index, its seed), never on which process computed it or when. So chunk ``i``
goes to rank ``i % world_size`` and the results are put back in chunk order; the artifact and the accuracy are
then the same, byte for byte, as a one-process run's (given the same per-process thread count and hardware:
a float sum may round differently on another thread count, and torchrun runs each rank on one thread).

Two ways the ranks meet (DESIGN section 10):

- Construction meets through files. Every rank writes its chunks into the set's parts folder (atomically,
  each with the digest of the settings that made it); rank 0 builds its own, then waits for the others'
  files and writes the dataset. Any N processes sharing that folder can split one construction: torchrun's
  ranks, or N jobs on machines that mount the same project folder (a SLURM job array with RANK and
  WORLD_SIZE set). Rank 0 waits as long as it takes (a rank may be slow, not only dead); under torchrun a
  rank that fails stops the others, elsewhere the waiting rank says which chunk it waits for.
- Robust accuracy meets through a process group (gloo, on CPU tensors, beside any NCCL group training uses):
  each attack part attacks the points still standing, and which points those are depends on every rank's
  verdicts, so the ranks merge their flags after each part (:class:`AttackShard`). That needs torchrun (or
  anything else that sets MASTER_ADDR and MASTER_PORT).

A stage splits its work only inside :func:`split` (the construct and attack runners open it): a rank that
evaluates alone while the others wait (the training stages under torchrun evaluate on rank 0 only) must not
wait for the others' chunks. Outside it, and in one process (no WORLD_SIZE, or 1), none of these paths is
taken: no extra pass, no file read back, no group.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from advtui import distributed

T = TypeVar("T")

#: How often rank 0 looks for another rank's chunk file (a chunk takes seconds to minutes to build).
POLL_S = 0.5
_SPLIT: ContextVar[bool] = ContextVar("advtui_shards_split", default=False)


@contextmanager
def split() -> Iterator[None]:
    """Within the block, construction and robust accuracy split their chunks over the ranks (every rank must
    run the same block); outside it every process computes every chunk."""
    token = _SPLIT.set(True)
    try:
        yield
    finally:
        _SPLIT.reset(token)


def share() -> tuple[int, int]:
    """(rank, world size) of the work split now: the launcher's inside :func:`split`, else (0, 1)."""
    return distributed.rank_and_size() if _SPLIT.get() else (0, 1)


def mine(items: Sequence[T]) -> Sequence[T]:
    """The chunks this rank computes: item ``i`` of ``items`` goes to rank ``i % world_size`` (all of them
    in one process, or outside :func:`split`)."""
    rank, size = share()
    return items[rank::size]


def collect(items: Sequence[T], done: dict[T, Any], load: Callable[[T], Any | None], what: Callable[[T], str]) -> list[Any]:
    """Every chunk's result in ``items`` order: this rank's own from ``done``, the others' from ``load(item)``,
    polled until the rank computing it has written it (``load`` returns None until then). ``what(item)``
    names the awaited file in the one line said when a wait begins."""
    size = share()[1]
    results = []
    for i, item in enumerate(items):
        result = done[item] if item in done else load(item)
        if result is None:
            print(f"rank 0: waiting for {what(item)} from rank {i % size}", file=sys.stderr, flush=True)
        while result is None:
            time.sleep(POLL_S)
            result = load(item)
        results.append(result)
    return results


@functools.cache
def _cpu_group() -> Any:
    """A gloo process group over every rank for CPU tensors: the default group when it is gloo (or none is up
    yet: then it is made from torchrun's environment), else a new gloo group beside it (NCCL cannot reduce
    CPU tensors)."""
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1: this torch has no torch.distributed; install a torch build with it "
                           "or run one process (unset WORLD_SIZE)")
    if not dist.is_initialized():
        if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise RuntimeError(
                "WORLD_SIZE > 1: sharded attack evaluation needs a process group and MASTER_ADDR/MASTER_PORT are "
                "unset; launch with torchrun, or unset WORLD_SIZE to run one process"
            )
        dist.init_process_group("gloo", timeout=distributed.WAIT)  # as distributed.init: ranks may wait long
    return None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")


@dataclass(frozen=True)
class AttackShard:
    """This rank's share of an attack evaluation and how the ranks merge their verdicts (see the module
    docstring). Every rank must make the same calls in the same order (they are collective)."""

    rank: int
    size: int
    group: Any  # the gloo group (None: the default group)

    @property
    def is_main(self) -> bool:
        """Whether this rank writes the evaluation's resume file and progress."""
        return self.rank == 0

    def batches(self, n_batches: int) -> range:
        """The batches of a part this rank attacks: batch ``b`` goes to rank ``b % size``."""
        return range(self.rank, n_batches, self.size)

    def from_main(self, make: Callable[[], T]) -> T:
        """``make()`` on rank 0, sent to every rank: all start from rank 0's state (its resume file, read
        there only, so the ranks never read different ones)."""
        return distributed.broadcast_object(make() if self.is_main else None, group=self.group)

    def merge(self, robust: Any, tried: Any) -> None:
        """Put every rank's verdicts of a part into ``robust`` and ``tried`` ((n,) bool CPU tensors, in
        place): a point stays robust only if no rank broke it, and was tried if any rank tried it."""
        import torch
        import torch.distributed as dist

        for flags, op in ((robust, dist.ReduceOp.MIN), (tried, dist.ReduceOp.MAX)):
            as_int = flags.to(torch.uint8)
            dist.all_reduce(as_int, op=op, group=self.group)
            flags.copy_(as_int.bool())


def attack_shard() -> AttackShard | None:
    """This process's share of an attack evaluation; None in one process or outside :func:`split` (the plain
    loop runs)."""
    rank, size = share()
    if size == 1:
        return None
    return AttackShard(rank, size, _cpu_group())
