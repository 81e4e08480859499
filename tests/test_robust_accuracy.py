"""robust_accuracy: per-point worst case over attacks, checked against closed form on linear models."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from advtui.catalog.attacks import AttackSpec
from advtui.attacks.autoattack import run_autoattack
from advtui.attacks.driver import attack_standing
from advtui.attacks.robust_accuracy import PgdChunks, RobustResult, robust_accuracy, spec_names
from advtui.attacks.pgd import pgd_attack
from advtui.files import STALE
from linear_ground_truth import interior_points, linear_model, predict, untargeted_distance

SHAPE = (1, 4, 4)



Case = tuple[nn.Sequential, torch.Tensor, torch.Tensor, dict[str, AttackSpec], dict[str, torch.Tensor]]


def two_competitor_case(n: int | None = None) -> Case:
    """A 3-class linear model whose L2 and Linf robust sets are not nested, with exact answers.

    Class 0 (logit 0) competes with class 1 (weights spread evenly over all 16 pixels: near in Linf,
    ||w||_1 = 4 ||w||_2) and class 2 (weight on one pixel: ||w||_1 = ||w||_2). Every kept point is
    predicted 0, outside the +-5% band around each eps, and for each norm farther than 2 eps from the
    competitor that is not its nearest, so PGD faces a single hyperplane and the closed form is exact.
    10% of the labels are wrong (never robust). Returns the model, x, y, one PGD spec per norm and
    the exact per-point robustness per norm.
    """
    alpha = 50.0  # logit scale: the far competitor's probability stays negligible inside the ball
    lin = nn.Linear(16, 3)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[1], lin.bias[1] = alpha / 4, -2 * alpha
        lin.weight[2, 0], lin.bias[2] = alpha, -0.72 * alpha
    model = nn.Sequential(nn.Flatten(), lin)
    eps = {"l2": 0.12, "linf": 0.035}
    x = interior_points(4000, SHAPE, seed=1)
    x = x[predict(model, x) == 0]
    logits = model(x).detach()
    w = lin.weight.detach()
    dist = {  # per norm, distance to the class-1 and class-2 boundaries
        norm: torch.stack([-logits[:, j] / w[j].norm(p=p) for j in (1, 2)], 1) for norm, p in (("l2", 2), ("linf", 1))
    }
    keep = torch.ones(len(x), dtype=torch.bool)
    for norm, d in dist.items():
        nearest, other = d.min(1).values, d.max(1).values
        keep &= ((nearest <= eps[norm] / 1.05) | (nearest >= eps[norm] / 0.95)) & (other >= 2 * eps[norm])
    x = x[keep][:n]
    wrong = torch.arange(len(x)) % 10 == 3
    y = torch.where(wrong, 1, 0)
    specs = {norm: AttackSpec(kind="pgd", norm=norm, eps=e, steps=30, step_size=e / 4) for norm, e in eps.items()}
    truth = {norm: ~wrong & (d[keep][:n].min(1).values > eps[norm]) for norm, d in dist.items()}
    return model, x, y, specs, truth


def test_matches_closed_form_and_worst_case_is_per_point() -> None:
    model, x, y, specs, truth = two_competitor_case()
    n = len(x)
    assert n > 500 and n % 64 != 0  # a last partial batch
    assert (truth["l2"] & ~truth["linf"]).sum() > 3 and (truth["linf"] & ~truth["l2"]).sum() > 3
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    single = {norm: robust_accuracy(model, x, y, [spec], batch_size=64, generator=g()) for norm, spec in specs.items()}
    for norm, result in single.items():
        assert result.n == n
        assert torch.equal(result.robust, truth[norm])
        assert result.clean_acc == pytest.approx(1 - (torch.arange(n) % 10 == 3).sum().item() / n)
    both = robust_accuracy(model, x, y, [specs["l2"], specs["linf"]], batch_size=64, generator=g())
    assert torch.equal(both.robust, truth["l2"] & truth["linf"])
    assert both.robust_acc < min(r.robust_acc for r in single.values())  # the two norms break different points
    assert list(both.per_attack.values()) == [single["l2"].robust_acc, both.robust_acc]
    assert torch.equal(both.clean, y == predict(model, x))


def test_active_set_breaks_the_same_points_as_fixed_k_pgd_with_fewer_passes() -> None:
    """Issue 13 item 2: a point leaves the batch at the step that breaks it. The same points stay robust as under
    fixed-k PGD (every point runs every step; same seeds), the closed form's, at fewer gradient passes. Fixed-k
    costs exactly one gradient pass per step and point attacked, plus the clean pass and one verdict pass:
    nothing scores the final iterates twice."""
    model, x, y, specs, truth = two_competitor_case()
    passes: list[tuple[int, bool]] = []
    model.register_forward_pre_hook(lambda m, inputs: passes.append((inputs[0].shape[0], inputs[0].requires_grad)))
    for norm, spec in specs.items():
        result, work = {}, {}
        for active in (False, True):
            passes.clear()
            attack = PgdChunks(model, spec, spec.name, active_set=active)
            result[active] = attack_standing(model, x, y, [attack], batch_size=64, seed=0)
            work[active] = (sum(n for n, grad in passes if not grad), sum(n for n, grad in passes if grad))
        assert torch.equal(result[True].robust, result[False].robust)
        assert torch.equal(result[True].robust, truth[norm])
        n, attacked = len(x), int(result[False].clean.sum())
        assert work[False] == (n + attacked, spec.steps * attacked)
        assert work[True][0] == n + attacked and work[True][1] < 0.8 * work[False][1]


def _recorder(calls: list[tuple[int, int, float]], phase: str = "attack"):
    """A progress callback (the one protocol) that keeps (done, total, robust_acc) of every call."""

    def on_progress(p: str, done: int, total: int, **info: object) -> None:
        assert p == phase
        calls.append((done, total, info["robust_acc"]))

    return on_progress


def test_progress_is_monotone_and_complete() -> None:
    model, x, y, specs, truth = two_competitor_case(100)
    calls: list[tuple[int, int, float]] = []
    result = robust_accuracy(model, x, y, list(specs.values()), batch_size=32, on_progress=_recorder(calls, "attack l2"),
                             phase="attack l2")
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (200, 200)
    assert all(c[1] == 200 for c in calls)
    # the robust accuracy shown is the true one so far: once the L2 attack has settled all 100 points, the
    # exact L2 robust fraction; at the end, the exact fraction robust under both norms
    acc_at = {d: acc for d, _, acc in calls}
    assert acc_at[100] == truth["l2"].float().mean().item()
    assert acc_at[200] == (truth["l2"] & truth["linf"]).float().mean().item() == result.robust_acc


class Interrupt(Exception):
    """Raised from a progress callback: the run stops as a killed stage would, after a checkpoint."""


def resume_case() -> tuple[Case, list[AttackSpec], RobustResult]:
    """The two-competitor case on 100 points, its L2 and Linf specs in that order, and an uninterrupted run."""
    case = two_competitor_case(100)
    model, x, y, specs, _ = case
    spec_list = [specs["l2"], specs["linf"]]
    return case, spec_list, robust_accuracy(model, x, y, spec_list, batch_size=16,
                                            generator=torch.Generator().manual_seed(0))


def test_resume_from_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (model, x, y, specs, truth), spec_list, reference = resume_case()
    calls: list[int] = []

    def stop_on_fourth(phase: str, done: int, total: int, **info: object) -> None:
        calls.append(done)
        if len(calls) == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        robust_accuracy(model, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                        on_progress=stop_on_fourth, state_dir=tmp_path)
    resumed_calls: list[int] = []
    resumed = robust_accuracy(model, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                              on_progress=lambda phase, done, total, **info: resumed_calls.append(done),
                              state_dir=tmp_path)
    assert resumed_calls[0] > calls[2]  # batches finished before the interruption were not redone
    assert torch.equal(resumed.robust, reference.robust)
    assert torch.equal(resumed.robust, truth["l2"] & truth["linf"])
    assert resumed.per_attack == reference.per_attack
    # the file of another evaluation (other labels) is discarded with one line, never resumed
    fresh = robust_accuracy(model, x, 1 - y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0))
    capsys.readouterr()
    other = robust_accuracy(model, x, 1 - y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                            state_dir=tmp_path)
    assert capsys.readouterr().err == f"{tmp_path / 'robust_accuracy.pt'}: {STALE}\n"
    assert torch.equal(other.robust, fresh.robust) and other.per_attack == fresh.per_attack


def test_a_resume_file_of_other_model_weights_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: an evaluation killed on one model and rerun on a retrained one (same params, other weights)
    starts over. The second model has the first's weights in another order (class 2 reads pixel 1 instead of
    pixel 0): their sum, which the resume key used to hold, is the same, so only the contents tell them apart."""
    (model, x, y, specs, truth), spec_list, reference = resume_case()
    retrained = copy.deepcopy(model)
    with torch.no_grad():
        retrained[1].weight[2, [0, 1]] = retrained[1].weight[2, [1, 0]].clone()

    def stop_after_first_batch(phase: str, done: int, total: int, **info: object) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        robust_accuracy(model, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                        on_progress=stop_after_first_batch, state_dir=tmp_path)
    fresh = robust_accuracy(retrained, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0))
    capsys.readouterr()
    got = robust_accuracy(retrained, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                          state_dir=tmp_path)
    assert capsys.readouterr().err == f"{tmp_path / 'robust_accuracy.pt'}: {STALE}\n"
    assert torch.equal(got.robust, fresh.robust) and torch.equal(got.clean, fresh.clean)
    assert got.per_attack == fresh.per_attack
    assert not torch.equal(fresh.robust, reference.robust)  # the two models do differ


