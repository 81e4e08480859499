"""One rank of the sharded runs of tests/test_shards.py: ``python shard_worker.py MODEL OUT`` with RANK,
WORLD_SIZE, MASTER_ADDR and MASTER_PORT set as torchrun sets them.

Inside :func:`advtui.shards.split` it builds constructed set D_det into OUT/D_det.safetensors (rank 0 writes it) and evaluates robust accuracy,
writing this rank's per-point flags and accuracies to OUT/robust-<rank>.pt. The test runs the same calls
(:func:`construct`, :func:`evaluate`) in one process and compares.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from advtui.attacks.driver import RobustResult
from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.catalog.data import DataParams
from advtui.catalog.params import ConstructParams, InversionConfig, RelabelConfig
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.construct import construct_dataset
from advtui import shards

DATA = DataParams(train_size=40, test_size=30)
# 10 images in chunks of 3: four chunks, the last short, so the two ranks build two each
CFG = ConstructParams(size=10, chunk=3, relabel=RelabelConfig(steps=3, step_size=0.1, eps=0.5),
                      robust=InversionConfig(steps=2), nonrobust=InversionConfig(steps=2))
# two attacks, the second on the points the first left standing; batches of 4 over 30 points
# (radii small enough that an untrained network keeps some points: each attack breaks some, not all)
SPECS = [AttackSpec(kind="pgd", norm="linf", eps=0.001, step_size=0.0005, steps=3),
         AttackSpec(kind="pgd", norm="l2", eps=0.1, step_size=0.05, steps=3)]


def construct(model: Path, out: Path) -> dict | None:
    """Constructed set D_det of ``model`` into ``out`` (the metrics on rank 0, None on the others)."""
    return construct_dataset("D_det", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=model, out=out)


def evaluate(model: Path, state_dir: Path | None = None) -> RobustResult:
    """Robust accuracy of ``model`` under SPECS on the test set, labelled by the model's own clean
    predictions (every point starts correct, so the attacks have points to break)."""
    classifier = load_classifier(model)
    x = natural_split(DATA, "test", 0).float_images()
    with torch.no_grad():
        y = classifier(x).argmax(1)
    return robust_accuracy(classifier, x, y, SPECS, batch_size=4, generator=torch.Generator().manual_seed(0),
                           state_dir=state_dir)


if __name__ == "__main__":
    model_file, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    with shards.split():
        construct(model_file, out_dir / "D_det.safetensors")
        result = evaluate(model_file, out_dir / "state")
    rank = int(os.environ["RANK"])
    torch.save({"robust": result.robust, "clean": result.clean, "per_attack": result.per_attack,
                "per_part": result.per_part}, out_dir / f"robust-{rank}.pt")
