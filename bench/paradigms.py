"""Training throughput of each E5/E6 paradigm at the active profile's settings (images/s, run by hand).

Builds every paradigm of ``params.yaml`` (``paradigms.<P>.config``, and ``robust_cl``, the adversarial CL
source) for 32x32 synthetic images and times its loss step with an Adam update, batch ``--batch``:

    .venv/bin/python bench/paradigms.py                 # smoke settings from params.yaml
    .venv/bin/python bench/paradigms.py --params advtui/pipeline/profiles/paper.yaml --steps 3

Images/s counts source images (CL makes two views of each). The median of ``--steps`` timed steps after one
warm-up step is reported.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig
from advtui.paradigms.base import get_paradigm
from advtui.catalog.params import load_params


def throughput(paradigm: str, cfg: object, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float]:
    """(images/s, million parameters) of ``paradigm``'s training step on batch ``x``, ``y``."""
    p = get_paradigm(paradigm)
    torch.manual_seed(0)
    module = p.build(cfg, num_classes=10, image_size=x.shape[-1]).train()
    optimizer = torch.optim.Adam([q for q in module.parameters() if q.requires_grad], lr=1e-4)
    step = p.step(cfg)

    def one() -> None:
        out = step(module, x, y)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    one()
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        one()
        seconds.append(time.perf_counter() - start)
    return len(x) / statistics.median(seconds), sum(q.numel() for q in module.parameters()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    data = make_synthetic(SyntheticConfig(colour="class"), args.batch, seed=0)
    x, y = data.float_images(), data.labels
    print(f"batch {args.batch} of 32x32, {args.threads} threads, {args.params}")
    for name in ("MIM", "CL", "DM", "SL", "robust_cl"):
        run = getattr(params.paradigms, name)
        paradigm = "CL" if name == "robust_cl" else name
        rate, millions = throughput(paradigm, run.config, x, y, args.steps)
        print(f"{name:10s} {millions:7.2f}M params  {rate:8.1f} images/s")


if __name__ == "__main__":
    main()