def test_resume_inside_a_later_attack_keeps_each_attacks_accuracy(tmp_path: Path) -> None:
    (model, x, y, specs, truth), spec_list, reference = resume_case()

    def stop_inside_the_second(phase: str, done: int, total: int, **info: object) -> None:
        if info["attack"] == specs["linf"].name and "batch" in info:
            raise Interrupt

    with pytest.raises(Interrupt):
        robust_accuracy(model, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(0),
                        on_progress=stop_inside_the_second, state_dir=tmp_path)
    chunks: list[str] = []
    resumed = robust_accuracy(model, x, y, spec_list, batch_size=16, generator=torch.Generator().manual_seed(1),
                              state_dir=tmp_path,
                              on_progress=lambda phase, d, t, **info: chunks.append(info["attack"]) if "batch" in info else None)
    assert set(chunks) == {specs["linf"].name}  # the finished first attack was not run again
    # the first attack's accuracy is the one it ended with, not the accuracy after the second
    assert resumed.per_attack == reference.per_attack
    assert list(resumed.per_attack.values())[0] > resumed.robust_acc
    assert torch.equal(resumed.robust, truth["l2"] & truth["linf"])
    assert [p.name for p in tmp_path.iterdir()] == ["robust_accuracy.pt"]  # written atomically, no temp left


