"""Sharded construction's speed-up: one construction of the active params, in 1 process or N torchrun ranks.

The source model is a fresh (untrained) network of ``model.arch``: a construction costs the same steps
whatever the weights. Rank 0 prints the construction's wall seconds (from the start line the ranks meet at to
the written dataset) and the dataset's sha256, which must be the same for any number of ranks.

    OMP_NUM_THREADS=1 .venv/bin/python bench/shards.py D_det --out /tmp/shards-1
    OMP_NUM_THREADS=1 .venv/bin/torchrun --standalone --nproc_per_node 2 bench/shards.py D_det --out /tmp/shards-2
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import time
from pathlib import Path

import torch

from advtui.catalog.params import load_params
from advtui.experiments.common import save_classifier
from advtui.experiments.construct import construct_dataset
from advtui.models.registry import create_model
from advtui import distributed, shards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a constructed set, e.g. D_det or D_R")
    parser.add_argument("--out", type=Path, required=True, help="a folder for the model and the dataset")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    params = load_params(args.params)
    rank, size = distributed.rank_and_size()
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(args.out)  # the dataset's header names its source model: a relative path, the same for every --out
    model_file = Path("source.safetensors")
    if rank == 0:
        torch.manual_seed(params.seed)
        save_classifier(create_model(params.model.arch), model_file, paradigm="supervised", params={})
    start_line = Path(f".go-{size}")
    if rank == 0:
        # no chunk of an earlier run may be reused: the run would then time file reads
        shutil.rmtree(Path(f".{args.dataset}.parts"), ignore_errors=True)
        start_line.touch()
    while not start_line.exists():  # every rank starts once the model is written
        time.sleep(0.05)
    started = time.perf_counter()
    with shards.split():
        metrics = construct_dataset(
            args.dataset, cfg=params.construct, data=params.data, seed=params.seed, device="cpu",
            model_path=model_file, out=Path(f"{args.dataset}.safetensors"),
        )
    if metrics is not None:
        seconds = time.perf_counter() - started
        digest = hashlib.sha256(Path(f"{args.dataset}.safetensors").read_bytes()).hexdigest()
        print(f"{args.dataset}: {metrics['n']} images, {size} rank(s) x {torch.get_num_threads()} thread(s), "
              f"{seconds:.1f} s, load {os.getloadavg()[0]:.1f}, sha256 {digest}")
        start_line.unlink()


if __name__ == "__main__":
    main()
