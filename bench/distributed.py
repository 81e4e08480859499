"""Wall time of one small training, in one process or as torchrun ranks (README "Running on several GPUs").

small_cnn on ``--n`` synthetic natural images with the smoke profile's E1 recipe (``sources.train``: Adam,
batch 64 unless ``--batch``), ``--epochs`` epochs, through the one trainer (``advtui.paradigms.trainer.fit``).
Only ``fit`` is timed (imports, data and model building are not): the figure compares the training loops.
Rank 0 prints the seconds, the world size and images/s; with ``--json`` it also writes them.

Run both and compare (``device: auto``: CUDA and nccl when present, else the CPU and gloo)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/distributed.py
    OMP_NUM_THREADS=1 .venv/bin/python -m torch.distributed.run --standalone --nproc_per_node 2 bench/distributed.py
"""

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from advtui.catalog.data import DataParams
from advtui.catalog.params import load_params, profile_path
from advtui.experiments.common import image_size, natural_split
from advtui.models import create_model
from advtui.paradigms.supervised import supervised_step
from advtui.paradigms.trainer import fit
from advtui import distributed
from advtui.runtime import pick_device, seed_everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2048, help="training images")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=None, help="global batch (default: the smoke recipe's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    smoke = load_params(profile_path("smoke"))
    cfg = replace(smoke.sources.train, epochs=args.epochs, warmup_epochs=0,
                  batch_size=args.batch or smoke.sources.train.batch_size)
    data = natural_split(DataParams(train_size=args.n, test_size=10), "train", 0)
    with distributed.init(pick_device(args.device)) as device, tempfile.TemporaryDirectory() as tmp:
        seed_everything(0)
        model = create_model("small_cnn", num_classes=data.num_classes, img_size=image_size(data))
        distributed.barrier()
        started = time.perf_counter()
        fit(model, data, cfg, supervised_step(), checkpoint=Path(tmp) / "bench.ckpt", device=device, seed=0,
            progress=False)
        seconds = time.perf_counter() - started
    if distributed.is_main():
        row = {"world_size": distributed.world_size(), "device": str(device), "threads": torch.get_num_threads(),
               "images": args.n, "epochs": args.epochs, "batch": cfg.batch_size, "fit_s": round(seconds, 2),
               "images_per_s": round(args.n * args.epochs / seconds, 1)}
        print(json.dumps(row))
        if args.json:
            args.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