def test_autoattack_spec_only_adds_breaks_and_stays_sound() -> None:
    model = linear_model((3, 8, 8), 10, seed=2)
    x = interior_points(16, (3, 8, 8), seed=3)
    y = predict(model, x)
    dist = untargeted_distance(model, x, y, "linf")
    eps = dist.median().item()
    # one short PGD step from a random start: it leaves standing points well inside the exact distance
    pgd_spec = AttackSpec(kind="pgd", norm="linf", eps=eps, steps=1, step_size=eps / 4)
    aa_spec = AttackSpec(kind="autoattack", norm="linf", eps=eps, version="rand")
    pgd_only = robust_accuracy(model, x, y, [pgd_spec], batch_size=8, generator=torch.Generator().manual_seed(0))
    calls: list[tuple[int, int, float]] = []
    both = robust_accuracy(model, x, y, [pgd_spec, aa_spec], batch_size=8,
                           generator=torch.Generator().manual_seed(0), on_progress=_recorder(calls))
    assert (pgd_only.robust & ~both.robust).any()  # AutoAttack broke points PGD left standing
    assert both.robust[dist > eps].all()  # no attack beats the exact distance
    assert not both.robust[dist < eps / 1.05].any()
    assert list(both.per_attack) == [pgd_spec.name, aa_spec.name]
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][:2] == (32, 32)


