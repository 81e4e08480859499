"""E4: train fresh classifiers (one per seed) on training set ``name`` and measure them on natural test data."""

from __future__ import annotations

import shutil
from pathlib import Path

from advtui.catalog.names import SYNTHETIC_ONLY
from advtui.catalog.params import Params
from advtui.catalog.paths import live_dir, metrics_path, retrained_dir, retrained_path, seed_dir
from advtui.catalog.stages import stage_name
from advtui.experiments.retrain import SeedRun, retrain
from advtui.files import write_json
from advtui import distributed
from advtui.pipeline.inputs import constructed_input
from advtui.pipeline.progress import StageProgress
from advtui.pipeline.stagelock import attack_state_dir, checkpoint_file


def _keep_only(folder: Path, names: set[str]) -> None:
    """Create ``folder`` holding nothing but ``names``: a run with fewer seeds than the last (or a set that does
    not apply) leaves no other run's weights or logs in the stage's outs."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name in names:
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def run(params: Params, name: str) -> dict:
    """Retrain on ``name`` (``retrain.<recipe>``) once per seed of ``retrain.seeds``, evaluate under ``attack``,
    write its E4 row. A set defined on synthetic data only writes, on other data, a row saying so and empty outs
    (dvc.yaml names the same outs whatever the data)."""
    stage = stage_name("retrain", name)
    seeds = params.retrain.seed_list(params.seed)
    weights, logs = retrained_dir(name), live_dir("E4", name)
    main = distributed.is_main()  # under torchrun every rank trains, rank 0 alone writes
    if name in SYNTHETIC_ONLY and params.data.source != "synthetic":
        row = {"dataset": name, "not_applicable": SYNTHETIC_ONLY[name]}
        if main:
            _keep_only(weights, set())
            _keep_only(logs, set())
            write_json(metrics_path("E4", name), row)
        return row
    path = constructed_input(name)
    if main:
        _keep_only(weights, {retrained_path(name, k).name for k in range(len(seeds))})
        _keep_only(logs, {seed_dir(logs, k).name for k in range(len(seeds))})
    runs = [SeedRun(seed=seed, out=retrained_path(name, k), checkpoint=checkpoint_file(stage, k),
                    state_dir=attack_state_dir(stage, k), live_dir=seed_dir(logs, k)) for k, seed in enumerate(seeds)]
    progress = StageProgress(stage)
    row = retrain(
        name, dataset_path=path, retrain_params=params.retrain, construct=params.construct, data=params.data,
        model=params.model, attack=params.attack, data_seed=params.seed, runs=runs, device=params.device,
        on_progress=progress.update,
    )
    if not main:
        return row
    write_json(metrics_path("E4", name), row)
    progress.finish(clean_acc=row["clean_acc"])
    return row
