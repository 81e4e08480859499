"""A stage's upstream artifacts: the path when it exists, else one line naming the stage that makes it."""

from __future__ import annotations

from pathlib import Path

from advtui.catalog.names import RECIPES
from advtui.catalog.paths import dataset_path
from advtui.catalog.stages import stage_of


def require(path: Path) -> Path:
    """``path`` if it exists, else a one-line error naming the ``dvc repro`` target that makes it."""
    if not path.exists():
        stage = stage_of(path)
        how = f"run `dvc repro {stage}`" if stage else "build it first"
        raise FileNotFoundError(f"{path}: missing upstream artifact; {how}")
    return path


def constructed_input(dataset: str) -> Path | None:
    """The constructed set a stage trains on (checked to exist), or None for natural images (and the E4 control
    made from them)."""
    return require(dataset_path(dataset)) if dataset in RECIPES else None
