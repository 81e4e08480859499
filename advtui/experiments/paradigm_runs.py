"""E5 and E6 (Li et al. 2023, Tables 1 and 2): pretrain each paradigm on each training set, probe, attack.

One run of the matrix is three steps, each a pipeline stage:

1. :func:`pretrain`: train paradigm T's module on training set g (natural images, or a constructed set)
   through the one trainer loop and store it with ``save_encoder``;
2. :func:`probe`: a linear head on the frozen encoder, trained on the same g, tested on the natural test
   set: the usefulness U(g, D, T) of Eq. 7;
3. :func:`attack`: PGD and AutoAttack on encoder + head: the robustness R(g, D, T) of Eq. 8, under the
   budgets of Li's Table 2 (L2 0.5, Linf 4/255). AutoAttack's version follows the encoder: 'rand' (EOT)
   for randomised encoders and for the paradigms ``e6.rand_paradigms`` names, 'standard' otherwise (Li A.4).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from advtui.data.imageset import ImageSet
from advtui.experiments.common import image_size
from advtui.experiments.evaluation import evaluate_classifier
from advtui.experiments.linear_probe import load_probe, probe_accuracy, save_probe, train_probe
from advtui.catalog.attacks import SpeedConfig
from advtui.paradigms.base import get_paradigm, load_encoder, save_encoder
from advtui.paradigms.trainer import fit, input_precision
from advtui import distributed
from advtui.progress import ProgressFn, epoch_progress
from advtui.runtime import pick_device, seed_everything
from advtui.catalog.params import ProbeParams
from advtui.catalog.params import E6Params

def pretrain(
    paradigm: str,
    run: Any,
    train: ImageSet,
    *,
    out: Path,
    checkpoint: Path,
    live_dir: Path | None,
    device: str,
    seed: int,
    sources: list[str],
    progress: bool = True,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Pretrain ``paradigm`` with ``run`` (its ``config`` and ``train`` settings) on ``train``; store it at ``out``.

    Resumes from ``checkpoint`` after an interruption (the caller removes it once its last output is
    written). ``on_progress`` gets the epochs (phase "pretrain"). Returns the last epoch's training metrics (``train_loss``...) and
    ``n_train``: no timings, so that the metrics file is the same on every rerun (the epochs'
    ``images_per_s`` are in the DVCLive logs).
    """
    impl = get_paradigm(paradigm)
    dev = pick_device(device)
    seed_everything(seed)
    size = image_size(train)
    module = impl.build(run.config, num_classes=train.num_classes, image_size=size)
    on_epoch = epoch_progress(on_progress, "pretrain", run.train.epochs) if on_progress is not None else None
    # SL's and CL's configs say whether their step attacks its inputs; MIM's and DM's never do
    adversarial = getattr(run.config, "adversarial", None)
    attacks_inputs = adversarial is not None and adversarial.enabled
    recipe = input_precision(run.train, train, attacks_inputs=attacks_inputs, device=dev)  # recorded as it runs
    metrics = fit(
        module, train, recipe, impl.step(run.config), checkpoint=checkpoint, live_dir=live_dir, device=dev,
        seed=seed, identity={"paradigm": paradigm, "config": asdict(run.config)}, on_epoch=on_epoch,
        progress=progress, attacks_inputs=attacks_inputs,
    )
    used = {"seed": seed, "paradigm": paradigm, "config": asdict(run.config), "train": asdict(recipe),
            "n_train": len(train)}
    if distributed.is_main():  # under torchrun the ranks trained together; rank 0 writes
        save_encoder(out, paradigm, module, run.config, num_classes=train.num_classes, image_size=size,
                     sources=sources, params=used)
    return {"paradigm": paradigm, "n_train": len(train), **metrics}


