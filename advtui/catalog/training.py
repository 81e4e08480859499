"""Training settings: the one trainer's optimisation, augmentation, adversarial training, and each paradigm's config."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from advtui.catalog.attacks import SpeedConfig, Toggle

#: A training speed-up's setting: true or false forces it, "auto" lets the device and the model decide.
Auto = bool | Literal["auto"]


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation; the defaults do nothing.

    ``crop_padding``: zero-pad by this many pixels and crop back to the original size at a random offset
    (CIFAR: 4). ``flip``: mirror half the images left-right. ``noise_std``: add N(0, noise_std^2) noise and
    clip to [0, 1] (DESIGN 7: 0.03 while training the standard model made D_det generalise).
    """

    flip: bool = False
    crop_padding: int = 0
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding: must be >= 0, got {self.crop_padding}; use 0 to turn cropping off")
        if self.noise_std < 0:
            raise ValueError(f"noise_std: must be >= 0, got {self.noise_std}; use 0 to turn noise off")

    @property
    def active(self) -> bool:
        """Whether any augmentation is on."""
        return self.flip or self.crop_padding > 0 or self.noise_std > 0


@dataclass(frozen=True)
class EarlyStopConfig:
    """Early stopping on a held-out part of the training set; off (``patience`` 0) by default.

    With ``patience`` > 0 the trainer holds out ``val_fraction`` of the training images (a seeded draw; they
    keep the labels the set carries, so on a constructed set its assigned labels), measures the step's
    ``metric`` on them after every epoch ('acc': higher is better; 'loss': lower is better), stops once
    ``patience`` epochs in a row bring no improvement, and keeps the weights of the best epoch (Springer
    et al. Table 3: zero- and negative-robust models "stopped prior to 100 epochs in order to maximize
    accuracy on a validation set"). The learning-rate schedule still spans all ``epochs``.
    """

    patience: int = 0
    val_fraction: float = 0.1
    metric: Literal["acc", "loss"] = "acc"

    def __post_init__(self) -> None:
        if self.patience < 0:
            raise ValueError(f"patience: must be >= 0, got {self.patience}; use 0 to turn early stopping off")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction: must lie in (0, 1), got {self.val_fraction}; hold out e.g. 0.1 of the images")

    @property
    def enabled(self) -> bool:
        """Whether training stops early (``patience`` > 0)."""
        return self.patience > 0


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every paradigm.

    ``schedule``: "cosine" decays the learning rate to 0 over the run (per step), "constant" keeps it;
    both after ``warmup_epochs`` of linear warm-up. ``precision`` "bf16" runs the step under bfloat16
    autocast (pays on GPUs; 12-20x slower on CPUs), "auto" picks bf16 on CUDA and fp32 elsewhere; the
    trainer refuses bf16 (runs fp32, one line says so) where a perturbation passes through the step:
    training on a constructed set, or adversarially (the rule: ``advtui.attacks.speed``, "Precision").
    ``channels_last`` stores activations NHWC, ``compile`` runs the model through ``torch.compile``; each
    true, false or "auto" (on where it pays: the rule of ``attack.speed``, ``advtui.attacks.speed.resolve``,
    e.g. both on CUDA for a ResNet-18, neither on a CPU for smoke's small nets). ``early_stop``: see
    :class:`EarlyStopConfig`.
    """

    epochs: int = 10
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: Auto = False
    compile: Auto = False
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"epochs: must be >= 1, got {self.epochs}; train for at least one epoch")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}; use a positive batch size")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr: must be > 0, got {self.lr}; use a positive learning rate")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum: must lie in [0, 1), got {self.momentum}; use e.g. 0.9 (SGD) or 0 (none)")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: must be >= 0, got {self.weight_decay}; use 0 to turn it off")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs: must lie in 0..epochs-1 ({self.epochs - 1}), got {self.warmup_epochs}; shorten the warm-up"
            )
        for name in ("channels_last", "compile"):
            if getattr(self, name) not in (True, False, "auto"):
                raise ValueError(f"{name}: must be true, false or auto, got {getattr(self, name)!r}")

    @property
    def speed(self) -> SpeedConfig:
        """``channels_last`` and ``compile`` as the speed-up settings the model runs with (true: on, false: off)."""

        def toggle(value: bool | str) -> Toggle:
            return "auto" if value == "auto" else ("on" if value else "off")

        return SpeedConfig(channels_last=toggle(self.channels_last), compile=toggle(self.compile))


@dataclass(frozen=True)
class AdversarialConfig:
    """PGD adversarial training (Madry et al.): train on the worst case in the ``norm`` ball of radius ``eps``.

    ``eps`` 0 means standard training. ``step_size`` None uses the usual 2.5 * eps / steps.
    """

    norm: Literal["l2", "linf"] = "l2"
    eps: float = 0.0
    steps: int = 7
    step_size: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps: must be >= 0, got {self.eps}; use a non-negative radius (0 = standard training)")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; use at least one PGD step")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size: must be > 0, got {self.step_size}; use a positive step or null for 2.5*eps/steps")

    @property
    def enabled(self) -> bool:
        """Whether this trains adversarially (eps > 0)."""
        return self.eps > 0

    @property
    def effective_step_size(self) -> float:
        """``step_size``, or 2.5 * eps / steps when it is None."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


@dataclass(frozen=True)
class SupervisedConfig:
    """SL as a paradigm: a registered classifier architecture, trained with cross-entropy (or PGD AT)."""

    arch: str = "resnet18"
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)


