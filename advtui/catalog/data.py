"""Which images and which architecture: the ``data`` and ``model`` params, and the synthetic generator's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The synthetic generator's library of class shapes (``advtui.data.synthetic.SHAPES`` draws them, in this order).
SHAPE_NAMES = ("disk", "ring", "square", "triangle", "plus", "cross", "hbars", "vbars", "frame", "tee", "crescent",
               "checker")


@dataclass(frozen=True)
class SyntheticConfig:
    """Every tunable of the synthetic dataset (DESIGN section 7); the defaults are the measured prototype's.

    Lengths are in pixels except ``shape_radius`` (a fraction of ``image_size``). ``pattern_seed`` draws the
    class shapes (a choice from ``SHAPES``) and the class patterns; the image seed is an argument of
    ``make_synthetic``.
    """

    num_classes: int = 10
    image_size: int = 32
    robust_amplitude: float = 0.25
    background_low: float = 0.35
    background_high: float = 0.65
    background_grid: int = 3
    shape_radius: float = 0.3
    jitter: float = 3.0
    scale_jitter: float = 0.1
    nonrobust_norm: float = 0.5
    tile: int = 16
    wrong_shape_frac: float = 0.1
    variant: Literal["default", "entangled"] = "default"
    colour: Literal["random", "class"] = "random"
    colour_jitter: float = 0.3
    pattern_seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("num_classes", 2 <= self.num_classes <= len(SHAPE_NAMES), f"must lie in 2..{len(SHAPE_NAMES)} (one library shape per class)"),
            ("image_size", self.image_size >= 16, "must be >= 16 pixels"),
            ("robust_amplitude", 0.0 <= self.robust_amplitude <= 1.0, "must lie in [0, 1]"),
            ("background_low", 0.0 <= self.background_low <= self.background_high, "must lie in [0, background_high]"),
            ("background_high", self.background_high <= 1.0, "must be <= 1"),
            ("background_grid", self.background_grid >= 2, "must be >= 2 control points per side"),
            ("shape_radius", 0.0 < self.shape_radius < 0.5, "must lie in (0, 0.5) of the image size"),
            ("jitter", self.jitter >= 0.0, "must be >= 0 pixels"),
            ("scale_jitter", 0.0 <= self.scale_jitter < 0.5, "must lie in [0, 0.5)"),
            ("nonrobust_norm", self.nonrobust_norm >= 0.0, "must be >= 0"),
            ("tile", self.tile >= 2 and self.image_size % self.tile == 0, f"must be >= 2 and divide image_size {self.image_size}"),
            ("wrong_shape_frac", 0.0 <= self.wrong_shape_frac <= 1.0, "must lie in [0, 1]"),
            ("variant", self.variant in ("default", "entangled"), "must be 'default' or 'entangled'"),
            ("colour", self.colour in ("random", "class"), "must be 'random' or 'class'"),
            ("colour_jitter", self.colour_jitter >= 0.0, "must be >= 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}; change {name} in the synthetic params")
        reach = self.image_size * self.shape_radius * (1.0 + self.scale_jitter) + self.jitter
        if reach > self.image_size / 2 - 1:
            raise ValueError(
                f"shape_radius: shapes reach {reach:.1f} px from the centre of a {self.image_size} px image; "
                "lower shape_radius, jitter or scale_jitter"
            )

    @property
    def radius_px(self) -> float:
        """Shape radius in pixels at scale 1."""
        return self.image_size * self.shape_radius


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
