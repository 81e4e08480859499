"""How ``advtui stage`` launches a stage: params.yaml's ``launcher`` and ``nproc``, and which stages run distributed.

``launcher: torchrun`` with ``nproc: N`` runs each training stage as N ranks under ``torchrun`` (one per GPU, or
CPU processes with gloo); ``local`` (the default, ``nproc: 1``) runs it in this process. Only the stages of
:data:`DISTRIBUTED_RUNNERS` train through the trainer alone, and so read these keys (their results change, up to
float rounding, with the number of ranks): every other stage runs in one process whatever the launcher.
"""

from __future__ import annotations

LAUNCHERS = ("local", "torchrun")
#: The params keys a distributed stage reads (dvc.yaml lists them among its params).
LAUNCH_PARAMS = ("launcher", "nproc")
#: The ``advtui stage`` runners that run under torchrun: training stages, every rank training, rank 0 writing.
DISTRIBUTED_RUNNERS = ("source", "retrain", "pretrain")


def check_launch(launcher: str, nproc: int) -> None:
    """ValueError (one line naming the fix) unless ``launcher`` and ``nproc`` make a launch."""
    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher: unknown launcher {launcher!r}; use one of {', '.join(LAUNCHERS)}")
    if nproc < 1:
        raise ValueError(f"nproc: must be >= 1, got {nproc}; use 1, or the number of GPUs with launcher: torchrun")
    if launcher == "local" and nproc != 1:
        raise ValueError(f"nproc: {nproc} processes need launcher: torchrun; set launcher: torchrun or nproc: 1")
