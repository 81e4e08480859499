"""SL, the supervised paradigm of Li et al.'s tables: a classifier trained (adversarially when configured) by
:mod:`advtui.paradigms.supervised`; its encoder is the penultimate layer."""

from __future__ import annotations

from torch import nn

from advtui.catalog.training import SupervisedConfig
from advtui.models.registry import create_model
from advtui.paradigms.base import Encoder, FeatureEncoder, Paradigm, register_paradigm
from advtui.paradigms.supervised import supervised_step
from advtui.paradigms.trainer import StepFn


@register_paradigm
class Supervised(Paradigm):
    """SL: supervised (or adversarial) training of a classifier; the encoder is its penultimate layer."""

    name = "SL"
    config_type = SupervisedConfig

    def build(self, cfg: SupervisedConfig, *, num_classes: int, image_size: int) -> nn.Module:
        return create_model(cfg.arch, num_classes=num_classes, img_size=image_size)

    def step(self, cfg: SupervisedConfig) -> StepFn:
        return supervised_step(cfg.adversarial)

    def encoder(self, module: nn.Module, cfg: SupervisedConfig) -> Encoder:
        return FeatureEncoder(module)
