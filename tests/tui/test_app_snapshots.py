"""Snapshots of the pipeline, monitor and help screens at 80x24 and 120x40 on ``fake_project``'s fixed data.

The pipeline screen lists dvc.yaml's stages: when dvc.yaml changes, review and update these snapshots
(``pytest tests/tui/test_app_snapshots.py --snapshot-update``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from advtui.tui.app import AdvtuiApp
from pilots import settle

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_pipeline(fake_project: Path, snap_compare, size: tuple[int, int]) -> None:
    async def ready(pilot) -> None:
        await settle(pilot, rounds=3)  # dvc status has answered

    assert snap_compare(AdvtuiApp(fake_project), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_monitor_replay(fake_project: Path, snap_compare, size: tuple[int, int]) -> None:
    async def replay(pilot) -> None:
        await pilot.press("m")
        await settle(pilot)
        pilot.app.screen.watch_stage("retrain@D_R")
        await settle(pilot)

    assert snap_compare(AdvtuiApp(fake_project), terminal_size=size, run_before=replay)


def test_monitor_progress(fake_project: Path, snap_compare) -> None:
    async def replay(pilot) -> None:
        await pilot.press("m")
        await settle(pilot)
        pilot.app.screen.watch_stage("construct@D_det")
        await settle(pilot)

    assert snap_compare(AdvtuiApp(fake_project), terminal_size=(80, 24), run_before=replay)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(fake_project: Path, snap_compare, size: tuple[int, int]) -> None:
    async def ready(pilot) -> None:
        await settle(pilot)

    assert snap_compare(AdvtuiApp(fake_project), terminal_size=size, press=["question_mark"], run_before=ready)
