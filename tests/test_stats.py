"""The interval arithmetic of :mod:`advtui.stats` against values worked out by hand (issue 12 item 1)."""

from __future__ import annotations

import pytest

from advtui.stats import interval95, summarise_runs


def test_student_t_interval_matches_hand_computed_values():
    # 0.80, 0.82, 0.84: mean 0.82, s = 0.02, t(0.975; 2) = 4.302653 -> half-width 4.302653 * 0.02 / sqrt(3)
    lo, hi = interval95([0.80, 0.82, 0.84])
    assert lo == pytest.approx(0.82 - 0.0496828, abs=1e-6) and hi == pytest.approx(0.82 + 0.0496828, abs=1e-6)
    # 1, 2, 3, 4: mean 2.5, s = 1.290994, t(0.975; 3) = 3.182446 -> half-width 3.182446 * 1.290994 / 2
    assert interval95([1.0, 2.0, 3.0, 4.0]) == pytest.approx([2.5 - 2.054260, 2.5 + 2.054260], abs=1e-6)
    # two runs: t(0.975; 1) = 12.706205, s = |a - b| / sqrt(2) -> half-width 12.706205 * 0.1 / 2
    assert interval95([0.5, 0.6]) == pytest.approx([0.55 - 0.6353102, 0.55 + 0.6353102], abs=1e-6)
    assert interval95([0.7, 0.7, 0.7]) == pytest.approx([0.7, 0.7])  # no spread: no width
    assert interval95([0.9]) is None and interval95([]) is None  # one run says nothing about the spread


def test_runs_summarise_to_their_mean_with_each_seed_and_interval():
    rows = [{"n": 1000, "clean_acc": acc, "per_attack_l2": {"pgd": robust}, "attacks": {"l2": ["pgd"]}}
            for acc, robust in ((0.80, 0.5), (0.82, 0.6), (0.84, 0.7))]
    summary = summarise_runs(rows, [4, 5, 6])
    assert summary["clean_acc"] == pytest.approx(0.82) and summary["per_attack_l2"]["pgd"] == pytest.approx(0.6)
    assert summary["n"] == 1000 and summary["attacks"] == {"l2": ["pgd"]}  # counts and settings kept
    assert summary["seeds"] == [4, 5, 6] and summary["per_seed"] == {"clean_acc": [0.80, 0.82, 0.84]}
    assert summary["ci95"]["clean_acc"] == pytest.approx(interval95([0.80, 0.82, 0.84]))
    one = summarise_runs(rows[:1], [4])
    assert one["clean_acc"] == 0.80 and one["ci95"] == {"clean_acc": None}
    with pytest.raises(ValueError, match="^n: differs between runs"):
        summarise_runs([rows[0], {**rows[1], "n": 999}], [4, 5])
