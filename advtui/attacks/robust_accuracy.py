"""Robust accuracy under a list of `AttackSpec`s, as a per-point worst case (DESIGN sections 9 and 10).

A point counts as robust only if it is classified correctly clean and under every attack. Each spec
becomes one attack of the driver (`advtui.attacks.driver.attack_standing`): PGD (with early stop) or
AutoAttack, run in the order given on the points still robust; neither the order nor early stopping
changes the answer, only the work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from advtui.attacks.driver import ChunkAttack, ChunkFn, RobustResult, Run, attack_standing, model_device
from advtui.attacks.pgd import pgd_attack
from advtui.attacks.speed import faster
from advtui.catalog.attacks import AttackSpec, SpeedConfig
from advtui.shards import attack_shard, share
from advtui.progress import ProgressFn


def spec_names(specs: Sequence[AttackSpec]) -> list[str]:
    """Names of `specs`, made unique with '#2', '#3' ... when a spec repeats."""
    names: list[str] = []
    for spec in specs:
        name, k = spec.name, 2
        while name in names:
            name, k = f"{spec.name}#{k}", k + 1
        names.append(name)
    return names


class PgdChunks:
    """Cross-entropy PGD (random start) of one `AttackSpec`, as an attack of the driver.

    With ``active_set`` (the default) a point leaves the batch at the first iterate that breaks it (PGD's
    ``early_stop``), so a chunk costs forward and backward passes only for the points still standing; without
    it every point runs all ``steps`` (fixed-k PGD, the baseline the tests and ``bench/active_set.py`` compare
    with). Both find the same broken points (see ``advtui.attacks.pgd``). The attack does not score its final
    iterates (``score_final=False``): the one forward pass over the chunk that gives the verdict does.
    """

    parts = ("pgd",)

    def __init__(self, model: nn.Module, spec: AttackSpec, name: str, *, active_set: bool = True) -> None:
        self.model, self.spec, self.name, self.active_set = model, spec, name, active_set
        self.identity = asdict(spec)

    @contextmanager
    def running(self, run: Run) -> Iterator[ChunkFn]:
        """Yield the chunk attack; its random starts are seeded from the run's seed (see below)."""
        spec = self.spec

        def attack_chunk(part: str, x: Tensor, y: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
            # One generator per (attack, first point of the chunk): a resumed run draws the same starts.
            generator = torch.Generator().manual_seed(run.seed + run.index * run.n + int(points[0]))
            x_adv = pgd_attack(
                self.model, x, y,
                norm=spec.norm, eps=spec.eps, step_size=spec.step_size, steps=spec.steps,
                restarts=spec.restarts, generator=generator, early_stop=self.active_set, score_final=False,
            )
            with torch.no_grad():
                broken = (self.model(x_adv).argmax(1) != y).cpu()
            return broken, x_adv

        yield attack_chunk


def spec_attack(model: nn.Module, spec: AttackSpec, name: str, device: torch.device) -> ChunkAttack:
    """The driver's attack for ``spec`` (a new kind of spec gets its branch here)."""
    if spec.kind == "pgd":
        return PgdChunks(model, spec, name)
    # imported here: PGD-only evaluations then run without pyautoattack, which a GPU machine may lack (its
    # 42 MB wheel, a test model mostly, would not fit the carried files: bench/README.md "GPU run")
    from advtui.attacks.autoattack import AutoAttackChunks

    return AutoAttackChunks(model, name=name, norm=spec.norm, eps=spec.eps, version=spec.version, device=device,
                            attacks=spec.parts or None)


def robust_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    specs: Sequence[AttackSpec],
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
    on_progress: ProgressFn | None = None,
    phase: str = "attack",
    state_dir: Path | str | None = None,
    speed: SpeedConfig | None = None,
) -> RobustResult:
    """Clean and robust accuracy of `model` on (x, y) under all `specs` (per-point worst case).

    Split over several ranks (torchrun, inside `advtui.shards.split`) the ranks share every attack's
    batches and all return the one-process result; rank 0 alone reports progress and keeps the resume file.

    Args:
        model: classifier returning logits; evaluated in eval mode, parameter grads off, then restored.
        x, y: images in [0, 1] and labels, on any device; moved to `device` batch by batch.
        specs: attacks, run in order, each on the points still robust.
        batch_size: points per attack batch (the last batch may be smaller).
        device: where to attack; default the model's device.
        generator: seeds the PGD random starts and AutoAttack (one draw, then per-batch seeds).
        on_progress: the progress protocol, ``on_progress(phase, done, total, **info)`` during the run,
            with total = len(specs) * n, done counting points settled per attack and info holding the
            current ``robust_acc`` and the ``attack`` (see `advtui.attacks.driver`).
        phase: the phase name progress reports (e.g. "attack l2").
        state_dir: folder for the resume file; a rerun with the same data, specs, model (by content) and
            batch size continues where the last one stopped (finished batches are not attacked again); a
            file of another evaluation is discarded with one line and the evaluation starts over.
        speed: how the attacks run the model (channels_last, torch.compile; see `advtui.attacks.speed`);
            None runs it plain.

    Returns:
        RobustResult (clean_acc, robust_acc, per_attack by spec name, n, per-point robust and clean flags).
    """
    device = torch.device(device) if device is not None else model_device(model)
    # A randomised model (DDPM's encoder: `randomised` on it) draws its noise from the global RNG, in an order
    # that depends on which chunks a process attacked before: its ranks each run the whole (same) evaluation.
    shard = None if getattr(model, "randomised", False) else attack_shard()  # None in one process
    main = share()[0] == 0  # rank 0 alone keeps the resume file and reports progress
    with faster(model, speed, device) as attacked:
        # The attacks run the model through the speed-ups; the driver keys the resume file on the model itself.
        attacks = [spec_attack(attacked, spec, name, device) for spec, name in zip(specs, spec_names(specs))]
        return attack_standing(
            model, x, y, attacks,
            batch_size=batch_size, seed=int(torch.randint(0, 2**62, (1,), generator=generator).item()), device=device,
            state_path=Path(state_dir) / "robust_accuracy.pt" if state_dir is not None and main else None,
            on_progress=on_progress if main else None, phase=phase, shard=shard,
        )
