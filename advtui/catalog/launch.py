"""How ``advtui stage`` launches a stage: params.yaml's ``launcher`` and ``nproc``, and which stages run distributed.

``launcher: torchrun`` with ``nproc: N`` runs each training stage as N ranks under ``torchrun`` (one per GPU, or
CPU processes with gloo); ``local`` (the default, ``nproc: 1``) runs it in this process. Only the stages of
:data:`DISTRIBUTED_RUNNERS` run as ranks: the training stages (which read these keys: their results change, up to
float rounding, with the number of ranks) and the sharded construction and E6 attacks (same bytes as one
process); every other stage runs in one process whatever the launcher.
"""

from __future__ import annotations

LAUNCHERS = ("local", "torchrun")
#: The params keys a distributed stage reads (dvc.yaml lists them among its params).
LAUNCH_PARAMS = ("launcher", "nproc")
#: Training runners under torchrun: every rank trains on its slice of each batch, rank 0 writes. Their results
#: change (up to float rounding, or in distribution) with the number of ranks, so they read ``LAUNCH_PARAMS``.
TRAINING_RUNNERS = ("source", "retrain", "pretrain")
#: Sharded runners under torchrun: chunks split over the ranks and merged (``advtui.shards``) into what one
#: process makes, byte for byte, so a change of launcher does not rerun them: they do not list the keys.
SHARDED_RUNNERS = ("construct", "attack")
#: The ``advtui stage`` runners that run under torchrun; every other stage runs in one process.
DISTRIBUTED_RUNNERS = TRAINING_RUNNERS + SHARDED_RUNNERS


def check_launch(launcher: str, nproc: int) -> None:
    """ValueError (one line naming the fix) unless ``launcher`` and ``nproc`` make a launch."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher: unknown launcher {launcher!r}; use one of {', '.join(LAUNCHERS)}")
    if nproc < 1:
        raise ValueError(f"nproc: must be >= 1, got {nproc}; use 1, or the number of GPUs with launcher: torchrun")
    if launcher == "local" and nproc != 1:
        raise ValueError(f"nproc: {nproc} processes need launcher: torchrun; set launcher: torchrun or nproc: 1")