@dataclass(frozen=True)
class ViewConfig:
    """SimCLR's augmentation strengths; the defaults are SimCLR's CIFAR-10 setting (Chen et al., Appendix B.9).

    ``min_scale``/``max_scale``: the area share of the image a crop covers (resized back to full size);
    ``min_ratio``/``max_ratio``: its aspect ratio range. ``flip_p``: probability of a left-right mirror.
    ``jitter_strength`` s: brightness, contrast and saturation factors drawn from [1 - 0.8 s, 1 + 0.8 s]
    and a hue shift from [-0.2 s, 0.2 s] of a turn (SimCLR's colour distortion; CIFAR s = 0.5, ImageNet
    s = 1), applied with probability ``jitter_p``. ``grayscale_p``: probability of dropping the colour.
    ``blur_p``: probability of a Gaussian blur with sigma in [0.1, 2] and a kernel of a tenth of the image
    side (SimCLR uses it on ImageNet, drops it on CIFAR; Li et al.'s code blurs every CIFAR view).
    """

    min_scale: float = 0.08
    max_scale: float = 1.0
    min_ratio: float = 3 / 4
    max_ratio: float = 4 / 3
    flip_p: float = 0.5
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.0

    def __post_init__(self) -> None:
        # each pair's rule names one key: the upper bound when it is out of range, else the lower one
        if not 0 < self.max_scale <= 1:
            raise ValueError(f"max_scale: must lie in (0, 1], got {self.max_scale}; use an area share such as 1.0")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"min_scale: must lie in (0, max_scale] = (0, {self.max_scale}], got {self.min_scale}; use e.g. 0.08"
            )
        if not (0 < self.max_ratio and math.isfinite(self.max_ratio)):
            raise ValueError(f"max_ratio: must be a finite number > 0, got {self.max_ratio}; use an aspect ratio such as 1.333")
        if not 0 < self.min_ratio <= self.max_ratio:
            raise ValueError(
                f"min_ratio: must lie in (0, max_ratio] = (0, {self.max_ratio}], got {self.min_ratio}; use e.g. 0.75"
            )
        if not (0 <= self.jitter_strength <= 1.25):
            raise ValueError(
                f"jitter_strength: must be in [0, 1.25] (brightness factors stay >= 0), got {self.jitter_strength}; "
                "use 0.5 (CIFAR) or 1.0 (ImageNet)"
            )
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            value = getattr(self, name)
            if not (0 <= value <= 1):
                raise ValueError(f"{name}: is a probability, got {value}; use a value in [0, 1]")


@dataclass(frozen=True)
class SimCLRConfig:
    """SimCLR's settings: backbone, projection MLP, NT-Xent temperature, views, adversarial training.

    ``arch``: a registered model (``advtui models``); its pooled penultimate layer is the encoder.
    ``proj_dim``: the projection's output size (SimCLR: 128). ``hidden_dim``: the MLP's hidden width
    (0: the backbone's feature size, as SimCLR). ``temperature``: NT-Xent's tau; Li et al. do not publish
    theirs (their code's default is 0.007), SimCLR's CIFAR-10 setting is 0.5. ``adversarial``: PGD on the
    InfoNCE loss of one view (eps 0 = standard SimCLR).
    """

    arch: str = "resnet18"
    proj_dim: int = 128
    hidden_dim: int = 0
    temperature: float = 0.5
    views: ViewConfig = field(default_factory=ViewConfig)
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)

    def __post_init__(self) -> None:
        if self.proj_dim < 1:
            raise ValueError(f"proj_dim: must be >= 1, got {self.proj_dim}; use e.g. 128")
        if self.hidden_dim < 0:
            raise ValueError(f"hidden_dim: must be >= 0, got {self.hidden_dim}; use 0 for the backbone's width")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature: must be > 0, got {self.temperature}; use e.g. 0.5")


