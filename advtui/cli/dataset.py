"""`advtui dataset preview`: look at natural or constructed images in the terminal."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import load_params

app = typer.Typer(help="Look at datasets: the natural data of the params, or a constructed set.", no_args_is_help=True)


@app.command()
@guarded
def preview(
    source: str = typer.Argument("natural", help="'natural' (the params' data) or a constructed dataset .safetensors."),
    split: str = typer.Option("train", help="train or test (natural data only)."),
    n: int = typer.Option(8, help="How many images to show."),
    width: int = typer.Option(16, help="Width of each image in terminal cells (32 = one cell per pixel)."),
    params_file: Path = ParamsOption,
) -> None:
    """Show N images with their labels; on synthetic data also the ground-truth probes' readings."""
    import torch

    from advtui.data.ground_truth import nonrobust_probe, robust_probe
    from advtui.data.loaders import load_source
    from advtui.experiments.common import natural_split
    from advtui.report.gallery import image_row

    params = load_params(params_file)
    if source == "natural":
        data = natural_split(params.data, split, params.seed)
    else:
        data = load_source("constructed", split, root=source)
    idx = torch.arange(min(n, len(data)))
    x, y = data.float_images(idx), data.labels[idx]
    captions = [data.classes[int(label)] for label in y]
    console = Console()
    console.print(f"{source} ({split}): {len(data)} images, {data.num_classes} classes, "
                  f"shape {tuple(data.images.shape[1:])}, dtype {data.images.dtype}")
    console.print(image_row([img.numpy() for img in x], captions, width=width))
    if params.data.source == "synthetic" and x.shape[-1] == params.data.synthetic.image_size:
        cfg = params.data.synthetic
        robust = robust_probe(x, cfg)
        console.print("robust probe (shape):    " + " ".join(f"{data.classes[int(c)]:>8}" for c in robust))
        if "starts" not in data.extras:
            nonrobust = nonrobust_probe(x, cfg)
            console.print("non-robust probe (tile): " + " ".join(f"{data.classes[int(c)]:>8}" for c in nonrobust))
