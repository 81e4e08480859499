"""`advtui demo`: the short train-and-attack demonstration of the default profile."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption, params_from


@guarded
def demo(
    out_dir: Path = typer.Option(Path("data/demo"), help="Where the demo's weights and logs go."),
    params_file: Path = ParamsOption,
) -> None:
    """Train a standard and an L2-adversarially trained classifier, attack both, print the table."""
    from advtui.experiments.common import natural_split
    from advtui.experiments.evaluation import evaluate_classifier
    from advtui.experiments.sources import train_source
    from advtui.runtime import pick_device

    params = params_from(params_file)
    device = pick_device(params.device)
    test = natural_split(params.data, "test", params.seed)
    table = Table(title=f"demo: {params.model.arch} on {params.data.source} ({len(test)} test images)")
    for col in ("model", "clean acc", f"robust L2 {params.attack.l2.eps:g}", f"robust Linf {params.attack.linf.eps * 255:.3g}/255"):
        table.add_column(col)
    console = Console()
    for kind in ("standard", "robust_l2"):
        console.print(f"[bold]training {kind}[/]")
        model, _ = train_source(
            kind, sources=params.sources, data=params.data, model=params.model, seed=params.seed,
            device=params.device, out=out_dir / f"{kind}.safetensors", live_dir=out_dir / "live" / kind,
        )
        m = evaluate_classifier(model, test, params.attack.threats(), batch_size=params.attack.batch_size, device=device, seed=params.seed)
        table.add_row(kind, f"{m['clean_acc']:.3f}", f"{m['robust_acc_l2']:.3f}", f"{m['robust_acc_linf']:.3f}")
    console.print(table)