def probe(
    encoder_path: Path,
    train: ImageSet,
    test: ImageSet,
    cfg: ProbeParams,
    *,
    out: Path,
    checkpoint: Path,
    live_dir: Path | None,
    device: str,
    seed: int,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
    untrained_floor: bool = False,
) -> dict[str, Any]:
    """Train a linear probe on the stored encoder with ``train``; its clean accuracy on ``test`` is U (Eq. 7).

    With ``untrained_floor``, a second probe is trained the same way on the encoder at the weights its
    pretraining started from (``untrained_clean_acc``): on the synthetic data a random encoder already
    probes well, so U says little without this floor beside it. Its checkpoint is ``untrained.ckpt`` beside
    ``checkpoint``.

    Resumes from ``checkpoint`` (made on the same encoder and data, see ``fit``), which the caller removes
    once its last output is written. ``on_progress`` gets the epochs (phase "probe"). Returns the E5 row:
    ``clean_acc`` (U), ``train_acc``, ``randomised``, ``cached_features``, sizes.
    """
    dev = pick_device(device)
    seed_everything(seed)
    _, encoder, _ = load_encoder(encoder_path, device=str(dev))
    on_epoch = epoch_progress(on_progress, "probe", cfg.train.epochs) if on_progress is not None else None
    recipe = input_precision(cfg.train, train, device=dev)  # recorded as it runs: a constructed set trains in fp32
    head, fit_metrics = train_probe(
        encoder, train, recipe, checkpoint=checkpoint, live_dir=live_dir, device=dev, seed=seed,
        identity={"encoder": str(encoder_path)}, on_epoch=on_epoch, progress=progress, noise_draws=cfg.noise_draws,
    )
    clean = probe_accuracy(head, test, device=dev)
    row = {
        "clean_acc": clean, "train_acc": fit_metrics.get("train_acc"), "randomised": head.randomised,
        "cached_features": bool(fit_metrics["cached"]), "n_train": len(train), "n_test": len(test),
        "noise_draws": cfg.noise_draws if head.randomised and fit_metrics["cached"] else None,
        "probe": asdict(recipe),
    }
    if untrained_floor:
        # seeded and built as above, so the floor's head starts from the trained probe's initial weights too
        _, initial, _ = load_encoder(encoder_path, device=str(dev), initial_seed=seed)
        floor_head, _ = train_probe(
            initial, train, recipe, checkpoint=Path(checkpoint).with_name("untrained.ckpt"), live_dir=None,
            device=dev, seed=seed, identity={"encoder": str(encoder_path), "untrained": True}, progress=progress,
            noise_draws=cfg.noise_draws,
        )
        row["untrained_clean_acc"] = probe_accuracy(floor_head, test, device=dev)
    save_probe(out, head, encoder_path=encoder_path, params={"seed": seed, "train": asdict(recipe)})
    return row


def attack(
    paradigm: str,
    probe_path: Path,
    test: ImageSet,
    e6: E6Params,
    *,
    device: str,
    seed: int,
    on_progress: ProgressFn | None = None,
    state_dir: Path | None = None,
    speed: SpeedConfig | None = None,
) -> dict[str, Any]:
    """Robust accuracy R (Eq. 8) of a stored probe under E6's threats; AutoAttack 'rand' if its encoder is
    random or ``e6.rand_paradigms`` names ``paradigm``.

    Progress goes to ``on_progress`` as phase ``attack <threat>``; with ``state_dir`` a rerun after a kill
    resumes the attacks, and ``speed`` says how they run the model (see ``evaluate_classifier``). Returns
    ``evaluate_classifier``'s row (``clean_acc``, ``robust_acc_<threat>`` for threats ``pgd_linf``, ``autoattack_linf`` and, for SL,
    ``pgd_l2``, ``autoattack_l2``) plus ``randomised`` and ``autoattack_version``.
    """
    dev = pick_device(device)
    seed_everything(seed)
    model = load_probe(probe_path, device=dev)
    version = e6.version(paradigm, model.randomised)
    size = e6.attacked_size(eot=version == "rand")
    attacked = test.select(min(size, len(test)), seed) if size is not None else test
    row = evaluate_classifier(
        model, attacked, e6.threats(paradigm, model.randomised), batch_size=e6.batch_size, device=dev, seed=seed,
        on_progress=on_progress, state_dir=state_dir, speed=speed,
    )
    row.update(randomised=model.randomised, autoattack_version=version)
    return row
