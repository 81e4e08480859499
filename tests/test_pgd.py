"""PGD against closed-form ground truth on linear classifiers, and its bookkeeping guarantees."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from advtui.attacks.objectives import CrossEntropy, TargetedCrossEntropy
from advtui.attacks.pgd import attack_mode, pgd, pgd_attack
from linear_ground_truth import (
    assert_linf_box_ground_truth,
    corner_points,
    hyperplane_distance,
    interior_points,
    linear_model,
    logits_of,
    perturbation_norm,
    untargeted_distance,
)


def misclassified(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits_of(model, x).argmax(1) != y


@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("shape", [(1, 4, 4), (3, 8, 8)])
def test_untargeted_matches_closed_form_binary(norm: str, shape: tuple[int, ...]) -> None:
    model = linear_model(shape, 2, seed=1)
    x = interior_points(1500, shape, seed=2)
    y = logits_of(model, x).argmax(1)
    dist = untargeted_distance(model, x, y, norm)
    eps = dist.median().item()
    # The attack only moves pixels within eps of x, in [0.3 - eps, 0.7 + eps]: the box never binds.
    assert eps < 0.25
    x_adv = pgd_attack(
        model, x, y, norm=norm, eps=eps, step_size=eps / 4, steps=30, generator=torch.Generator().manual_seed(0)
    )
    assert (perturbation_norm(x_adv, x, norm) <= eps + 1e-5).all()
    broken = misclassified(model, x_adv, y)
    near, far = dist <= eps / 1.05, dist >= eps / 0.95
    assert near.sum() > 300 and far.sum() > 300
    assert broken[near].float().mean() >= 0.99
    assert not broken[far].any()


def test_clipped_to_the_box_where_it_binds() -> None:
    """On images with every pixel on a face of [0, 1] the box takes half the Linf budget: PGD stays in it and
    breaks exactly the points the box-aware closed form says it can (an unclipped attack would break more)."""
    model = linear_model((3, 8, 8), 2, seed=9)
    x = corner_points(1000, (3, 8, 8), seed=10)
    y = logits_of(model, x).argmax(1)
    eps = untargeted_distance(model, x, y, "linf").median().item()
    x_adv = pgd_attack(model, x, y, norm="linf", eps=eps, step_size=eps / 4, steps=30,
                       generator=torch.Generator().manual_seed(0))
    assert_linf_box_ground_truth(model, x, y, eps, x_adv)


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_multiclass_never_succeeds_beyond_the_exact_distance(norm: str) -> None:
    model = linear_model((3, 8, 8), 10, seed=3)
    x = interior_points(800, (3, 8, 8), seed=4)
    y = logits_of(model, x).argmax(1)
    dist = untargeted_distance(model, x, y, norm)
    eps = dist.median().item()
    x_adv = pgd_attack(
        model, x, y, norm=norm, eps=eps, step_size=eps / 4, steps=30, restarts=2,
        generator=torch.Generator().manual_seed(0),
    )
    broken = misclassified(model, x_adv, y)
    assert not broken[dist >= eps / 0.95].any()
    assert broken[dist <= eps / 1.05].float().mean() > 0.5


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_targeted_matches_closed_form_three_classes(norm: str) -> None:
    # Three competitive classes; for each point the target t = y + 1 mod 3. We keep the points where
    # the target region's nearest point is on the single hyperplane t = y (the constraint t >= k is
    # slack there and at 1.05 times that distance), so the exact distance to the region is closed form.
    shape = (1, 4, 4)
    model = linear_model(shape, 3, seed=5, scale=200.0)
    x = interior_points(4000, shape, seed=6)
    y = logits_of(model, x).argmax(1)
    t, k = (y + 1) % 3, (y + 2) % 3
    w, b = model[1].weight.detach(), model[1].bias.detach()
    d_t = hyperplane_distance(model, x, y, t, norm)
    direction = w[t] - w[y]
    direction = direction / direction.norm(dim=1, keepdim=True) if norm == "l2" else direction.sign()
    z = x.flatten(1)

    def t_beats_k(points: torch.Tensor) -> torch.Tensor:
        return ((points * (w[t] - w[k])).sum(1) + b[t] - b[k]) > 0

    single = t_beats_k(z + d_t[:, None] * direction) & t_beats_k(z + 1.05 * d_t[:, None] * direction)
    x, y, t, d_t = x[single], y[single], t[single], d_t[single]
    nearest_is_other = untargeted_distance(model, x, y, norm) < d_t - 1e-6
    assert nearest_is_other.sum() > 50  # an untargeted attack would go elsewhere for these
    eps = d_t.median().item()
    assert eps < 0.25
    x_adv = pgd_attack(
        model, x, t, norm=norm, eps=eps, step_size=eps / 4, steps=40, targeted=True,
        generator=torch.Generator().manual_seed(0),
    )
    assert (perturbation_norm(x_adv, x, norm) <= eps + 1e-5).all()
    hit = logits_of(model, x_adv).argmax(1) == t
    near, far = d_t <= eps / 1.05, d_t >= eps / 0.95
    assert near.sum() > 200 and far.sum() > 200
    assert hit[near].float().mean() >= 0.99
    assert not hit[far].any()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_step_size_conventions(norm: str) -> None:
    model = linear_model((1, 4, 4), 2, seed=7)
    x = interior_points(50, (1, 4, 4), seed=8)
    y = logits_of(model, x).argmax(1)
    step = 0.05
    x_adv = pgd_attack(model, x, y, norm=norm, eps=1.0, step_size=step, steps=1, random_start=False)
    w = model[1].weight.detach()
    ascent = (w[1 - y] - w[y])  # the cross-entropy gradient of a binary linear model points this way
    delta = (x_adv - x).flatten(1)
    if norm == "l2":
        expected = step * ascent / ascent.norm(dim=1, keepdim=True)
    else:
        expected = step * ascent.sign()
    torch.testing.assert_close(delta, expected, atol=1e-6, rtol=1e-5)


def _probe_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 10),
    )


def test_model_mode_and_grad_flags_restored_and_no_param_grads() -> None:
    model = _probe_model()
    model.train()
    model[1].eval()  # a submodule kept in eval inside a training model must stay so
    model[0].weight.requires_grad_(False)  # a frozen parameter must stay frozen
    x = torch.rand(8, 3, 8, 8)
    y = torch.randint(0, 10, (8,))
    model(x).sum().backward()  # existing gradients must not change
    grads_before = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    modes_before = [m.training for m in model.modules()]
    flags_before = [p.requires_grad for p in model.parameters()]
    stats_before = model[1].running_mean.clone()
    seen: list[tuple[list[bool], list[bool]]] = []
    hook = model.register_forward_pre_hook(
        lambda m, _: seen.append(([s.training for s in m.modules()], [p.requires_grad for p in m.parameters()]))
    )
    pgd_attack(model, x, y, norm="l2", eps=0.5, step_size=0.1, steps=3, restarts=2)
    hook.remove()
    assert seen and all(not any(modes) and not any(flags) for modes, flags in seen)
    assert [m.training for m in model.modules()] == modes_before
    assert [p.requires_grad for p in model.parameters()] == flags_before
    torch.testing.assert_close(model[1].running_mean, stats_before)
    for name, p in model.named_parameters():
        before = grads_before[name]
        assert (p.grad is None) == (before is None)
        if before is not None:
            torch.testing.assert_close(p.grad, before)


def test_flags_restored_when_the_objective_raises() -> None:
    model = _probe_model().train()

    def broken_model(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")

    objective = CrossEntropy(broken_model, torch.zeros(2, dtype=torch.long))
    objective.modules = (model,)
    with pytest.raises(RuntimeError, match="boom"):
        pgd(objective, torch.rand(2, 3, 8, 8), norm="l2", eps=0.5, step_size=0.1, steps=2)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def _mlp() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.Tanh(), nn.Linear(32, 5))


def test_restarts_never_worse_per_point() -> None:
    model = _mlp()
    x = torch.rand(300, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    y = logits_of(model, x).argmax(1)
    objective = CrossEntropy(model, y)
    runs = {
        r: pgd(objective, x, norm="l2", eps=0.6, step_size=0.15, steps=3, restarts=r,
               generator=torch.Generator().manual_seed(0))
        for r in (1, 4)
    }
    with torch.no_grad():
        (loss1, succ1), (loss4, succ4) = objective.evaluate(runs[1]), objective.evaluate(runs[4])
    assert (succ4 | ~succ1).all()  # a point broken with one restart stays broken with four
    both_failed = ~succ1 & ~succ4
    assert (loss4[both_failed] >= loss1[both_failed] - 1e-5).all()
    assert succ4.sum() > succ1.sum() or (loss4[both_failed] > loss1[both_failed] + 1e-4).any()


def test_early_stop_same_answer_less_work() -> None:
    model = _mlp()
    x = torch.rand(300, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    y = logits_of(model, x).argmax(1)
    seen = []
    hook = model.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[0]))
    results = {}
    for early in (False, True):
        seen.clear()
        x_adv = pgd_attack(
            model, x, y, norm="linf", eps=0.4, step_size=0.1, steps=10, restarts=2, early_stop=early,
            generator=torch.Generator().manual_seed(0),
        )
        results[early] = (misclassified(model, x_adv, y), sum(seen))
    (broken_full, work_full), (broken_early, work_early) = results[False], results[True]
    assert 0.2 < broken_full.float().mean() < 0.9
    assert torch.equal(broken_full, broken_early)
    assert work_early < 0.8 * work_full


@pytest.mark.parametrize("restarts", [1, 2])
def test_unscored_final_iterate_same_successes_one_pass_less(restarts: int) -> None:
    """score_final=False saves exactly the final scoring pass (n forwards, on the last restart only) and
    returns the same broken points; the points that never break come back inside the ball, at the same
    image with early stopping as without."""
    model = _mlp()
    x = torch.rand(300, 3, 4, 4, generator=torch.Generator().manual_seed(4))
    y = logits_of(model, x).argmax(1)
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[0]))
    results = {}
    for score_final in (True, False):
        seen.clear()
        x_adv = pgd_attack(
            model, x, y, norm="linf", eps=0.4, step_size=0.1, steps=6, restarts=restarts, score_final=score_final,
            generator=torch.Generator().manual_seed(0),
        )
        passes = list(seen)
        results[score_final] = (x_adv, misclassified(model, x_adv, y), passes)
    (_, broken_scored, passes_scored), (x_unscored, broken_unscored, passes_unscored) = results[True], results[False]
    assert 0.2 < broken_scored.float().mean() < 0.9
    assert torch.equal(broken_scored, broken_unscored)
    # one forward of all 300 points per gradient step, plus one scoring the final iterate of each restart,
    # except the last restart's when score_final is off
    assert passes_scored == [300] * 7 * restarts
    assert passes_unscored == [300] * (7 * restarts - 1)
    # A failed point's final iterate does not depend on which other points are still in the batch: early
    # stopping (points leave as they break) returns the same images for the points that never break.
    x_early = pgd_attack(
        model, x, y, norm="linf", eps=0.4, step_size=0.1, steps=6, restarts=restarts, score_final=False,
        early_stop=True, generator=torch.Generator().manual_seed(0),
    )
    failed = ~broken_unscored
    torch.testing.assert_close(x_early[failed], x_unscored[failed])
    assert (perturbation_norm(x_unscored, x, "linf") <= 0.4 + 1e-6).all()


def test_targeted_objective_success_and_select() -> None:
    model = _mlp()
    x = torch.rand(6, 3, 4, 4)
    pred = logits_of(model, x).argmax(1)
    objective = TargetedCrossEntropy(model, pred)
    assert objective.success(x).all()
    sub = objective.select(torch.tensor([True, False, True, False, False, True]))
    torch.testing.assert_close(sub(x[[0, 2, 5]]), objective(x)[[0, 2, 5]])


def test_eps_zero_returns_input() -> None:
    model = _mlp()
    x = torch.rand(4, 3, 4, 4)
    x_adv = pgd_attack(model, x, torch.zeros(4, dtype=torch.long), norm="l2", eps=0.0, step_size=0.1, steps=5)
    assert torch.equal(x_adv, x) and x_adv is not x


def test_attack_mode_nested_restores_outer_state() -> None:
    model = _probe_model().train()
    with attack_mode(model):
        with attack_mode(model):
            pass
        assert not any(m.training for m in model.modules())
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"norm": "l1"}, "norm"),
        ({"eps": -0.1}, "eps"),
        ({"step_size": 0.0}, "step_size"),
        ({"steps": -1}, "steps"),
        ({"restarts": 0}, "restarts"),
        ({"eps": None}, "random_start"),
    ],
)
def test_bad_settings_raise(kwargs: dict, field: str) -> None:
    settings = {"norm": "l2", "eps": 0.5, "step_size": 0.1, "steps": 2} | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        pgd_attack(_mlp(), torch.rand(2, 3, 4, 4), torch.zeros(2, dtype=torch.long), **settings)
