"""The pyautoattack adapter: soundness against closed form, not weaker than PGD, progress, resume, 'rand'."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from advtui.attacks.autoattack import run_autoattack
from advtui.attacks.pgd import pgd_attack
from advtui.files import STALE
from linear_ground_truth import (
    assert_linf_box_ground_truth,
    corner_points,
    interior_points,
    linear_model,
    perturbation_norm,
    predict,
    untargeted_distance,
)

SHAPE = (3, 8, 8)
FAST = ("apgd-ce", "apgd-t")  # the standard version's gradient attacks; FAB-T and Square take ~10 s more



@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_sound_and_not_weaker_than_pgd(norm: str) -> None:
    model = linear_model(SHAPE, 10, seed=0)
    x = interior_points(16, SHAPE, seed=1)
    y = predict(model, x)
    y[0] = (y[0] + 1) % 10  # one point misclassified clean: never robust
    dist = untargeted_distance(model, x, predict(model, x), norm)
    eps = dist.median().item()
    records: list[dict] = []
    result = run_autoattack(
        model, x, y, norm=norm, eps=eps, version="standard", batch_size=8, attacks=FAST,
        on_progress=lambda phase, done, total, **info: records.append({"phase": phase, "done": done, "total": total, **info}),
    )
    assert result.clean_acc == 15 / 16
    assert (perturbation_norm(result.x_adv, x, norm) <= eps + 1e-4).all()
    assert (predict(model, result.x_adv)[~result.robust] != y[~result.robust]).all()
    assert result.robust[dist > eps].all()  # nobody beats the exact distance
    assert not result.robust[dist < eps / 1.05].any()  # and it finds the nearest boundary
    x_pgd = pgd_attack(
        model, x, y, norm=norm, eps=eps, step_size=eps / 4, steps=20, generator=torch.Generator().manual_seed(0)
    )
    pgd_robust = predict(model, x_pgd) == y
    assert result.robust_acc <= pgd_robust.float().mean().item()
    assert list(result.per_attack) == list(FAST)
    assert result.per_attack["apgd-t"] == result.robust_acc  # the last attack's entry is the final accuracy
    chunks = [r for r in records if "part" in r]
    assert [(r["part"], r["batch"]) for r in chunks][:2] == [("apgd-ce", 1), ("apgd-ce", 2)]
    assert {r["part"] for r in chunks} == set(FAST)  # every attack of the package reports its chunks
    done = [r["done"] for r in records]
    assert done == sorted(done) and records[-1]["done"] == records[-1]["total"] == 16
    assert all(r["phase"] == "autoattack" for r in records)
    assert records[-1]["robust_acc"] == result.robust_acc
    assert torch.equal(result.clean, predict(model, x) == y)


def test_clipped_to_the_box_where_it_binds() -> None:
    """Images with every pixel on a face of [0, 1]: AutoAttack's images stay in the box and break exactly what
    the box-aware closed form allows (APGD-CE alone: APGD-T needs 4 classes, and a binary model has 2)."""
    model = linear_model(SHAPE, 2, seed=9)
    x = corner_points(200, SHAPE, seed=10)
    y = predict(model, x)
    eps = untargeted_distance(model, x, y, "linf").median().item()
    result = run_autoattack(model, x, y, norm="linf", eps=eps, version="standard", batch_size=200, attacks=FAST[:1])
    assert_linf_box_ground_truth(model, x, y, eps, result.x_adv)


def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = linear_model(SHAPE, 10, seed=0)
    x = interior_points(16, SHAPE, seed=2)
    y = predict(model, x)
    eps = untargeted_distance(model, x, y, "l2").median().item()
    settings = dict(norm="l2", eps=eps, version="standard", batch_size=8, attacks=FAST)
    reference = run_autoattack(model, x, y, **settings)
    state = tmp_path / "aa.pt"

    class Interrupt(Exception):
        pass

    def stop_after_first_batch(phase: str, done: int, total: int, **info: object) -> None:
        raise Interrupt

    with pytest.raises(Interrupt):
        run_autoattack(model, x, y, **settings, state_path=state, on_progress=stop_after_first_batch)
    assert state.exists()
    records: list[dict] = []
    resumed = run_autoattack(model, x, y, **settings, state_path=state,
                             on_progress=lambda phase, done, total, **info: records.append(info))
    ours = [(r["part"], r["batch"], r["n_batches"]) for r in records if "part" in r]
    assert ours[0] == ("apgd-ce", 1, 1)  # the first batch was not attacked again
    assert torch.equal(resumed.robust, reference.robust)
    torch.testing.assert_close(resumed.x_adv, reference.x_adv)
    assert resumed.per_attack == reference.per_attack
    # the file of another evaluation (other data) is discarded with one line, never resumed
    fresh = run_autoattack(model, x.flip(0), y.flip(0), **settings)
    capsys.readouterr()
    other = run_autoattack(model, x.flip(0), y.flip(0), **settings, state_path=state)
    assert capsys.readouterr().err == f"{state}: {STALE}\n"
    assert torch.equal(other.robust, fresh.robust) and other.per_attack == fresh.per_attack


class NoisyLinear(nn.Module):
    """A randomised defence: Gaussian noise on the input at every forward pass, in eval mode too."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = linear_model(SHAPE, 10, seed=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x + 0.02 * torch.randn_like(x))


