"""Linear probing (Li et al. 2023, section 3.1 and Appendix A.3): a linear head on a frozen encoder.

The head is trained on the set the encoder was pretrained on and tested on the natural test set; encoder
plus head is one classifier (images in [0, 1] -> logits) that every attack of ``advtui.attacks`` accepts.
Training runs through the one trainer loop (``paradigms.trainer.fit``): shuffling, augmentation, the
learning-rate schedule, DVCLive and resumable checkpoints all come from there.

The encoder stays frozen in every sense: its parameters take no gradient, it stays in eval mode while
the head trains (BatchNorm statistics are never updated) and the head's gradient never flows into it.
When the encoder is deterministic and the recipe uses no augmentation, its features are computed once
and the head trains on them (the same result, many times faster); a randomised encoder's features can be
computed once for a fixed number of noise draws (``noise_draws``); otherwise every batch runs through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.data.imageset import ImageSet
from advtui.data.store import load_artifact, rebuild_hint, save_artifact, stage_for, stored_version
from advtui.paradigms.base import Encoder, load_encoder, representations
from advtui.paradigms.supervised import accuracy
from advtui.paradigms.trainer import EpochHook, StepFn, StepOut, fit, model_state
from advtui.catalog.training import TrainConfig

_FEATURE_BATCH = 256


class LinearProbe(nn.Module):
    """A frozen encoder and a linear head: ``forward(x)`` maps images in [0, 1] to class logits.

    ``train()`` trains the head only; the encoder is kept in eval mode and its parameters frozen, so
    neither the trainer nor an attack can change its weights or its BatchNorm statistics. ``randomised``
    is the encoder's: a randomised classifier needs EOT attacks (AutoAttack 'rand').
    """

    def __init__(self, encoder: Encoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder.requires_grad_(False)
        self.head = nn.Linear(encoder.feature_dim, num_classes)
        self.num_classes = num_classes
        self.randomised = bool(encoder.randomised)
        self.arch = f"linear_probe:{type(encoder).__name__}"
        self.train(False)

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))


def can_cache_features(encoder: Encoder, cfg: TrainConfig, noise_draws: int | None = None) -> bool:
    """Whether the head may train on features computed once: no augmentation, and a deterministic encoder or a
    randomised one with a fixed number of ``noise_draws``."""
    return not cfg.augment.active and (not encoder.randomised or noise_draws is not None)


def encode_set(encoder: Encoder, data: ImageSet, device: torch.device | str = "cpu", draws: int = 1) -> ImageSet:
    """``data``'s representations as an ImageSet of (N, D, 1, 1) "images" (the trainer's input form); with
    ``draws`` > 1, that many passes of the (randomised) encoder, one after another: draws * N rows."""
    features = torch.cat([representations(encoder, data, _FEATURE_BATCH, device=device) for _ in range(draws)])
    return ImageSet(
        images=features[:, :, None, None], labels=data.labels.repeat(draws), classes=list(data.classes),
        meta={**data.meta, "features_of": type(encoder).__name__, "draws": draws},
    )


def probe_step(cached: bool) -> StepFn:
    """Cross-entropy of the head; on images it runs the frozen encoder without gradients first.

    With ``cached`` the batch already holds the encoder's features (see :func:`encode_set`).
    """

    def step(module: nn.Module, x: Tensor, y: Tensor) -> StepOut:
        if cached:
            feats = x.flatten(1)
        else:
            with torch.no_grad():
                feats = module.encoder(x)
        logits = module.head(feats)
        loss = F.cross_entropy(logits, y)
        return StepOut(loss, {"acc": (logits.detach().argmax(1) == y).float().mean()})

    return step


def train_probe(
    encoder: Encoder,
    data: ImageSet,
    cfg: TrainConfig,
    *,
    checkpoint: str | os.PathLike,
    live_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    identity: dict[str, Any] | None = None,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
    noise_draws: int | None = None,
) -> tuple[LinearProbe, dict[str, float]]:
    """Train a linear head on ``encoder`` (frozen) with the images and labels of ``data``.

    ``noise_draws``: a randomised encoder's features are computed once for this many draws of its noise (see
    ``ProbeParams``); None runs it on every batch. Returns the probe (eval mode, on ``device``) and the last
    epoch's training metrics plus ``cached`` (1.0 when the head trained on precomputed features). Resumable
    through ``checkpoint`` (see ``fit``).
    """
    device = torch.device(device)
    encoder.to(device)
    probe = LinearProbe(encoder, data.num_classes).to(device)
    cached = can_cache_features(encoder, cfg, noise_draws)
    draws = noise_draws if cached and encoder.randomised else 1
    train_on = encode_set(encoder, data, device, draws) if cached else data
    metrics = fit(
        probe, train_on, cfg, probe_step(cached), checkpoint=checkpoint, live_dir=live_dir, device=device,
        seed=seed, identity={"probe": True, "cached": cached, "draws": draws, **(identity or {})},
        on_epoch=on_epoch, progress=progress,
    )
    probe.eval()
    return probe, {**metrics, "cached": float(cached)}


def probe_accuracy(probe: LinearProbe, test: ImageSet, device: torch.device | str = "cpu") -> float:
    """Clean accuracy of the probe on ``test`` (one draw of a randomised encoder's noise per image)."""
    return accuracy(probe, test, batch_size=_FEATURE_BATCH, device=device)


def save_probe(path: str | os.PathLike, probe: LinearProbe, *, encoder_path: str | os.PathLike, params: dict) -> Path:
    """Store the head, naming the encoder artifact it sits on and that encoder's version (its params digest
    and tensors' checksum)."""
    return save_artifact(
        path, model_state(probe.head), kind="model", arch="linear_probe", paradigm="probe",
        sources=[str(encoder_path)], params={**params, "encoder_version": stored_version(encoder_path)},
        extra={"encoder": str(encoder_path), "num_classes": probe.num_classes, "feature_dim": probe.head.in_features},
    )


def load_probe(path: str | os.PathLike, device: torch.device | str = "cpu") -> LinearProbe:
    """Rebuild a probe stored by :func:`save_probe` on its encoder (eval mode, frozen).

    Refuses (one line) a head whose encoder is missing or is not the one it was trained on (retrained
    since, with other settings or to other weights), besides everything the store and ``load_encoder`` check.
    """
    art = load_artifact(path, "model", arch="linear_probe", device=device)
    encoder_path = Path(art.extra["encoder"])
    if not encoder_path.exists():
        raise FileNotFoundError(f"{encoder_path}: encoder of probe {path} is missing; {rebuild_hint(encoder_path)}")
    if stored_version(encoder_path) != art.params.get("encoder_version"):
        stage = stage_for(path)
        how = f" (`dvc repro {stage}`)" if stage else ""
        raise ValueError(f"{path}: was trained on another version of {encoder_path}; rerun its probe stage{how}")
    _, encoder, _ = load_encoder(encoder_path, device=str(device))
    probe = LinearProbe(encoder, int(art.extra["num_classes"])).to(device)
    probe.head.load_state_dict(art.tensors)
    return probe.eval()