@dataclass(frozen=True)
class MAEConfig:
    """A masked autoencoder: ViT encoder (ViT-tiny shape by default) and a light decoder.

    Defaults: ViT-tiny (192 dim, 12 blocks, 3 heads; Li Appendix A.2 "MAE (ViT-t)") on 4x4 patches
    (64 patches at 32x32), the decoder of Li's released MAE (192 dim, 4 blocks, 3 heads), mask ratio 0.75.
    ``pool`` only changes how the encoder reads the trained ViT, not what is trained.
    """

    patch_size: int = 4
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    mask_ratio: float = 0.75
    decoder_dim: int = 192
    decoder_depth: int = 4
    decoder_heads: int = 3
    norm_pix_loss: bool = True
    pool: Literal["token", "avg"] = "token"

    def __post_init__(self) -> None:
        checks = [
            ("patch_size", self.patch_size >= 1, "must be >= 1 pixel"),
            ("depth", self.depth >= 1, "must be >= 1 block"),
            ("num_heads", self.num_heads >= 1 and self.embed_dim % self.num_heads == 0, "must be >= 1 and divide embed_dim"),
            ("decoder_depth", self.decoder_depth >= 1, "must be >= 1 block"),
            ("decoder_heads", self.decoder_heads >= 1 and self.decoder_dim % self.decoder_heads == 0,
             "must be >= 1 and divide decoder_dim"),
            ("mlp_ratio", self.mlp_ratio > 0, "must be > 0"),
            ("mask_ratio", 0.0 < self.mask_ratio < 1.0, "must lie in (0, 1) (MAE: 0.75)"),
            ("pool", self.pool in ("token", "avg"), "must be 'token' (class token) or 'avg' (mean of patch tokens)"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}; change {name} in the MIM params")


@dataclass(frozen=True)
class DDPMConfig:
    """UNet shape, noise schedule and where the representation is read.

    Defaults: Ho et al.'s CIFAR-10 UNet (35.7M parameters), which Li's released DM config also uses: base
    128 channels, multipliers (1, 2, 2, 2), 2 residual blocks per level, single-head attention at 16x16,
    dropout 0.1; 1000 linear-beta steps from 1e-4 to 0.02. ``attention[i]`` puts attention in down block
    ``i`` and its mirror up block. ``feature_block`` indexes ``unet.up_blocks`` (0 = the coarsest level);
    the feature is taken before that level's upsampler. Default t = 11 and level 1 (8x8, 256 channels):
    DDAE's best DDPM features (``out_6``), which Li et al. say they follow. ``feature_pool``: the side of
    the grid the map is average-pooled to, flattened: 1 = global average pooling (Li's text, DDAE); 16 =
    the ``AdaptiveAvgPool2d((16, 16))`` of Li's released ``Diffusion_Classifier`` (DM/train_dm.py), whose
    head takes 65,536 = 256 x 16 x 16 inputs (a map smaller than the grid is repeated into it).
    ``feature_t``, ``feature_block`` and ``feature_pool`` only change how the encoder reads the trained
    UNet, not what is trained.
    """

    block_out_channels: tuple[int, ...] = (128, 256, 256, 256)
    layers_per_block: int = 2
    attention: tuple[bool, ...] = (False, True, False, False)
    dropout: float = 0.1
    norm_num_groups: int = 32
    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    beta_schedule: Literal["linear", "squaredcos_cap_v2"] = "linear"
    feature_t: int = 11
    feature_block: int = 1
    feature_pool: int = 1

    def __post_init__(self) -> None:
        levels = len(self.block_out_channels)
        checks = [
            ("block_out_channels", levels >= 1 and all(c >= 1 for c in self.block_out_channels),
             "must list at least one positive channel count"),
            ("norm_num_groups", self.norm_num_groups >= 1
             and all(c % self.norm_num_groups == 0 for c in self.block_out_channels),
             "must divide every entry of block_out_channels (GroupNorm)"),
            ("attention", len(self.attention) == levels, f"must have one entry per level ({levels})"),
            ("layers_per_block", self.layers_per_block >= 1, "must be >= 1"),
            ("dropout", 0.0 <= self.dropout < 1.0, "must lie in [0, 1)"),
            ("num_train_timesteps", self.num_train_timesteps >= 2, "must be >= 2"),
            ("beta_end", 0.0 < self.beta_start <= self.beta_end < 1.0, "must satisfy 0 < beta_start <= beta_end < 1"),
            ("beta_schedule", self.beta_schedule in ("linear", "squaredcos_cap_v2"), "must be 'linear' or 'squaredcos_cap_v2'"),
            ("feature_t", 0 <= self.feature_t < self.num_train_timesteps, f"must lie in 0..{self.num_train_timesteps - 1}"),
            ("feature_block", 0 <= self.feature_block < levels, f"must index an up block, 0..{levels - 1}"),
            ("feature_pool", self.feature_pool >= 1, "must be >= 1 (1: global average pooling)"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}; change {name} in the DM params")

    @property
    def feature_channels(self) -> int:
        """Channels of the representation: the width of decoder level ``feature_block``."""
        return self.block_out_channels[::-1][self.feature_block]

    @property
    def feature_dim(self) -> int:
        """Length of the representation: ``feature_channels`` per cell of the ``feature_pool`` grid."""
        return self.feature_channels * self.feature_pool**2


#: Each paradigm's config type (``paradigms.<name>.config`` in params.yaml), by Li et al.'s paradigm names.
#: The paradigm module registered under the same name (``advtui.paradigms``) runs it.
PARADIGM_CONFIGS: dict[str, type] = {"MIM": MAEConfig, "CL": SimCLRConfig, "DM": DDPMConfig, "SL": SupervisedConfig}
