"""Robust accuracy under one or more attacks, as a per-point worst case (DESIGN sections 9 and 10).

A point counts as robust only if it is classified correctly clean and under every attack. Attacks run
in the order given, each only on the points still robust (as AutoAttack chains its attacks), and PGD
stops computing a point once it is broken; neither changes the answer, only the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from advtui.attacks.autoattack import fingerprint, load_state, run_autoattack, save_state
from advtui.attacks.pgd import attack_mode, pgd_attack
from advtui.catalog.attacks import AttackSpec, check_attack_settings

ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class RobustResult:
    """Outcome of `robust_accuracy` on n points.

    robust: (n,) bool on CPU, correct clean and under every attack; clean: (n,) bool, correct clean;
    per_attack: spec name -> robust accuracy after that attack and all before it (cumulative worst
    case, in the order run; later attacks only see points earlier ones left standing).
    """

    clean_acc: float
    robust_acc: float
    per_attack: dict[str, float]
    n: int
    robust: Tensor
    clean: Tensor


def spec_names(specs: Sequence[AttackSpec]) -> list[str]:
    """Names of `specs`, made unique with '#2', '#3' ... when a spec repeats."""
    names: list[str] = []
    for spec in specs:
        name, k = spec.name, 2
        while name in names:
            name, k = f"{spec.name}#{k}", k + 1
        names.append(name)
    return names


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _model_checksum(model: nn.Module) -> float:
    with torch.no_grad():
        tensors = (*model.parameters(), *model.buffers())
        return sum(t.detach().double().sum().item() for t in tensors if t.is_floating_point())


def _predict_correct(model: nn.Module, x: Tensor, y: Tensor, device: torch.device, batch_size: int) -> Tensor:
    correct = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            correct.append((model(xb).argmax(1) == yb).cpu())
    return torch.cat(correct)


def _run_pgd_spec(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    spec: AttackSpec,
    state: dict[str, Any],
    s: int,
    *,
    device: torch.device,
    batch_size: int,
    checkpoint: Callable[[], None],
    on_progress: ProgressFn | None,
) -> None:
    n, total = x.shape[0], len(state["attempted"]) * x.shape[0]
    robust, attempted = state["robust"], state["attempted"][s]
    todo = torch.nonzero(robust & ~attempted).squeeze(1)
    for start in range(0, todo.numel(), batch_size):
        chunk = todo[start : start + batch_size]
        xb, yb = x[chunk.to(x.device)].to(device), y[chunk.to(y.device)].to(device)
        # One generator per (spec, first point of the batch): a resumed run draws the same starts.
        generator = torch.Generator().manual_seed(state["base_seed"] + s * x.shape[0] + int(chunk[0]))
        x_adv = pgd_attack(
            model, xb, yb,
            norm=spec.norm, eps=spec.eps, step_size=spec.step_size, steps=spec.steps,
            restarts=spec.restarts, generator=generator, early_stop=True,
        )
        with torch.no_grad():
            broken = (model(x_adv).argmax(1) != yb).cpu()
        robust[chunk[broken]] = False
        attempted[chunk] = True
        checkpoint()
        if on_progress is not None:
            remaining = int((robust & ~attempted).sum())
            on_progress(s * n + n - remaining, total, robust.float().mean().item())


def _run_autoattack_spec(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    spec: AttackSpec,
    state: dict[str, Any],
    s: int,
    *,
    device: torch.device,
    batch_size: int,
    state_path: Path | None,
    on_progress: ProgressFn | None,
) -> None:
    robust, attempted, n = state["robust"], state["attempted"][s], x.shape[0]
    total = len(state["attempted"]) * n
    idx = torch.nonzero(robust & ~attempted).squeeze(1)
    if idx.numel() == 0:
        return
    m, standing_elsewhere = idx.numel(), int(robust.sum()) - idx.numel()

    def forward(record: dict[str, Any]) -> None:
        if on_progress is not None and record["source"] == "advtui":
            settled = round(m * record["done"] / record["total"])
            on_progress(s * n + (n - m) + settled, total, (standing_elsewhere + record["n_robust"]) / n)

    result = run_autoattack(
        model, x[idx.to(x.device)].to(device), y[idx.to(y.device)].to(device),
        norm=spec.norm, eps=spec.eps, version=spec.version, batch_size=batch_size,
        state_path=state_path, on_progress=forward, seed=(state["base_seed"] + s) % 2**31,
    )
    robust[idx] = result.robust
    attempted[idx] = True


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
    state_dir: Path | str | None = None,
) -> RobustResult:
    """Clean and robust accuracy of `model` on (x, y) under all `specs` (per-point worst case).

    Args:
        model: classifier returning logits; evaluated in eval mode, parameter grads off, then restored.
        x, y: images in [0, 1] and labels, on any device; moved to `device` batch by batch.
        specs: attacks, run in order, each on the points still robust.
        batch_size: points per attack batch (the last batch may be smaller).
        device: where to attack; default the model's device.
        generator: seeds the PGD random starts and AutoAttack (one draw, then per-batch seeds).
        on_progress: called as on_progress(done, total, current_robust_acc) during the run, with
            total = len(specs) * n and done counting points settled per attack.
        state_dir: folder for resume files; a rerun with the same data, specs and model continues
            where the last one stopped (finished batches are not attacked again).

    Returns:
        RobustResult (clean_acc, robust_acc, per_attack, n, per-point robust and clean flags).
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError("x: no images to evaluate; pass at least one image")
    if y.shape[0] != n:
        raise ValueError(f"y: {y.shape[0]} labels for {n} images; pass one label per image")
    check_attack_settings(batch_size=batch_size)
    device = torch.device(device) if device is not None else _model_device(model)
    names = spec_names(specs)
    folder = Path(state_dir) if state_dir is not None else None
    path = folder / "robust_accuracy.pt" if folder is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    total = len(specs) * n

    with attack_mode(model):
        key = fingerprint(x, y, specs=[asdict(s) for s in specs], model=_model_checksum(model))
        state = load_state(path, key) if path is not None else None
        if state is None:
            clean = _predict_correct(model, x, y, device, batch_size)
            state = {
                "key": key,
                "base_seed": int(torch.randint(0, 2**62, (1,), generator=generator).item()),
                "clean": clean,
                "robust": clean.clone(),
                "attempted": [torch.zeros(n, dtype=torch.bool) for _ in specs],
                "per_attack": {},
            }

        def checkpoint() -> None:
            if path is not None:
                save_state(path, state)

        checkpoint()
        robust = state["robust"]
        for s, (spec, name) in enumerate(zip(specs, names)):
            if spec.kind == "pgd":
                _run_pgd_spec(
                    model, x, y, spec, state, s,
                    device=device, batch_size=batch_size, checkpoint=checkpoint, on_progress=on_progress,
                )
            else:
                _run_autoattack_spec(
                    model, x, y, spec, state, s, device=device, batch_size=batch_size,
                    state_path=folder / f"{s}-{name}.autoattack.pt" if folder is not None else None,
                    on_progress=on_progress,
                )
            state["attempted"][s][:] = True
            state["per_attack"][name] = robust.float().mean().item()
            checkpoint()
            if on_progress is not None:
                on_progress((s + 1) * n, total, state["per_attack"][name])

    return RobustResult(
        clean_acc=state["clean"].float().mean().item(),
        robust_acc=robust.float().mean().item(),
        per_attack=dict(state["per_attack"]),
        n=n,
        robust=robust.clone(),
        clean=state["clean"].clone(),
    )
