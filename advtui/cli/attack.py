"""`advtui attack` (robust accuracy of a stored classifier) and `advtui invert` (representation inversion)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import load_params
from advtui.pipeline.progress import StageProgress


@guarded
def attack(
    model_path: Path = typer.Argument(
        ..., help="Classifier weights (.safetensors) made by `advtui train` or a source/retrain stage."
    ),
    norm: str = typer.Option(None, help="l2 or linf; default: both threat models of params (attack.l2, attack.linf)."),
    eps: float = typer.Option(None, help="Radius in pixel units of the norm (e.g. 0.5 for L2, 0.0313725 = 8/255 for Linf)."),
    steps: int = typer.Option(None, help="PGD steps (default from params)."),
    step_size: float = typer.Option(None, help="PGD step size (default from params)."),
    restarts: int = typer.Option(None, help="PGD random restarts (default from params)."),
    autoattack: str = typer.Option(None, help="Also run AutoAttack: 'standard' or 'rand' (randomised models)."),
    n: int = typer.Option(None, help="Attack only the first N test images of the params' test set."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    params_file: Path = ParamsOption,
) -> None:
    """Clean and robust accuracy of a stored classifier on the natural test set (PGD, optionally AutoAttack).

    Robust accuracy is the per-point worst case over the attacks run for one threat model.
    """
    import dataclasses

    import torch

    from advtui.catalog.attacks import AttackSpec
    from advtui.experiments.common import load_classifier, natural_split
    from advtui.experiments.evaluation import evaluate_classifier
    from advtui.runtime import pick_device

    params = load_params(params_file)
    defaults = {"l2": params.attack.l2, "linf": params.attack.linf}
    if norm is not None and norm not in defaults:
        raise ValueError(f"--norm: unknown norm {norm!r}; use l2 or linf")
    overrides = {k: v for k, v in {"eps": eps, "steps": steps, "step_size": step_size, "restarts": restarts}.items()
                 if v is not None}
    threats: dict[str, list[AttackSpec]] = {}
    for name, spec in defaults.items():
        if norm in (None, name):
            spec = dataclasses.replace(spec, **overrides)
            threats[name] = [spec]
            if autoattack is not None:
                threats[name].append(AttackSpec(kind="autoattack", norm=spec.norm, eps=spec.eps, version=autoattack))
    device = pick_device(params.device)
    model = load_classifier(model_path, device)
    test = natural_split(params.data, "test", params.seed)
    if n is not None:
        test = test.subset(torch.arange(min(n, len(test))))
    # the status line on a terminal, and no progress file: this command is not a pipeline stage
    on_progress = None if as_json else StageProgress(model_path.name, folder=None).update
    metrics = evaluate_classifier(
        model, test, threats, batch_size=params.attack.batch_size, device=device, seed=params.seed,
        on_progress=on_progress, speed=params.attack.speed,
    )
    if as_json:
        print(json.dumps({"model": str(model_path), **metrics}))
        return
    table = Table(title=f"{model_path} on {metrics['n']} test images")
    for col in ("threat model", "attacks (cumulative robust acc)", "clean acc", "robust acc (worst case)"):
        table.add_column(col)
    for name in threats:
        per_attack = ", ".join(f"{k} {v:.3f}" for k, v in metrics[f"per_attack_{name}"].items())
        table.add_row(name, per_attack, f"{metrics['clean_acc']:.3f}", f"{metrics[f'robust_acc_{name}']:.3f}")
    Console().print(table)
