"""Model registry: every architecture builds, honours the Classifier contract, normalises inside, round-trips."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from advtui.models import Classifier, create_model, list_models, register_model
from advtui.models.normalise import Normalise
from advtui.paradigms.trainer import model_state

ARCHS = ["densenet121", "inception_v3", "mobilenetv2", "resnet18", "resnet50", "small_cnn", "small_mlp", "small_resnet", "vgg16"]
FEATURE_DIMS = {
    "densenet121": 1024, "inception_v3": 2048, "mobilenetv2": 1280, "resnet18": 512,
    "resnet50": 2048, "small_cnn": 128, "small_mlp": 256, "small_resnet": 128, "vgg16": 512,
}


def test_registry_lists_every_architecture() -> None:
    assert set(ARCHS) <= set(list_models())


@pytest.mark.parametrize("arch", ARCHS)
def test_classifier_contract(arch: str) -> None:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=10, img_size=32).eval()
    assert isinstance(model, Classifier) and isinstance(model.head, nn.Linear)
    assert (model.arch, model.num_classes, model.feature_dim) == (arch, 10, FEATURE_DIMS[arch])
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
        assert logits.shape == (2, 10)
        assert feats.shape == (2, model.feature_dim)
        torch.testing.assert_close(model.head(feats), logits)
        # the two images get different representations (the backbone is not constant)
        assert (feats[0] - feats[1]).abs().max() > 0


def test_normalisation_lives_inside_the_model() -> None:
    """Shifting the model's mean by d and the input by d gives the same logits; its state carries mean/std."""
    torch.manual_seed(0)
    mean, std, shift = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), torch.tensor([0.05, -0.1, 0.02]).view(1, 3, 1, 1)
    a = create_model("small_cnn", mean=mean, std=std).eval()
    b = create_model("small_cnn", mean=tuple((torch.tensor(mean) + shift.flatten()).tolist()), std=std).eval()
    b.backbone.load_state_dict(a.backbone.state_dict())
    b.head.load_state_dict(a.head.state_dict())
    x = torch.rand(4, 3, 32, 32) * 0.8 + 0.1
    with torch.no_grad():
        torch.testing.assert_close(b(x + shift), a(x), rtol=1e-4, atol=1e-5)
        assert (b(x) - a(x)).abs().max() > 1e-3  # the mean matters, so it really is applied
    assert torch.equal(a.state_dict()["normalise.mean"].flatten(), torch.tensor(mean))
    assert torch.equal(a.state_dict()["normalise.std"].flatten(), torch.tensor(std))
    out = Normalise(mean, std)(torch.tensor(mean).view(1, 3, 1, 1).expand(1, 3, 2, 2))
    assert out.abs().max() < 1e-6


@pytest.mark.parametrize("arch", ["small_cnn", "resnet18"])
def test_state_dict_round_trips_through_safetensors(arch: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=7, mean=(0.3, 0.3, 0.3), std=(0.2, 0.2, 0.2))
    model.train()
    model(torch.rand(4, 3, 32, 32))  # move BatchNorm running statistics away from their init
    model.eval()
    save_file(model_state(model), str(tmp_path / "w.safetensors"))
    torch.manual_seed(1)
    fresh = create_model(arch, num_classes=7)
    fresh.load_state_dict(load_file(str(tmp_path / "w.safetensors")))
    fresh.eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), model(x))
    torch.testing.assert_close(fresh.normalise.mean, model.normalise.mean)


@pytest.mark.parametrize("arch", ["resnet18", "mobilenetv2", "inception_v3"])
def test_tiny_imagenet_size(arch: str) -> None:
    model = create_model(arch, num_classes=200, img_size=64).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 200)


def test_imagenet_size_keeps_the_original_stem() -> None:
    small, large = create_model("resnet18", img_size=32), create_model("resnet18", img_size=224)
    assert small.backbone.conv1.kernel_size == (3, 3) and isinstance(small.backbone.maxpool, nn.Identity)
    assert large.backbone.conv1.kernel_size == (7, 7) and isinstance(large.backbone.maxpool, nn.MaxPool2d)


def test_bad_requests_fail_with_one_line() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'resnet9'"):
        create_model("resnet9")
    with pytest.raises(ValueError, match="num_classes"):
        create_model("small_cnn", num_classes=0)
    with pytest.raises(ValueError, match="img_size"):
        create_model("small_cnn", img_size=16)
    with pytest.raises(ValueError, match="std"):
        create_model("small_cnn", std=(0.2, 0.0, 0.2))


def test_register_model_adds_an_architecture() -> None:
    name = "test_linear_probe_net"

    @register_model(name)
    def factory(img_size: int) -> tuple[nn.Module, int]:
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * img_size * img_size, 5)), 5

    model = create_model(name, num_classes=3)
    assert name in list_models() and model(torch.rand(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_model(name)(factory)
