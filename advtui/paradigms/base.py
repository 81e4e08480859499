"""Learning paradigms behind one interface (Li et al. 2023): train an encoder, map images to representations.

A :class:`Paradigm` knows three things: how to ``build`` its trainable module for a dataset, the loss
``step`` the one trainer loop (``paradigms.trainer.fit``) runs on it, and how to turn the trained module
into an :class:`Encoder` (images in [0, 1] -> one representation vector per image). Linear probing,
attacks and metrics only ever see the encoder, so a new paradigm is one module that registers itself::

    @register_paradigm
    class MyParadigm(Paradigm):
        name = "XY"
        config_type = MyConfig
        ...

Paradigms register under the short names of the paper's tables: SL, CL, MIM, DM.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from advtui.catalog.training import PARADIGM_CONFIGS
from advtui.data.imageset import ImageSet
from advtui.data.store import load_artifact, save_artifact
from advtui.paradigms.trainer import StepFn, model_state
from advtui.runtime import seed_everything
from advtui.schema import build


class Encoder(nn.Module):
    """A trained representation map: ``forward(x)`` takes images (N, C, H, W) in [0, 1], returns (N, feature_dim).

    ``randomised`` is True when every call draws fresh randomness (DDPM's noise at the feature step): an
    attack on it must average gradients over draws (EOT, AutoAttack's ``rand`` version), and its accuracy
    is an expectation. Randomness comes from torch's global RNG.
    """

    feature_dim: int
    randomised: bool = False


class FeatureEncoder(Encoder):
    """The ``features`` method of a module (a classifier's penultimate layer, a SimCLR backbone) as an encoder."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.feature_dim = int(model.feature_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.model.features(x)


class Paradigm(ABC):
    """One learning paradigm: its config type, trainable module, loss step and encoder."""

    name: ClassVar[str]
    """Registry key, as in the paper's tables (SL, CL, MIM, DM)."""
    config_type: ClassVar[type]
    """Frozen dataclass of the paradigm's own settings (built from params.yaml by ``pipeline.schema.build``)."""

    @abstractmethod
    def build(self, cfg: Any, *, num_classes: int, image_size: int) -> nn.Module:
        """A freshly initialised trainable module for images of side ``image_size`` (``num_classes``: SL's head)."""

    @abstractmethod
    def step(self, cfg: Any) -> StepFn:
        """The loss step ``step(module, x, y)`` for ``trainer.fit`` (self-supervised paradigms ignore ``y``)."""

    @abstractmethod
    def encoder(self, module: nn.Module, cfg: Any) -> Encoder:
        """The representation map of a trained ``module`` (shares its weights; frozen by the caller)."""


_PARADIGMS: dict[str, Paradigm] = {}


def register_paradigm(cls: type[Paradigm]) -> type[Paradigm]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    if cls.name in _PARADIGMS:
        raise ValueError(f"paradigm: {cls.name!r} is already registered; pick another name")
    # params.yaml is validated without torch against the catalogue, so the paradigm's config must be there
    if PARADIGM_CONFIGS.get(cls.name) is not cls.config_type:
        raise TypeError(f"paradigm {cls.name!r}: add it to advtui.catalog.training.PARADIGM_CONFIGS with its config type")
    _PARADIGMS[cls.name] = cls()
    return cls


def list_paradigms() -> list[str]:
    """Names of the registered paradigms, in registration order."""
    _load_builtins()
    return list(_PARADIGMS)


def get_paradigm(name: str) -> Paradigm:
    """The paradigm registered as ``name`` (ValueError naming the choices otherwise)."""
    _load_builtins()
    if name not in _PARADIGMS:
        raise ValueError(f"paradigm: unknown paradigm {name!r}; use one of {', '.join(_PARADIGMS)}")
    return _PARADIGMS[name]


def _load_builtins() -> None:
    # The built-in paradigms register on import; importing them here keeps `get_paradigm` self-contained
    # without a cycle at module import time. Static imports, so that the stages' code deps see them.
    from advtui.paradigms import sl, simclr, mae, ddpm  # noqa: F401  (registration order)


def save_encoder(
    path: str | os.PathLike,
    paradigm: str,
    module: nn.Module,
    cfg: Any,
    *,
    num_classes: int,
    image_size: int,
    sources: list[str] | None = None,
    params: dict[str, Any] | None = None,
) -> Path:
    """Store a trained paradigm module (all of it: heads and decoders too) with what rebuilds it."""
    return save_artifact(
        path, model_state(module), kind="model", arch=f"paradigm:{paradigm}", paradigm=paradigm,
        sources=sources, params=params,
        extra={"paradigm_config": asdict(cfg), "num_classes": num_classes, "image_size": image_size},
    )


def load_encoder(
    path: str | os.PathLike, device: str = "cpu", *, initial_seed: int | None = None
) -> tuple[nn.Module, Encoder, Any]:
    """Rebuild a module stored by :func:`save_encoder`; returns (module, its frozen eval-mode encoder, cfg).

    With ``initial_seed``, the stored weights are left out: the module is built as pretraining built it after
    seeding with ``initial_seed`` (the run's seed), i.e. at the exact weights its training started from, the
    untrained-encoder floor that usefulness is read against.
    """
    art = load_artifact(path, "model", device=device)
    if not art.arch.startswith("paradigm:"):
        raise ValueError(f"{path}: is a plain classifier, not a paradigm encoder; pass an encoder artifact")
    paradigm = get_paradigm(art.paradigm)
    cfg = build(paradigm.config_type, art.extra["paradigm_config"], "paradigm_config")
    if initial_seed is not None:
        seed_everything(initial_seed)
    module = paradigm.build(cfg, num_classes=int(art.extra["num_classes"]), image_size=int(art.extra["image_size"]))
    try:
        if initial_seed is None:
            module.load_state_dict(art.tensors)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not match its {art.paradigm} config ({err}); retrain it") from err
    module.to(device).eval().requires_grad_(False)
    enc = paradigm.encoder(module, cfg)
    enc.eval()
    return module, enc, cfg


def representations(
    encoder: Encoder, images: Tensor | ImageSet, batch_size: int = 256, device: torch.device | str | None = None
) -> Tensor:
    """``encoder`` applied to ``images`` in batches without gradients: (N, feature_dim) float32 on the CPU.

    ``images`` is a tensor of images in [0, 1] or an ImageSet, whose images become float one batch at a
    time (a uint8 set never exists as float in full). Each batch moves to ``device`` first (None: it stays
    where it is). The encoder's mode is the caller's: put it in eval mode to use its BatchNorm statistics.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}; use a positive batch size")
    batches = (x for x, _ in images.loader(batch_size)) if isinstance(images, ImageSet) else images.split(batch_size)
    with torch.no_grad():
        features = [encoder(x if device is None else x.to(device)).float().cpu() for x in batches]
    # no images, no representations: an empty (0, D) result lets the caller's own check name the problem
    return torch.cat(features) if features else torch.zeros(0, encoder.feature_dim)
