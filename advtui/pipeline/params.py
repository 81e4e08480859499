"""The typed, validated view of ``params.yaml``, and profile switching.

``params.yaml`` keeps every active value concrete (DVC tracks params by key, so each stage depends on
exactly the keys it reads). A *profile* (``smoke``, ``cpu``, ``paper``) is a complete params file
shipped in ``advtui/pipeline/profiles/``; ``advtui profile use NAME`` copies it over ``params.yaml``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from advtui.attacks.evaluate import AttackSpec
from advtui.data.store import atomic_path
from advtui.data.synthetic import SyntheticConfig
from advtui.paradigms.supervised import AdversarialConfig
from advtui.paradigms.trainer import TrainConfig
from advtui.pipeline.schema import ParamsError, build, to_dict

PARAMS_FILE = Path("params.yaml")
PROFILES = ("smoke", "cpu", "paper")


@dataclass(frozen=True)
class DataParams:
    """Which images the experiments run on."""

    source: Literal["synthetic", "cifar10", "imagefolder"] = "synthetic"
    root: str | None = None
    download: bool = True
    train_size: int | None = 8000
    test_size: int | None = 1000
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        for name in ("train_size", "test_size"):
            size = getattr(self, name)
            if size is not None and size <= 0:
                raise ValueError(f"{name}: must be a positive count or null (all images), got {size}")
        if self.source == "imagefolder" and not self.root:
            raise ValueError("root: source 'imagefolder' needs root: the folder holding train/ and test/")


@dataclass(frozen=True)
class ModelParams:
    """The architecture of every classifier the pipeline trains."""

    arch: str = "small_cnn"


@dataclass(frozen=True)
class SourceModel:
    """One E1 source model: its adversarial training (eps 0 = standard) and its Gaussian input noise.

    ``noise_std`` overrides ``sources.train.augment.noise_std``: DESIGN section 7 measured that a little
    noise (0.03) while training the *standard* model is what makes D_det generalise.
    """

    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_std < 0:
            raise ValueError(f"noise_std: must be >= 0, got {self.noise_std}; use 0 for no noise")


SOURCE_MODELS = ("standard", "robust_l2", "robust_linf")


@dataclass(frozen=True)
class SourceModels:
    """E1: the standard and the adversarially trained source models, all with the ``train`` recipe."""

    train: TrainConfig = field(default_factory=TrainConfig)
    standard: SourceModel = field(default_factory=lambda: SourceModel(noise_std=0.03))
    robust_l2: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="l2", eps=1.0, steps=7, step_size=0.25))
    )
    robust_linf: SourceModel = field(
        default_factory=lambda: SourceModel(AdversarialConfig(norm="linf", eps=8 / 255, steps=7, step_size=2 / 255))
    )

    def model(self, name: str) -> SourceModel:
        """The source model called ``name`` (one of ``SOURCE_MODELS``)."""
        if name not in SOURCE_MODELS:
            raise ValueError(f"source model: unknown name {name!r}; use one of {', '.join(SOURCE_MODELS)}")
        return getattr(self, name)


@dataclass(frozen=True)
class AttackParams:
    """Default attacks of ``advtui attack`` and of the E4 evaluation."""

    l2: AttackSpec = field(default_factory=lambda: AttackSpec(kind="pgd", norm="l2", eps=0.25, steps=20, step_size=0.05))
    linf: AttackSpec = field(
        default_factory=lambda: AttackSpec(kind="pgd", norm="linf", eps=4 / 255, steps=20, step_size=1 / 255)
    )
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ValueError(f"batch_size: must be positive, got {self.batch_size}")


@dataclass(frozen=True)
class Params:
    """Everything in ``params.yaml``."""

    profile: str = "smoke"
    seed: int = 0
    device: str = "auto"
    data: DataParams = field(default_factory=DataParams)
    model: ModelParams = field(default_factory=ModelParams)
    sources: SourceModels = field(default_factory=SourceModels)
    attack: AttackParams = field(default_factory=AttackParams)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile: unknown profile {self.profile!r}; use one of {', '.join(PROFILES)}")


def parse_params(data: dict) -> Params:
    """Validate a params mapping (as read from YAML) into :class:`Params`."""
    return build(Params, data)


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Load and validate ``params.yaml``; every problem is one :class:`ParamsError` line."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: not found; run `advtui profile use smoke` to create it")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ParamsError(f"{path}: not valid YAML{where}; fix the syntax or restore it with `advtui profile use smoke`") from None
    try:
        return parse_params(data)
    except ParamsError as err:
        raise ParamsError(f"{path}: {err}") from None


def profile_path(name: str) -> Path:
    """The shipped params file of profile ``name``."""
    if name not in PROFILES:
        raise ParamsError(f"profile: unknown profile {name!r}; use one of {', '.join(PROFILES)}")
    return Path(str(resources.files("advtui.pipeline") / "profiles" / f"{name}.yaml"))


def use_profile(name: str, path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Write profile ``name`` over ``params.yaml`` (atomically) and return its validated params."""
    source = profile_path(name)
    params = load_params(source)
    target = Path(path)
    tmp = atomic_path(target)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return params


def params_dict(params: Params) -> dict:
    """Plain-data form of params (for artifact headers and digests)."""
    return to_dict(params)
