"""E7 and E8 (Li et al. section 5): the attack objectives, APGD on them, and the transfer matrix, against ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from advtui.attacks.apgd import Setup, apgd_objective
from advtui.attacks.objectives import CrossEntropy, FeatureAlignment
from advtui.catalog.names import E7_OBJECTIVES
from advtui.catalog.params import E7Params, E8Params
from advtui.catalog.training import SimCLRConfig, TrainConfig, ViewConfig
from advtui.data.imageset import ImageSet
from advtui.experiments.linear_probe import LinearProbe
from advtui.experiments.transfer import objective_setup, objective_transfer, train_projector, transfer_matrix
from advtui.paradigms.base import Encoder
from advtui.paradigms.simclr import projection_head
from advtui.paradigms.views import SimCLRViews
from linear_ground_truth import interior_points

EPS = 8 / 255
SHAPE = (3, 8, 8)


class TinyEncoder(Encoder):
    """conv + global pool: a deterministic encoder small enough for tests."""

    def __init__(self, feature_dim: int = 8) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.conv = nn.Conv2d(3, feature_dim, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x)).mean(dim=(2, 3))


def _probe(seed: int = 0, classes: int = 3) -> LinearProbe:
    torch.manual_seed(seed)
    return LinearProbe(TinyEncoder(), classes)


def _views() -> SimCLRViews:
    return SimCLRViews(ViewConfig(min_scale=0.5, jitter_p=0.0, grayscale_p=0.0))


def test_infonce_gradient_flows_through_the_kornia_views() -> None:
    torch.manual_seed(0)
    probe, views = _probe(), _views()
    projector = projection_head(8, 8, 4)
    x = interior_points(6, SHAPE, seed=1)
    setup = objective_setup("infonce_proj_aug", probe, projector, views, temperature=0.5)(x, torch.zeros(6, dtype=torch.long))
    x_adv = x.clone().requires_grad_(True)
    loss = setup.objective(x_adv)
    (grad,) = torch.autograd.grad(loss.sum(), x_adv)
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    # every image gets a gradient, through the random crop, flip and the network
    assert torch.isfinite(grad).all() and (grad.flatten(1).abs().sum(1) > 0).all()
    with torch.no_grad():
        assert not torch.allclose(views(x), x)  # the views really transform the images on the way


def test_alignment_loss_is_zero_at_the_clean_image_and_grows_away_from_it() -> None:
    probe = _probe()
    x = interior_points(5, SHAPE, seed=2)
    with torch.no_grad():
        objective = FeatureAlignment(probe.encoder, probe.encoder(x))
        assert torch.equal(objective(x), torch.zeros(5))
        x_moved = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
        moved = objective(x_moved)
        assert (moved > 0).all()
        # the squared distance of the representations, per point, and the same for a selected subset
        assert torch.allclose(moved, (probe.encoder(x_moved) - probe.encoder(x)).pow(2).sum(1))
        keep = torch.tensor([True, False, True, False, False])
        assert torch.equal(objective.select(keep)(x[keep]), torch.zeros(2))


def _binary_linear(d: int, seed: int) -> tuple[nn.Module, Tensor]:
    """A 2-class linear model on flattened images; its logit difference z_1 - z_0 is w . x + b."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(2, d, generator=g))
        model[1].bias.zero_()
        # put the boundary through the box's centre
        model[1].bias.copy_(-model[1].weight @ torch.full((d,), 0.5))
    return model, model[1].weight[1] - model[1].weight[0]


