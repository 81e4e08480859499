"""`advtui invert`: representation inversion through a stored classifier (the E2 construction, by hand)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.attacks import STARTS
from advtui.catalog.params import load_params


@guarded
def invert(
    model_path: Path = typer.Argument(..., help="Classifier weights whose representation (penultimate layer) to invert."),
    n: int = typer.Option(8, help="Number of training images to invert."),
    start: str = typer.Option(
        "other", help="'image': a random other image (any class); 'other': one of another class; 'noise': uniform noise."
    ),
    steps: int = typer.Option(200, help="L2-normalised gradient steps (Li et al.: 1000)."),
    step_size: float = typer.Option(0.1, help="Step length in pixel L2 units (Li: 1.0 robust, 0.1 non-robust)."),
    eps: float = typer.Option(None, help="Stay within this L2 distance of the start (D_NR: 0.5); default unbounded."),
    out: Path = typer.Option(None, "--out", "-o", help="Also store the result as a dataset artifact (.safetensors)."),
    params_file: Path = ParamsOption,
) -> None:
    """Invert the representation of N training images, starting from other images or noise, and show them.

    Each result keeps the source image's label: through a robust model it shows the source's robust
    features (D_R); through a standard model within a small ball, its non-robust features (D_NR).
    """
    import torch

    from advtui.attacks.inversion import invert as invert_images
    from advtui.attacks.inversion import noise_starts, pick_starts
    from advtui.data.store import save_artifact
    from advtui.experiments.common import load_classifier, natural_split
    from advtui.report.gallery import image_row
    from advtui.runtime import pick_device

    if start not in STARTS:
        raise ValueError(f"--start: unknown start {start!r}; use one of {', '.join(STARTS)}")
    params = load_params(params_file)
    device = pick_device(params.device)
    model = load_classifier(model_path, device)
    data = natural_split(params.data, "train", params.seed)
    gen = torch.Generator().manual_seed(params.seed)
    src = torch.arange(min(n, len(data)))
    x_src, labels = data.float_images(src).to(device), data.labels[src]
    start_idx = pick_starts(start, data.labels, gen)[src]
    if start == "noise":
        x_start = noise_starts(len(src), x_src.shape[1:], gen, device)
    else:
        x_start = data.float_images(start_idx).to(device)
    with torch.no_grad():
        target = model.features(x_src)
    x_inv = invert_images(model.features, x_start, target, steps=steps, step_size=step_size, eps=eps)
    with torch.no_grad():
        pred = model(x_inv).argmax(1).cpu()
        dist = (model.features(x_inv) - target).norm(dim=1) / target.norm(dim=1).clamp_min(1e-12)
    console = Console()
    names = data.classes
    console.print(image_row([x.numpy() for x in x_src.cpu()], [f"src {names[y]}" for y in labels]))
    console.print(image_row([x.numpy() for x in x_start.cpu()], ["start"] * len(src)))
    console.print(image_row([x.numpy() for x in x_inv.cpu()], [f"pred {names[p]}" for p in pred]))
    console.print(f"relative representation error: mean {dist.mean():.3f}, max {dist.max():.3f}; "
                  f"model agrees with source label on {(pred == labels).float().mean():.2f}")
    if out is not None:
        save_artifact(
            out, {"images": x_inv.cpu(), "labels": labels, "starts": start_idx, "sources": src},
            kind="dataset", arch="inverted", sources=[str(model_path)],
            params={"steps": steps, "step_size": step_size, "eps": eps, "start": start, "seed": params.seed},
        )
        console.print(f"[green]saved[/] {out}")
