"""The CL paradigm (SimCLR): NT-Xent against hand-computed values, training that learns, adversarial views, storage."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from advtui.data.imageset import ImageSet
from advtui.data.loaders import load_source
from advtui.catalog.data import SyntheticConfig
from advtui.paradigms.base import get_paradigm, list_paradigms, load_encoder, representations, save_encoder
from advtui.paradigms.simclr import InfoNCE, SimCLRModel, adversarial_view, nt_xent
from advtui.catalog.training import SimCLRConfig
from advtui.catalog.training import AdversarialConfig
from advtui.paradigms.trainer import fit
from advtui.catalog.training import TrainConfig
from advtui.paradigms.views import SimCLRViews
from advtui.catalog.training import ViewConfig
from advtui.schema import ParamsError, build

# Views a small CNN can learn from in seconds on CPU: SimCLR's crop and flip, no colour distortion.
# (With SimCLR's full colour distortion, instance discrimination on the synthetic images needs far
# longer training than a unit test has; the full views are exercised by the other tests.)
_MILD = ViewConfig(min_scale=0.5, jitter_p=0.0, grayscale_p=0.0)


def _tiny_config(**changes) -> SimCLRConfig:
    return SimCLRConfig(**{"arch": "small_cnn", "proj_dim": 16, "hidden_dim": 32, "views": _MILD, **changes})


# ---------------------------------------------------------------------------------------------- NT-Xent


def test_nt_xent_matches_a_hand_computed_batch() -> None:
    # two images; views z1 = (e1, e2), z2 = (e1, (e1 + e2)/sqrt 2); tau 0.5 doubles every cosine
    z1 = torch.tensor([[3.0, 0.0], [0.0, 0.5]])  # lengths do not matter: cosines
    z2 = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    c = 2 / math.sqrt(2)  # cos 45 deg / tau
    expected = [
        -2 + math.log(math.exp(0) + math.exp(2) + math.exp(c)),  # z1[0]: positive z2[0], negatives z1[1], z2[1]
        -c + math.log(math.exp(0) + math.exp(0) + math.exp(c)),  # z1[1]: positive z2[1], negatives z1[0], z2[0]
        -2 + math.log(math.exp(2) + math.exp(0) + math.exp(c)),  # z2[0]: positive z1[0]
        math.log(3.0),  # z2[1]: at 45 deg to every other view, positive included
    ]
    per_anchor = nt_xent(z1, z2, 0.5, reduction="none")
    assert per_anchor.tolist() == pytest.approx(expected, rel=1e-5)
    assert nt_xent(z1, z2, 0.5).item() == pytest.approx(sum(expected) / 4, rel=1e-5)


def test_nt_xent_is_low_for_matched_views_high_for_mismatched_and_sharpens_with_temperature() -> None:
    eye = torch.eye(4)
    # identical positives, orthogonal negatives: loss log(1 + 6 exp(-1/tau)) -> 0 as tau -> 0
    for tau in (1.0, 0.5, 0.1):
        expected = math.log(1 + 6 * math.exp(-1 / tau))
        assert nt_xent(eye, eye, tau).item() == pytest.approx(expected, rel=1e-3, abs=1e-6)
    assert nt_xent(eye, eye, 0.05).item() < 1e-6
    losses = [nt_xent(eye, eye, tau).item() for tau in (2.0, 1.0, 0.5, 0.2, 0.1)]
    assert losses == sorted(losses, reverse=True)
    # each view's partner is another image's twin: the loss grows without bound as tau -> 0
    wrong = eye.roll(1, dims=0)
    assert nt_xent(eye, wrong, 0.1).item() > 5 and nt_xent(eye, wrong, 0.1) > nt_xent(eye, wrong, 1.0)
    # at a very high temperature every view looks alike: log(2N - 1) whatever the embeddings
    z = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    assert nt_xent(z, torch.randn(8, 5), 1e4).item() == pytest.approx(math.log(15), rel=1e-3)


def test_nt_xent_rejects_mismatched_batches() -> None:
    with pytest.raises(ValueError, match="z1, z2"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3), 0.5)


# ------------------------------------------------------------------------------------ the paradigm


def test_cl_is_registered_with_a_backbone_encoder() -> None:
    assert "CL" in list_paradigms()
    paradigm = get_paradigm("CL")
    cfg = _tiny_config()
    module = paradigm.build(cfg, num_classes=10, image_size=32)
    encoder = paradigm.encoder(module, cfg)
    x = torch.rand(3, 3, 32, 32)
    assert module(x).shape == (3, 16)  # the projection
    assert encoder(x).shape == (3, encoder.feature_dim) == (3, 128)  # small_cnn's pooled features
    assert not encoder.randomised
    assert torch.equal(encoder(x), module.features(x))


def test_config_builds_from_params_and_names_bad_values() -> None:
    cfg = build(
        SimCLRConfig,
        {"arch": "small_cnn", "temperature": "0.2", "views": {"jitter_strength": 1.0}, "adversarial": {"eps": 0.5}},
        "paradigms.CL",
    )
    assert cfg.temperature == 0.2 and cfg.views.jitter_strength == 1.0 and cfg.adversarial.enabled
    assert SimCLRConfig().arch == "resnet18" and SimCLRConfig().proj_dim == 128
    for values, field in (({"temperature": 0}, "temperature"), ({"proj_dim": 0}, "proj_dim"),
                          ({"views": {"min_scale": 2}}, "views.min_scale")):
        with pytest.raises(ParamsError, match=f"paradigms.CL.{field}"):
            build(SimCLRConfig, values, "paradigms.CL")


@pytest.fixture(scope="module")
def synthetic() -> tuple[ImageSet, ImageSet]:
    return load_source("synthetic", "train", size=1000, seed=0), load_source("synthetic", "test", size=500, seed=1)


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory, synthetic) -> SimCLRModel:
    """A small CL model after two short epochs: batch-norm statistics and projections no longer at init."""
    paradigm = get_paradigm("CL")
    torch.manual_seed(0)
    module = paradigm.build(_tiny_config(), num_classes=10, image_size=32)
    fit(module, synthetic[0].subset(torch.arange(384)),
        TrainConfig(epochs=2, batch_size=128, optimizer="adam", lr=3e-3, weight_decay=1e-5),
        paradigm.step(_tiny_config()), checkpoint=tmp_path_factory.mktemp("warm") / "ck.pt", progress=False)
    return module.eval()


def _retrieval(module: SimCLRModel, views: SimCLRViews, x: torch.Tensor) -> float:
    """Share of images whose second view's projection is the nearest to their first view's, among all."""
    module.eval()
    torch.manual_seed(123)
    with torch.no_grad():
        a, b = F.normalize(module(views(x)), dim=1), F.normalize(module(views(x)), dim=1)
    return ((a @ b.T).argmax(1) == torch.arange(len(x))).float().mean().item()


def _probe_accuracy(train: torch.Tensor, y_train: torch.Tensor, test: torch.Tensor, y_test: torch.Tensor) -> float:
    """Multinomial logistic regression on standardised frozen features; accuracy on the test features."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    train, test = (train - mean) / std, (test - mean) / std
    torch.manual_seed(0)
    head = torch.nn.Linear(train.shape[1], int(y_train.max()) + 1)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(head(train), y_train).backward()
        opt.step()
    with torch.no_grad():
        return (head(test).argmax(1) == y_test).float().mean().item()