def test_apgd_ce_on_a_linear_model_matches_the_closed_form() -> None:
    d = math.prod(SHAPE)
    model, w = _binary_linear(d, seed=3)
    x = interior_points(40, SHAPE, seed=4)
    with torch.no_grad():
        logits = model(x)
    y = logits.argmax(1)
    margin = (logits[:, 1] - logits[:, 0]).abs()
    # Linf closed form for two classes: the worst point of the ball moves every pixel by eps against the margin,
    # so the margin falls by eps * ||w||_1 (the box never binds for interior points at this eps), and CE, monotone
    # in the margin, peaks there
    distance = margin / w.abs().sum()
    middle = distance.detach().sort().values[19:21]
    eps = middle.mean().item()  # half the points on each side of the radius, none on it
    worst_ce = F.softplus(-(margin - eps * w.abs().sum()))
    setup = Setup(CrossEntropy(model, y), {"ce": lambda x_adv, logits: F.cross_entropy(logits, y, reduction="none")})
    run = apgd_objective(model, setup, x, y, norm="linf", eps=eps, seed=0)
    assert 0 < int(run.broken.sum()) < len(x)
    assert torch.equal(run.broken, distance < eps)  # broken exactly where the closed form says it can be
    assert ((run.x_adv - x).abs() <= eps + 1e-6).all()
    best = max(run.sums["ce"])  # the batch's CE at its best iterate reaches the closed-form maximum
    assert best <= worst_ce.sum().item() * (1 + 1e-4) and best >= worst_ce.sum().item() * (1 - 1e-3)
    assert len(run.sums["ce"]) == 101  # the start and every one of APGD's 100 iterates


def _tiny_set(n: int, classes: int, seed: int) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = interior_points(n, SHAPE, seed=seed)
    # a class-coloured shift makes the tiny encoder's probe accurate enough to attack
    images[:, 0] += 0.15 * (labels.float()[:, None, None] - 1) + 0.01 * torch.randn(n, 8, 8, generator=g)
    return ImageSet(images=images.clamp(0, 1), labels=labels, classes=[str(c) for c in range(classes)], meta={})


def test_objective_transfer_runs_every_objective_resumably(tmp_path: Path) -> None:
    train, test = _tiny_set(32, 3, seed=5), _tiny_set(12, 3, seed=6)
    probe = _probe()
    head_fit = torch.optim.Adam(probe.head.parameters(), lr=0.05)
    for _ in range(60):  # a probe that reads the colour shift
        head_fit.zero_grad()
        F.cross_entropy(probe(train.float_images()), train.labels).backward()
        head_fit.step()
    cl = SimCLRConfig(arch="small_cnn", proj_dim=4, hidden_dim=8, views=ViewConfig(min_scale=0.5, jitter_p=0.0,
                                                                                 grayscale_p=0.0))
    e7 = E7Params(test_size=12, batch_size=6, projector=TrainConfig(epochs=2, batch_size=16, optimizer="adam", lr=1e-2))
    projected = train_projector(probe.encoder, train, cl, e7, checkpoint=tmp_path / "proj.ckpt",
                                device=torch.device("cpu"), seed=0, progress=False)
    before = {k: v.clone() for k, v in probe.encoder.state_dict().items()}
    row = objective_transfer(probe, projected.projector, test, cl, e7, device=torch.device("cpu"), seed=0,
                             state_dir=tmp_path / "state")
    assert all(torch.equal(before[k], v) for k, v in probe.encoder.state_dict().items())  # the encoder stayed frozen
    assert set(row["acc"]) == set(E7_OBJECTIVES) and all(0 <= a <= row["clean_acc"] for a in row["acc"].values())
    assert row["acc"]["ce"] < row["clean_acc"]  # the white-box CE attack breaks something
    for name, curve in row["curves"].items():
        assert len(curve["ce"]) == 101 and curve["points"] == round(row["clean_acc"] * 12)
        assert ("infonce" in curve) == (name in ("ce", "infonce_proj_aug"))
    # a rerun finds every chunk finished in the resume files and returns the same row, curves included
    again = objective_transfer(probe, projected.projector, test, cl, e7, device=torch.device("cpu"), seed=0,
                               state_dir=tmp_path / "state")
    assert again == row