def test_rand_version_on_a_randomised_model() -> None:
    model = NoisyLinear()
    x = interior_points(16, SHAPE, seed=3)
    y = predict(model.inner, x)
    eps = 2 * untargeted_distance(model.inner, x, y, "linf").median().item()
    rng_before = torch.get_rng_state()
    result = run_autoattack(model, x, y, norm="linf", eps=eps, version="rand", batch_size=16)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the package's reseeding does not leak
    assert list(result.per_attack) == ["apgd-ce", "apgd-dlr"]
    assert (perturbation_norm(result.x_adv, x, "linf") <= eps + 1e-4).all()
    assert result.robust_acc < result.clean_acc
    assert result.robust_acc <= 0.25


def test_autoattack_returns_images_and_eps_zero_is_clean() -> None:
    model = linear_model(SHAPE, 10, seed=0)
    x = interior_points(4, SHAPE, seed=4)
    y = predict(model, x)
    x_adv = run_autoattack(model, x, y, norm="l2", eps=0.0, version="standard", batch_size=4).x_adv
    assert torch.equal(x_adv, x)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"norm": "l1"}, "norm"),
        ({"eps": -1.0}, "eps"),
        ({"version": "plus"}, "version"),
        ({"batch_size": 0}, "batch_size"),
        ({"attacks": ("fab",)}, "attacks"),
    ],
)
def test_bad_settings_raise(kwargs: dict, field: str) -> None:
    settings = dict(norm="l2", eps=0.1, version="standard", batch_size=4) | kwargs
    with pytest.raises(ValueError, match=f"^{field}:"):
        run_autoattack(
            linear_model(SHAPE, 10, seed=0), interior_points(4, SHAPE, seed=5), torch.zeros(4, dtype=torch.long),
            **settings,
        )


def test_impossible_attacks_for_the_model_raise() -> None:
    with pytest.raises(ValueError, match="^attacks: apgd-t needs at least 4 classes"):
        run_autoattack(linear_model(SHAPE, 3, seed=0), interior_points(4, SHAPE, seed=6),
                       torch.zeros(4, dtype=torch.long),
                       norm="l2", eps=0.1, version="standard", batch_size=4, attacks=FAST)
    small = nn.Sequential(nn.Flatten(), nn.Linear(16, 10))
    with pytest.raises(ValueError, match="^attacks: square"):
        run_autoattack(small, torch.rand(4, 1, 4, 4), torch.zeros(4, dtype=torch.long),
                       norm="l2", eps=0.1, version="standard", batch_size=4)


@pytest.mark.parametrize("version", ["standard", "rand"])
def test_the_catalogue_lists_each_versions_attacks_as_the_package_runs_them(version: str) -> None:
    from pyautoattack import AutoAttack

    from advtui.catalog.attacks import AUTOATTACK_PARTS

    package = AutoAttack(linear_model(SHAPE, 10, seed=0), norm="Linf", eps=0.1, version=version, device="cpu")
    assert tuple(package.attacks_to_run) == AUTOATTACK_PARTS[version]


def test_e6_skip_runs_only_the_kept_attacks_and_names_them() -> None:
    from advtui.attacks.robust_accuracy import robust_accuracy
    from advtui.catalog.attacks import AttackSpec
    from advtui.catalog.params import ThreatBudget

    budget = ThreatBudget(AttackSpec(norm="linf", eps=0.1, steps=5, step_size=0.02), 0.1,
                          autoattack_skip=("fab-t", "square"))
    (aa,) = budget.specs("standard")["autoattack_linf"]
    assert aa.parts == ("apgd-ce", "apgd-t") and aa.name == "aa-standard-apgd-ce+apgd-t-linf-eps0.1"
    (rand,) = budget.specs("rand")["autoattack_linf"]
    assert rand.parts == () and rand.name == "aa-rand-linf-eps0.1"  # nothing of 'rand' is skipped: all of it
    model = linear_model(SHAPE, 10, seed=0)
    x = interior_points(8, SHAPE, seed=7)
    result = robust_accuracy(model, x, predict(model, x), [aa], batch_size=8)
    assert list(result.per_part[aa.name]) == ["clean", "apgd-ce", "apgd-t"]


@pytest.mark.parametrize(("skip", "message"), [(("fab",), "not AutoAttack's"), (("apgd-ce",), "keep it")])
def test_e6_skip_refuses_unknown_or_essential_attacks(skip: tuple, message: str) -> None:
    from advtui.catalog.attacks import AttackSpec
    from advtui.catalog.params import ThreatBudget

    with pytest.raises(ValueError, match=f"^autoattack_skip: .*{message}"):
        ThreatBudget(AttackSpec(norm="linf", eps=0.1), 0.1, autoattack_skip=skip)