@pytest.mark.slow
def test_simclr_training_learns_invariant_features_that_a_linear_probe_reads(tmp_path: Path) -> None:
    """CL on ~1000 synthetic images: the loss falls, views of held-out images match, a linear probe reads the class.

    The images carry their class in their colour, which the mild views keep and which tells instances
    apart, so SimCLR has a reason to keep it. (A random small CNN's features are linearly readable on
    this data too, 0.96 measured; the probe checks that CL keeps the class information, the held-out
    view matching that it learned. Measured: loss 4.28 -> 3.78, matching 0.43 -> 0.80, probe 0.80.)
    """
    data = SyntheticConfig(colour="class")
    train = load_source("synthetic", "train", size=1000, seed=0, synthetic=data)
    test = load_source("synthetic", "test", size=500, seed=1, synthetic=data)
    paradigm = get_paradigm("CL")
    cfg = _tiny_config()
    torch.manual_seed(0)
    module = paradigm.build(cfg, num_classes=10, image_size=32)
    views = SimCLRViews(cfg.views)
    held_out = test.float_images()[:256]
    before = _retrieval(module, views, held_out)
    first = fit(
        module, train, TrainConfig(epochs=1, batch_size=128, optimizer="adam", lr=3e-3, weight_decay=1e-5,
                                   schedule="constant"),
        paradigm.step(cfg), checkpoint=tmp_path / "one.pt", progress=False,
    )
    last = fit(
        module, train, TrainConfig(epochs=5, batch_size=128, optimizer="adam", lr=3e-3, weight_decay=1e-5),
        paradigm.step(cfg), checkpoint=tmp_path / "six.pt", progress=False,
    )
    assert last["train_loss"] < first["train_loss"] - 0.2
    assert last["train_acc"] > 0.7  # the partner is the nearest of the 2N - 1 other views
    after = _retrieval(module, views, held_out)
    assert after > before + 0.2 and after > 0.7  # held-out images: two views of one image now match
    encoder = paradigm.encoder(module.eval(), cfg)
    accuracy = _probe_accuracy(
        representations(encoder, train.float_images()), train.labels,
        representations(encoder, test.float_images()), test.labels,
    )
    assert accuracy > 0.6  # chance is 0.1


