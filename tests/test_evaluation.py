"""A classifier's metrics row: where two evaluations share a norm (E6's PGD and AutoAttack columns), the
per-point worst case of both (DESIGN section 9), which no single column gives."""

from __future__ import annotations

import torch

from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.data.imageset import ImageSet
from advtui.experiments.evaluation import evaluate_classifier
from linear_ground_truth import interior_points, linear_model, predict

SHAPE = (3, 4, 4)


def test_worst_case_of_two_evaluations_under_one_norm_is_the_and_of_their_points() -> None:
    model = linear_model(SHAPE, 4, seed=3, scale=3.0)
    x = interior_points(300, SHAPE, seed=4)
    y = predict(model, x)
    weak = AttackSpec(kind="pgd", norm="l2", eps=0.1, steps=1, step_size=0.1)  # one step: misses many points
    strong = AttackSpec(kind="pgd", norm="l2", eps=0.1, steps=30, step_size=0.01)
    threats = {"pgd_l2": [weak], "other_l2": [strong], "linf": [AttackSpec(norm="linf", eps=0.01, steps=5, step_size=0.005)]}
    row = evaluate_classifier(model, ImageSet(x, y, classes=list("abcd")), threats, batch_size=64,
                              device=torch.device("cpu"), seed=7)
    flags = [robust_accuracy(model, x, y, [spec], batch_size=64, generator=torch.Generator().manual_seed(7)).robust
             for spec in (weak, strong)]
    expected = (flags[0] & flags[1]).float().mean().item()
    assert row["robust_acc_worst_l2"] == expected
    assert "robust_acc_worst_linf" not in row  # one evaluation alone has no worst case to add
