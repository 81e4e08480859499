"""Classifiers by name over timm/torchvision and small CPU nets; input normalisation lives inside each model."""

from advtui.models.registry import Classifier, create_model, list_models, register_model

# Importing the architecture modules registers their factories.
from advtui.models import cifar, small  # noqa: E402,F401  isort: skip

__all__ = ["Classifier", "create_model", "list_models", "register_model"]
