"""E4: train fresh classifiers on each constructed set (and on natural data) and measure them on natural data.

The question of Ilyas et al.: do the features a constructed set keeps *generalise* to the natural
test set (clean accuracy), and are they robust (PGD accuracy of the model trained on them)? One trained
model is one draw: each set trains one classifier per seed on the same images and reports their mean and
95% interval (:mod:`advtui.stats`), so that a difference between rows, or from a paper, can be read
against the spread of the training itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from advtui.catalog.data import DataParams, ModelParams
from advtui.catalog.names import NATURAL_NOPATTERN, TRAINING_SETS
from advtui.catalog.params import AttackParams, ConstructParams, RetrainParams
from advtui.data.ground_truth import probe_agreement
from advtui.experiments.common import image_size, monitor_split, natural_split, save_classifier
from advtui.experiments.construct import training_set
from advtui.experiments.evaluation import evaluate_classifier
from advtui.models.registry import create_model
from advtui.paradigms.supervised import train_classifier
from advtui.paradigms.trainer import input_precision
from advtui import distributed
from advtui.progress import ProgressFn
from advtui.runtime import pick_device, seed_everything
from advtui.stats import summarise_runs


@dataclass(frozen=True)
class SeedRun:
    """One of a set's classifiers: its seed, where its weights go, and what it keeps to resume (its own training
    checkpoint and attack state, so a rerun after a kill resumes each seed where it stopped)."""

    seed: int
    out: Path
    checkpoint: Path
    state_dir: Path | None = None
    live_dir: Path | None = None


def _seed_progress(on_progress: ProgressFn | None, index: int, runs: int) -> ProgressFn | None:
    """``on_progress`` with each phase prefixed by the seed it belongs to, when a set trains several."""
    if on_progress is None or runs == 1:
        return on_progress

    def report(phase: str, done: int, total: int, **info) -> None:
        on_progress(f"seed {index + 1}/{runs} {phase}", done, total, **info)

    return report


def retrain(
    dataset: str,
    *,
    dataset_path: Path | None,
    retrain_params: RetrainParams,
    construct: ConstructParams,
    data: DataParams,
    model: ModelParams,
    attack: AttackParams,
    data_seed: int,
    runs: Sequence[SeedRun],
    device: str,
    on_progress: ProgressFn | None = None,
    progress: bool = True,
) -> dict:
    """Train one classifier per seed of ``runs`` on ``dataset`` (a constructed artifact, the natural subset the
    constructions start from, or that subset without its planted pattern) and return the set's E4 row.

    The images (training set, natural test set) come from ``data_seed``, the same for every run; a run's seed
    draws its initial weights, batch order and attack starts. The row holds each run's clean accuracy and robust
    accuracy per threat model as their mean over the runs, with ``seeds``, ``per_seed`` and ``ci95`` (see
    :func:`advtui.stats.summarise_runs`), the attack settings, and on synthetic data the ground-truth probe
    agreement of the natural (or pattern-free) training images. Progress goes to ``on_progress``: each
    run's training epochs (phase "train"), then its attacks ("attack <threat>"), prefixed with the seed.
    Under torchrun every rank trains each run; rank 0 alone evaluates and stores it, the others return {}.

    Each run resumes its training from its ``checkpoint`` and its attacks from its ``state_dir``; the caller
    removes them once its last output is written, so a kill in any run keeps the runs before it. A
    constructed set must be the one these params make (see ``construct.load_constructed``).
    """
    if dataset not in TRAINING_SETS:
        raise ValueError(f"dataset: unknown training set {dataset!r}; use one of {', '.join(TRAINING_SETS)}")
    if not runs:
        raise ValueError("runs: no seed to train; set retrain.seeds >= 1")
    dev = pick_device(device)
    train = training_set(dataset, dataset_path=dataset_path, construct=construct, data=data, seed=data_seed)
    test = natural_split(data, "test", data_seed)
    recipe = input_precision(retrain_params.recipe(dataset), train, device=dev)  # what runs: constructed sets in fp32
    monitor = monitor_split(test, data_seed)  # every seed's live curve reads the same images
    rows, stopping = [], []
    for index, run in enumerate(runs):
        report = _seed_progress(on_progress, index, len(runs))
        seed_everything(run.seed)  # the initial weights: each seed its own
        net = create_model(model.arch, num_classes=test.num_classes, img_size=image_size(test))
        fit_metrics = train_classifier(
            net, train, recipe, None, checkpoint=run.checkpoint, live_dir=run.live_dir, device=dev,
            seed=run.seed, eval_data=monitor, progress=progress, on_progress=report,
        )
        if not distributed.is_main():  # a torchrun rank trains with rank 0, which evaluates and writes
            continue
        row = evaluate_classifier(
            net, test, attack.threats(), batch_size=attack.batch_size, device=dev, seed=run.seed,
            on_progress=report, state_dir=run.state_dir, speed=attack.speed,
        )
        row["train_acc"] = fit_metrics.get("train_acc")
        if recipe.early_stop.enabled:
            stopping.append({
                "best_epoch": int(fit_metrics["best_epoch"]), "epochs_trained": int(fit_metrics["epochs_trained"]),
                "n_val": int(fit_metrics["n_val"]),
                f"val_{recipe.early_stop.metric}": fit_metrics[f"val_{recipe.early_stop.metric}"],
                # the model is the best epoch's on a held-out part of the training set, which carries the set's
                # own labels: a constructed set's assigned (target) labels, never the natural ones
                "validation_labels": "natural" if dataset in ("natural", NATURAL_NOPATTERN) else "assigned",
            })
        save_classifier(
            net, run.out, paradigm="supervised", sources=[str(dataset_path)] if dataset_path else [],
            params={"seed": run.seed, "data_seed": data_seed, "train": asdict(recipe), "model": asdict(model),
                    "dataset": dataset},
            extra={"trained_on": dataset},
        )
        rows.append(row)
    if not distributed.is_main():
        return {}
    summary = summarise_runs(rows, [run.seed for run in runs])
    summary.update(dataset=dataset, n_train=len(train), recipe=asdict(recipe))
    if stopping:
        summary["early_stopping"] = stopping  # one entry per seed, in `seeds` order
    if dataset in ("natural", NATURAL_NOPATTERN) and data.source == "synthetic":
        # what the images carry, the same for every seed: the control's pattern agreement sits at chance
        summary.update(probe_agreement(train.float_images(), train.labels, data.synthetic))
    return summary
