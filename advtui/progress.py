"""The one progress protocol, without torch: every long loop reports ``on_progress(phase, done, total, **info)``.

``phase`` names what is being counted ("attack l2", "construct", "pretrain"), ``done`` of ``total`` says
how far it is (images, points settled, epochs), and ``info`` adds what a reader wants beside the count
(``robust_acc``, ``target_hit``, ``images_per_s``, ``attack`` ...). The attack driver, construction and
the trainer's epochs emit it; ``advtui.pipeline.progress.StageProgress.update`` consumes it as it is (the
progress file and the terminal line), so a stage passes ``progress.update`` straight through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # for the annotations only: importing the trainer would import torch
    from advtui.paradigms.trainer import EpochHook


class ProgressFn(Protocol):
    """``on_progress(phase, done, total, **info)``: ``done`` of ``total`` items of ``phase`` are finished."""

    def __call__(self, phase: str, done: int, total: int, **info: Any) -> None: ...


def epoch_progress(on_progress: ProgressFn, phase: str, epochs: int, evaluate: EpochHook | None = None) -> EpochHook:
    """A trainer epoch hook that reports epochs done of ``epochs`` as ``phase``, with what ``evaluate`` returns.

    The trainer calls its hook as ``on_epoch(module, epoch)`` and logs what the hook returns; this one runs
    ``evaluate`` (if any) for those metrics, reports them as info (e.g. ``test_acc``) and returns them.
    It reports 0 of ``epochs`` at once, so a reader sees the phase begin before the first epoch ends.
    """
    on_progress(phase, 0, epochs)

    def hook(module: Any, epoch: int) -> Mapping[str, float] | None:
        metrics = evaluate(module, epoch) if evaluate is not None else None
        on_progress(phase, epoch, epochs, **(metrics or {}))
        return metrics

    return hook