# ----------------------------------------------------------------------------- adversarial views


@pytest.mark.parametrize(("norm", "eps"), [("linf", 8 / 255), ("l2", 0.5)])
def test_pgd_on_infonce_raises_the_loss_inside_the_ball(norm: str, eps: float, synthetic, warm: SimCLRModel) -> None:
    torch.manual_seed(0)
    cfg = _tiny_config(adversarial=AdversarialConfig(norm=norm, eps=eps, steps=5))
    module = warm
    views = SimCLRViews(cfg.views)
    x = synthetic[1].float_images()[:64]
    v1, v2 = views(x), views(x)
    adv = adversarial_view(module, v1, v2, cfg)
    delta = (adv - v1).flatten(1)
    bound = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (bound <= eps + 1e-5).all()
    assert not module.training and all(p.requires_grad for p in module.parameters())  # attack_mode restored
    with torch.no_grad():
        objective = InfoNCE(module, module(v2), temperature=cfg.temperature)
        clean, attacked = objective(v1), objective(adv)
    assert attacked.mean() > clean.mean() + 0.1
    assert (attacked >= clean - 1e-4).float().mean() > 0.9
    # the objective is per point: a subset's losses are the whole batch's losses of those points
    pick = torch.tensor([3, 7, 11])
    with torch.no_grad():
        assert torch.allclose(objective.select(pick)(adv[pick]), attacked[pick], atol=1e-5)


def test_infonce_gradients_pass_through_the_views(synthetic, warm: SimCLRModel) -> None:
    """E7's attack: InfoNCE of an augmented adversarial image, differentiated through kornia's views."""
    torch.manual_seed(0)
    module = warm
    views = SimCLRViews(ViewConfig())
    x = synthetic[1].float_images()[:16]
    with torch.no_grad():
        keys = module(views(x))
    objective = InfoNCE(lambda t: module(views(t)), keys, temperature=0.5, modules=[module])
    x_adv = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(x_adv).sum(), x_adv)
    assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()


def test_adversarial_simclr_step_trains(tmp_path: Path, synthetic) -> None:
    paradigm = get_paradigm("CL")
    cfg = _tiny_config(adversarial=AdversarialConfig(norm="linf", eps=8 / 255, steps=2))
    torch.manual_seed(0)
    module = paradigm.build(cfg, num_classes=10, image_size=32)
    before = [p.detach().clone() for p in module.parameters()]
    data = synthetic[0].subset(torch.arange(64))
    out = fit(module, data, TrainConfig(epochs=1, batch_size=32, optimizer="adam", lr=1e-3),
              paradigm.step(cfg), checkpoint=tmp_path / "adv.pt", progress=False)
    assert math.isfinite(out["train_loss"])
    assert all(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    with pytest.raises(ValueError, match="batch_size"):
        paradigm.step(cfg)(module, data.float_images()[:1], data.labels[:1])


# ---------------------------------------------------------------------------------------- storage


def test_saved_encoder_reloads_with_identical_representations(tmp_path: Path, warm: SimCLRModel) -> None:
    paradigm = get_paradigm("CL")
    cfg = _tiny_config()
    module = warm
    path = save_encoder(tmp_path / "cl.safetensors", "CL", module, cfg, num_classes=10, image_size=32)
    loaded, encoder, loaded_cfg = load_encoder(path)
    assert loaded_cfg == cfg and isinstance(loaded, SimCLRModel)
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(encoder(x), paradigm.encoder(module, cfg)(x))
        assert torch.equal(loaded(x), module(x))
