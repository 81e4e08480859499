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

import yaml

from advtui.files import atomic_path
from advtui.experiments.common import DataParams, ModelParams
from advtui.experiments.construct import ConstructParams
from advtui.experiments.evaluation import AttackParams
from advtui.experiments.gallery import GalleryParams
from advtui.experiments.paradigm_runs import E6Params, ParadigmsParams, ProbeParams
from advtui.experiments.retrain import RetrainParams
from advtui.experiments.sources import SourceModels
from advtui.schema import ParamsError, build

PARAMS_FILE = Path("params.yaml")
PROFILES = ("smoke", "cpu", "paper")


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
    construct: ConstructParams = field(default_factory=ConstructParams)
    retrain: RetrainParams = field(default_factory=RetrainParams)
    gallery: GalleryParams = field(default_factory=GalleryParams)
    paradigms: ParadigmsParams = field(default_factory=ParadigmsParams)  # type: ignore[valid-type]
    probe: ProbeParams = field(default_factory=ProbeParams)
    e6: E6Params = field(default_factory=E6Params)

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
