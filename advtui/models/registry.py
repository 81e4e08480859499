"""Classifiers by name: ``create_model("resnet18")`` and a ``@register_model`` decorator to add architectures.

A registered factory builds only the *backbone* (normalised images -> pooled (N, D) representation) and
returns it with D. :class:`Classifier` adds the input normalisation in front and one ``nn.Linear`` head
behind, so every architecture shares the same contract: ``forward`` takes images in [0, 1] and returns
logits, ``features`` returns the penultimate representation, and ``head(features(x)) == forward(x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from advtui.models.normalise import CIFAR10_MEAN, CIFAR10_STD, Normalise

BackboneFactory = Callable[[int], tuple[nn.Module, int]]
"""``factory(img_size) -> (backbone, feature_dim)``; the backbone maps normalised NCHW images to (N, feature_dim)."""

_REGISTRY: dict[str, BackboneFactory] = {}


def register_model(name: str) -> Callable[[BackboneFactory], BackboneFactory]:
    """Decorator that registers a backbone factory under ``name`` (raises ValueError if the name is taken)."""

    def decorate(factory: BackboneFactory) -> BackboneFactory:
        if name in _REGISTRY:
            raise ValueError(f"model: '{name}' is already registered; pick another name for the new architecture")
        _REGISTRY[name] = factory
        return factory

    return decorate


def list_models() -> list[str]:
    """Names of all registered architectures, sorted."""
    return sorted(_REGISTRY)


class Classifier(nn.Module):
    """Normalisation, backbone and linear head; takes images in [0, 1], returns logits.

    Attributes: ``arch`` (registry name), ``num_classes``, ``feature_dim``, ``img_size``, ``normalise``,
    ``backbone``, ``head`` (the final ``nn.Linear``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feature_dim: int,
        num_classes: int,
        *,
        arch: str,
        img_size: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        self.arch = arch
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.img_size = img_size
        self.normalise = Normalise(mean, std)
        self.backbone = backbone
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate representation (N, feature_dim) of images ``x`` in [0, 1] (pooled, before ``head``)."""
        return self.backbone(self.normalise(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) of images ``x`` in [0, 1]."""
        return self.head(self.features(x))


def create_model(
    name: str,
    num_classes: int = 10,
    img_size: int = 32,
    mean: Sequence[float] = CIFAR10_MEAN,
    std: Sequence[float] = CIFAR10_STD,
) -> Classifier:
    """Build the registered architecture ``name`` with fresh (never downloaded) weights.

    ``img_size`` is the side of the square input: 32 (CIFAR, synthetic) gives the CIFAR variants, 64
    (Tiny-ImageNet) a stem that halves the input, 128 and more the unchanged ImageNet architecture.
    ``mean``/``std`` are the per-channel statistics the model normalises its input with.
    """
    if name not in _REGISTRY:
        raise ValueError(f"model: unknown architecture '{name}'; choose one of {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes: must be >= 1, got {num_classes}; pass the dataset's number of classes")
    if img_size < 32:
        raise ValueError(f"img_size: must be >= 32, got {img_size}; resize the images to at least 32x32")
    backbone, feature_dim = _REGISTRY[name](img_size)
    return Classifier(backbone, feature_dim, num_classes, arch=name, img_size=img_size, mean=mean, std=std)
