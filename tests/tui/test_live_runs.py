"""Runs started from the app on a real DVC project (a quick stand-in stage): state, curves and progress
move, a run stops cleanly, and a new app re-attaches to a run the previous one left going.

The stand-in stage is held at the points a test looks at (``pilots.hold``), so each state is there to be
seen however slowly the machine runs the app, DVC or the stage."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from textual.widgets import DataTable, Label, Log

from advtui.appcore import runs
from advtui.tui.app import AdvtuiApp
from advtui.tui.widgets.curves import CurvePlot
from pilots import hold, settle, until, until_exits
from tui_projects import TINY_STEPS

pytestmark = pytest.mark.slow  # each runs a real (stand-in) stage under DVC for a few seconds


def _state(app: AdvtuiApp, stage: str) -> str:
    table = app.get_screen("pipeline").query_one("#stages", DataTable) if app.current_mode != "pipeline" else \
        app.screen.query_one("#stages", DataTable)
    return str(table.get_row(stage)[2])


def _loss_points(app: AdvtuiApp) -> int:
    series = app.screen.query_one("#loss-plot", CurvePlot).series
    return len(series[0][1]) if series else 0


async def _start(pilot, stage: str) -> None:
    table = pilot.app.screen.query_one("#stages", DataTable)
    table.move_cursor(row=table.get_row_index(stage))
    await pilot.press("enter")


async def test_run_a_stage_and_watch_it_finish(tiny_project: Path) -> None:
    training, attacking = hold(tiny_project, "tiny", "train"), hold(tiny_project, "tiny", "attack")
    app = AdvtuiApp(tiny_project, poll_s=0.1)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert _state(app, "retrain@tiny") == "never run"
        await _start(pilot, "retrain@tiny")
        await until(pilot, lambda: _state(app, "retrain@tiny") == "running", what="state running")
        await pilot.press("m")
        # held after half its steps: the curve shows exactly those, and the training progress
        await until(pilot, lambda: _loss_points(app) == TINY_STEPS // 2, what="first curve points")
        first = _loss_points(app)
        assert first < TINY_STEPS
        label = app.screen.query_one("#progress-label", Label)
        await until(pilot, lambda: "train: " in str(label.render()), what="training progress")
        training.unlink()
        await until(pilot, lambda: _loss_points(app) > first, what="the curve to grow")
        await until(pilot, lambda: "attack l2" in str(label.render()), what="attack progress")
        attacking.unlink()
        await until(pilot, lambda: not runs.is_alive(app.current_run), what="the run to end")
        await until(pilot, lambda: _loss_points(app) == TINY_STEPS, what="every step on the curve")
        await pilot.press("p")
        await until(pilot, lambda: _state(app, "retrain@tiny") == "up to date", what="state up to date")
        assert _state(app, "retrain@quick") == "never run"
        last_run = str(app.screen.query_one("#stages", DataTable).get_row("retrain@tiny")[3])
        assert last_run.endswith("s") and last_run != "—"
        await pilot.press("l")  # the stage's log
        await until(pilot, lambda: type(app.screen).__name__ == "LogScreen", what="the log screen")
        log = app.screen.query_one(Log)
        await until(pilot, lambda: any("Running stage 'retrain@tiny'" in line for line in log.lines), what="log")
        assert any(line.startswith("step 0 loss") for line in log.lines)
        await pilot.press("escape")
        await pilot.press("q")  # nothing live: quits at once


async def test_stop_then_reattach_from_a_new_app(tiny_project: Path) -> None:
    hold(tiny_project, "tiny", "train")  # never released: each run is live until it is stopped
    first = AdvtuiApp(tiny_project, poll_s=0.1)
    async with first.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        await _start(pilot, "retrain@tiny")
        await until(pilot, lambda: _state(first, "retrain@tiny") == "running", what="state running")
        await pilot.press("s")
        record_file = runs.record_path(tiny_project, first.current_run.id)
        await until(pilot, lambda: runs.outcome(runs.RunRecord.load(record_file)) == "stopped", what="the run to stop")
        await until(pilot, lambda: _state(first, "retrain@tiny") == "stopped", what="state stopped")
        stopped = runs.RunRecord.load(runs.record_path(tiny_project, first.current_run.id))
        assert stopped.stopped_by == signal.SIGINT
        # run again, then quit leaving it running
        await _start(pilot, "retrain@tiny")
        await until(pilot, lambda: _state(first, "retrain@tiny") == "running", what="second run")
        record = first.current_run
        await pilot.press("q")
        await until(pilot, lambda: type(first.screen).__name__ == "QuitDialog", what="the quit dialog")
        await pilot.press("l")
    assert runs.is_alive(record), "quitting with 'leave' must not stop the run"
    runs._CHILDREN.clear()  # a new advtui process knows the run only from its record and /proc
    second = AdvtuiApp(tiny_project, poll_s=0.1)
    async with second.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert second.attached and second.current_run.id == record.id
        await until(pilot, lambda: _state(second, "retrain@tiny") == "running", what="re-attached state")
        await pilot.press("m")
        await until(pilot, lambda: _loss_points(second) >= 3, what="re-attached curves")
        await pilot.press("q")
        await until(pilot, lambda: type(second.screen).__name__ == "QuitDialog", what="the quit dialog")
        await pilot.press("s")  # stop it and quit
        await until_exits(second)  # once the run has stopped: the app quits by itself
    assert second.return_code == 0 and not runs.is_alive(record)
    final = runs.RunRecord.load(runs.record_path(tiny_project, record.id))
    assert runs.outcome(final) == "stopped"  # held mid-way, it cannot have finished first