class _HalfReader(nn.Module):
    """A 2-class linear classifier that reads only one half of the pixels (``half`` 0 or 1)."""

    randomised = False

    def __init__(self, d: int, half: int, sign: Tensor) -> None:
        super().__init__()
        self.mask = torch.zeros(d)
        self.mask[half * d // 2:(half + 1) * d // 2] = 1
        self.register_buffer("w", sign * self.mask)

    def forward(self, x: Tensor) -> Tensor:
        score = (x.flatten(1) - 0.5) @ self.w
        return torch.stack([-score, score], dim=1)


def test_transfer_matrix_transfers_only_to_models_that_read_the_attacked_feature() -> None:
    """Ground truth: APGD on a model that reads one half of the pixels moves only that half (zero gradient
    elsewhere), so its images fool a copy of it and leave a model of the other half as accurate as clean."""
    d = math.prod(SHAPE)
    sign = torch.where(torch.randn(d, generator=torch.Generator().manual_seed(7)) > 0, 1.0, -1.0)
    a, a_copy, b = _HalfReader(d, 0, sign), _HalfReader(d, 0, sign), _HalfReader(d, 1, sign)
    n = 20
    labels = torch.arange(n) % 2
    s = (2 * labels.float() - 1)[:, None]
    # the first half sits eps/2 from A's boundary (breakable), the second 3 eps from B's (not)
    x = 0.5 + s * sign * torch.cat([torch.full((d // 2,), EPS / 2), torch.full((d // 2,), 3 * EPS)])
    test = ImageSet(images=x.view(n, *SHAPE), labels=labels, classes=["0", "1"], meta={})
    result = transfer_matrix({"A": a, "A_copy": a_copy, "B": b}, test, E8Params(test_size=n, batch_size=10, eps=EPS),
                             device=torch.device("cpu"), seed=0)
    acc = result["acc"]
    assert result["clean"] == {"A": 1.0, "A_copy": 1.0, "B": 1.0}
    assert acc["A"]["A"] == 0.0 and acc["A"]["A_copy"] == 0.0  # white-box, and transferred to the same feature
    assert acc["A"]["B"] == 1.0  # not to a model that ignores it
    assert acc["B"] == {"A": 1.0, "A_copy": 1.0, "B": 1.0}  # B cannot be broken at this radius


def test_transfer_matrix_attacks_a_randomised_source_on_rand_test_size_images() -> None:
    """'rand' costs 20 EOT gradients a step: a randomised source is attacked on a class-balanced subset of
    ``rand_test_size`` of the drawn images, every classifier is evaluated on those, and the row says how many."""
    d = math.prod(SHAPE)
    sign = torch.where(torch.randn(d, generator=torch.Generator().manual_seed(7)) > 0, 1.0, -1.0)
    a, noisy = _HalfReader(d, 0, sign), _HalfReader(d, 0, sign)
    noisy.randomised = True
    n = 20
    labels = torch.arange(n) % 2
    x = 0.5 + (2 * labels.float() - 1)[:, None] * sign * EPS / 2
    test = ImageSet(images=x.view(n, *SHAPE), labels=labels, classes=["0", "1"], meta={})
    result = transfer_matrix({"A": a, "R": noisy}, test, E8Params(test_size=n, rand_test_size=4, batch_size=10, eps=EPS),
                             device=torch.device("cpu"), seed=0)
    assert result["n"] == n and result["attacked"] == {"A": n, "R": 4}
    assert result["autoattack_version"] == {"A": "standard", "R": "rand"}
    assert result["acc"]["R"] == {"A": 0.0, "R": 0.0}  # both read the half the attack moved, on R's 4 images
    with pytest.raises(ValueError, match="rand_test_size"):
        E8Params(rand_test_size=0)


@pytest.mark.parametrize("kwargs, message", [({"batch_size": 1}, "batch_size"), ({"eps": -1.0}, "eps")])
def test_e7_params_refuse_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        E7Params(**kwargs)


def test_e8_params_refuse_a_repeated_backbone() -> None:
    with pytest.raises(ValueError, match="backbones"):
        E8Params(backbones=("resnet50", "resnet50"))


def _fake_metrics(root: Path) -> None:
    """E7 and E8 metrics files as the stages write them (small curves, a 3-model matrix)."""
    import json

    for p, clean in (("SL", 0.9), ("CL", 0.7)):
        curves = {name: {"points": 10, "ce": [0.1, 1.0, 2.0], **({"infonce": [2.0, 2.1, 2.2]} if name in (
            "ce", "infonce_proj_aug") else {})} for name in E7_OBJECTIVES}
        row = {"paradigm": p, "clean_acc": clean, "acc": {name: clean / 2 for name in E7_OBJECTIVES}, "curves": curves,
               "n": 10, "norm": "linf", "eps": EPS, "n_iter": 100}
        (root / "E7").mkdir(parents=True, exist_ok=True)
        (root / "E7" / f"{p}.json").write_text(json.dumps(row))
    models = ["CL", "SL", "SL-small_resnet"]
    acc = {"CL": {"CL": 0.0, "SL": 0.8, "SL-small_resnet": 0.9}, "SL": {"CL": 0.6, "SL": 0.0, "SL-small_resnet": 0.2},
           "SL-small_resnet": {"CL": 0.7, "SL": 0.4, "SL-small_resnet": 0.0}}
    (root / "E8").mkdir(parents=True, exist_ok=True)
    (root / "E8" / "matrix.json").write_text(json.dumps({
        "models": models, "acc": acc, "clean": {m: 0.9 for m in models}, "n": 10, "norm": "linf", "eps": EPS,
        "attacked": {"CL": 4, "SL": 10, "SL-small_resnet": 10},  # CL as a randomised source (e8.rand_test_size)
        "autoattack_version": {m: "rand" if m == "CL" else "standard" for m in models}, "attack": "apgd-ce"}))


def test_report_rows_put_li_table_7_beside_ours_and_summarise_the_matrix(tmp_path: Path) -> None:
    from advtui.report.layout import E7, E8, lay_out
    from advtui.report.tables import collect

    _fake_metrics(tmp_path / "metrics")
    report = collect(tmp_path)
    e7 = {row["objective"]: row for row in report["E7"]}
    assert list(e7) == ["none", *E7_OBJECTIVES]
    assert e7["none"]["CL"] == 0.7 and e7["ce"]["SL"] == 0.45 and e7["none"]["missing"] == []
    laid = lay_out(E7, report["E7"])
    assert laid.cells(e7["infonce_proj_aug"]) == ["InfoNCE + projector + augmentation (default)", "45.0", "35.0 (70.3)"]
    e8 = lay_out(E8, report["E8"])
    assert not any(row.get("invalid") for row in report["E8"])
    assert [row["n_test"] for row in report["E8"]] == [4, 10, 10]
    assert "AutoAttack's APGD-CE at" in e8.caption and "(CL: 'rand', with EOT)" in e8.caption
    assert ", 10 test images (CL: 4);" in e8.caption
    assert e8.cells(report["E8"][1]) == ["SL", "90.0", "60.0", "0.0", "20.0"]
    # within SL (SL <-> SL-small_resnet): (0.2 + 0.4) / 2; across paradigms: the four CL cells off the diagonal
    assert report["E8"][0]["transfer"] == pytest.approx({"within": 0.3, "across": (0.8 + 0.9 + 0.6 + 0.7) / 4})


def test_transfer_figures_are_written_and_byte_reproducible(tmp_path: Path) -> None:
    from advtui.report.figures import write_transfer_figures

    _fake_metrics(tmp_path / "metrics")
    written = write_transfer_figures(tmp_path / "metrics", tmp_path / "figures")
    assert sorted(p.name for p in written) == ["E7_curves.png", "E7_curves.svg", "E8_transfer.png", "E8_transfer.svg"]
    first = {p.name: p.read_bytes() for p in written}
    write_transfer_figures(tmp_path / "metrics", tmp_path / "figures")
    assert {p.name: p.read_bytes() for p in written} == first


def test_planted_reading_sees_an_added_pattern_and_a_kept_shape() -> None:
    """Ground truth of E8's adversarial images on the planted data: an attack that adds the planted pattern of the
    class it makes the model predict (twice the planted norm) is read as such, and the shape stays where it was."""
    from advtui.catalog.data import SyntheticConfig
    from advtui.data.synthetic import make_synthetic, nonrobust_patterns
    from advtui.experiments.transfer import _planted_reading

    cfg = SyntheticConfig()
    data = make_synthetic(cfg, 20, seed=0, split="test")
    x, y = data.float_images(), data.labels
    target = (y + 1) % cfg.num_classes
    x_adv = x + 2 * nonrobust_patterns(cfg)[target]  # (C, 3, H, W) patterns of the planted norm, unclipped
    x_adv[:5] = x[:5]  # five images the attack left alone: not counted
    reading = _planted_reading(x, x_adv, target, cfg)
    assert reading["changed"] == 0.75
    assert reading["pattern_added"] == 1.0 and reading["shape_kept"] == 1.0
    # predictions the added patterns do not point to
    assert _planted_reading(x, x_adv, (y + 2) % cfg.num_classes, cfg)["pattern_added"] == 0.0
    assert _planted_reading(x, x, y, cfg) == {"changed": 0.0, "pattern_added": None, "shape_kept": None}
