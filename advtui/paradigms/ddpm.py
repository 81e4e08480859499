"""Diffusion models (DM): DDPM (Ho et al. 2020) on a diffusers UNet2DModel, as in Li et al. 2023.

Training is the standard epsilon-prediction objective: scale images to [-1, 1], draw t uniformly from
0..T-1 and Gaussian noise (both from torch's global RNG), noise the images to
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps with a diffusers ``DDPMScheduler``, and regress the noise.

The representation follows Li et al. (section 3.1), who follow Xiang et al. 2023 (DDAE): noise the image to
a fixed step ``feature_t`` with *fresh* Gaussian noise, run the UNet, take one decoder level's activation
and average-pool it. Li's text publishes neither the step nor the exact layer ("the global average pooled
feature in the fourth upsampling layer"). Their released classifier (``Diffusion_Classifier`` in
DM/train_dm.py of PKU-ML/AdvNotRealFeatures) noises to t = 11 and pools the map to a 16x16 grid, not
globally, into a 65,536-input head (so a 256-channel map); the method it reads the map with,
``encoder_forward``, is not in the released UNet, so the layer cannot be read off the code. DDAE's best
DDPM layer on CIFAR-10 is ``out_6`` at t = 11: the last residual block of the second decoder level (8x8,
256 channels), which is the output of diffusers' ``up_blocks[1]`` before its upsampler. So
``feature_block`` picks a decoder level (an index into ``unet.up_blocks``) and the feature is that level's
last block, before upsampling (the block's output for the last, full-resolution level), and
``feature_pool`` the pooling grid (1: global, as Li's text; 16: as Li's code); all three are params,
defaulting to DDAE's choice and global pooling. Li's released classifier feeds the noised [0, 1] image to
a UNet trained on [-1, 1]; we scale to [-1, 1], the range the UNet learned. Every call draws new noise, so the encoder is ``randomised``: attacks must
use EOT (AutoAttack's ``rand`` version, as Li Appendix A.4 does for DDPM) and accuracies are
expectations. Gradients flow from the features back to the input image.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.paradigms.base import Encoder, Paradigm, register_paradigm
from advtui.paradigms.trainer import StepFn, own_loss_step
from advtui.catalog.training import DDPMConfig


class DiffusionModel(nn.Module):
    """The DM module: a diffusers ``UNet2DModel`` noise predictor and its ``DDPMScheduler`` (the schedule).

    ``forward(x)`` on images in [0, 1] returns the epsilon-prediction loss at random steps.
    """

    arch = "ddpm_unet"

    def __init__(self, cfg: DDPMConfig, image_size: int) -> None:
        super().__init__()
        levels = len(cfg.block_out_channels)
        if image_size % 2 ** (levels - 1):
            raise ValueError(
                f"block_out_channels: {levels} levels halve the image {levels - 1} times, which {image_size} px "
                "does not allow; use fewer levels"
            )
        self.cfg = cfg
        # diffusers takes about a second to import; every pipeline stage loads this module, few build a UNet.
        from diffusers import DDPMScheduler, UNet2DModel

        self.unet = UNet2DModel(
            sample_size=image_size,
            block_out_channels=cfg.block_out_channels,
            layers_per_block=cfg.layers_per_block,
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in cfg.attention),
            up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(cfg.attention)),
            attention_head_dim=None,  # one head of the block's full width, as in DDPM
            dropout=cfg.dropout,
            norm_num_groups=cfg.norm_num_groups,
        )
        self.scheduler = DDPMScheduler(
            num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start, beta_end=cfg.beta_end,
            beta_schedule=cfg.beta_schedule,
        )

    @staticmethod
    def to_model_range(x: Tensor) -> Tensor:
        """Images in [0, 1] to the diffusion's data range [-1, 1]."""
        return x * 2.0 - 1.0

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, for ``x0`` in [-1, 1] and steps ``t`` (N,)."""
        return self.scheduler.add_noise(x0, noise, t)

    def forward(self, x: Tensor) -> Tensor:
        """The DDPM loss (MSE between true and predicted noise) on images ``x`` in [0, 1]."""
        x0 = self.to_model_range(x)
        t = torch.randint(0, self.cfg.num_train_timesteps, (len(x),), device=x.device)
        noise = torch.randn_like(x0)
        return F.mse_loss(self.unet(self.q_sample(x0, t, noise), t).sample, noise)


class _Captured(Exception):
    """Raised by the feature hook to end the UNet's forward pass once the chosen block has run."""

    def __init__(self, features: Tensor) -> None:
        super().__init__()
        self.features = features


class DDPMEncoder(Encoder):
    """Decoder level ``cfg.feature_block`` at noise step ``cfg.feature_t``, average-pooled to a
    ``cfg.feature_pool`` grid and flattened (1: global average pooling): randomised.

    ``cfg`` may differ from the module's own in those three read-out fields only (read features elsewhere
    without retraining); the UNet's shape must match.
    """

    randomised = True

    def __init__(self, ddpm: DiffusionModel, cfg: DDPMConfig) -> None:
        super().__init__()
        read_out = {"feature_t": ddpm.cfg.feature_t, "feature_block": ddpm.cfg.feature_block,
                    "feature_pool": ddpm.cfg.feature_pool}
        if replace(cfg, **read_out) != ddpm.cfg:
            raise ValueError(
                "cfg: differs from the module's config in more than the read-out (feature_t, feature_block, "
                "feature_pool); pass the config the module was built with"
            )
        self.ddpm = ddpm
        self.cfg = cfg
        self.feature_dim = cfg.feature_dim

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.cfg
        x0 = self.ddpm.to_model_range(x)
        t = torch.full((len(x),), cfg.feature_t, device=x.device, dtype=torch.long)
        x_t = self.ddpm.q_sample(x0, t, torch.randn_like(x0))

        def capture(module: nn.Module, args: tuple, output: Tensor | None = None) -> None:
            raise _Captured(args[0] if output is None else output)

        # The level's last block, before its upsampler: hook the upsampler's input (the full-resolution
        # level has none; take its output). Stopping the pass there skips blocks whose output would be
        # thrown away, up to the whole full-resolution level on every attack step.
        level = self.ddpm.unet.up_blocks[cfg.feature_block]
        if level.upsamplers is not None:
            handle = level.upsamplers[0].register_forward_pre_hook(capture)
        else:
            handle = level.register_forward_hook(capture)
        try:
            self.ddpm.unet(x_t, t)
        except _Captured as captured:
            if cfg.feature_pool == 1:  # the mean itself: global pooling reads exactly as it always has
                return captured.features.mean(dim=(2, 3))
            return F.adaptive_avg_pool2d(captured.features, cfg.feature_pool).flatten(1)
        finally:
            handle.remove()
        raise RuntimeError("DDPMEncoder: the UNet never ran its up block; its forward pass changed")


@register_paradigm
class Dm(Paradigm):
    """DM: DDPM pretraining; the encoder pools one UNet decoder block at a fixed noise step."""

    name = "DM"
    config_type = DDPMConfig

    def build(self, cfg: DDPMConfig, *, num_classes: int, image_size: int) -> nn.Module:
        return DiffusionModel(cfg, image_size)

    def step(self, cfg: DDPMConfig) -> StepFn:
        return own_loss_step

    def encoder(self, module: nn.Module, cfg: DDPMConfig) -> Encoder:
        return DDPMEncoder(module, cfg)