def test_model_state_restored_and_batches_cover_everything() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.Linear(8, 3)).train()
    model[1].weight.requires_grad_(False)
    x, y = torch.rand(37, *SHAPE), torch.randint(0, 3, (37,))
    result = robust_accuracy(model, x, y, [AttackSpec(eps=0.2, steps=2, step_size=0.1)], batch_size=10)
    assert result.n == 37 and result.robust.shape == (37,)
    assert all(m.training for m in model.modules())
    assert [p.requires_grad for p in model.parameters()] == [False, True, True, True, True, True]
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert torch.equal(result.clean, predict(model, x) == y)


@pytest.mark.parametrize(
    ("field", "value"),
    [("kind", "fgsm"), ("norm", "l1"), ("eps", -0.5), ("eps", math.inf), ("steps", 0),
     ("step_size", 0.0), ("restarts", 0), ("version", "plus")],
)
def test_attack_spec_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        AttackSpec(**{field: value})


@pytest.mark.parametrize(("field", "value"), [("norm", "l1"), ("eps", -0.5), ("eps", math.nan), ("steps", 0),
                                              ("step_size", -1.0), ("restarts", 0)])
def test_one_rule_for_every_way_in(field: str, value: object) -> None:
    """A spec, the PGD loop and the AutoAttack adapter refuse the same settings with the same message."""
    model = linear_model(SHAPE, 10, seed=0)
    x, y = torch.rand(4, *SHAPE), torch.zeros(4, dtype=torch.long)
    settings = {"norm": "l2", "eps": 0.1, "steps": 2, "step_size": 0.05, "restarts": 1} | {field: value}
    attempts = [lambda: AttackSpec(kind="pgd", **settings), lambda: pgd_attack(model, x, y, **settings)]
    if field in ("norm", "eps"):  # AutoAttack has no steps, step size or restarts of ours
        attempts.append(lambda: run_autoattack(model, x, y, norm=settings["norm"], eps=settings["eps"],
                                               version="standard", batch_size=4))
    messages = []
    for attempt in attempts:
        with pytest.raises(ValueError) as error:
            attempt()
        messages.append(str(error.value))
    assert len(set(messages)) == 1 and messages[0].startswith(f"{field}:")


def test_spec_names_are_unique_and_readable() -> None:
    a = AttackSpec(kind="pgd", norm="linf", eps=8 / 255, steps=10, restarts=5)
    b = AttackSpec(kind="autoattack", norm="l2", eps=0.5)
    assert a.name == "pgd10x5-linf-eps0.0313725"
    assert b.name == "aa-standard-l2-eps0.5"
    assert spec_names([a, b, a]) == [a.name, b.name, a.name + "#2"]


def test_bad_inputs_raise() -> None:
    model = linear_model(SHAPE, 2, seed=0)
    with pytest.raises(ValueError, match="^x:"):
        robust_accuracy(model, torch.zeros(0, *SHAPE), torch.zeros(0, dtype=torch.long), [AttackSpec()])
    with pytest.raises(ValueError, match="^y:"):
        robust_accuracy(model, torch.rand(3, *SHAPE), torch.zeros(2, dtype=torch.long), [AttackSpec()])
