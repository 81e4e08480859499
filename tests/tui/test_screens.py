"""Each of the app's own screens opens on a fresh clone (empty states with hints) and on fixed data."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from textual.widgets import DataTable, Static

from advtui.appcore import dvcstate
from advtui.catalog.names import PROFILES
from advtui.tui import app as app_module
from advtui.tui.app import AdvtuiApp
from advtui.tui.screens.monitor import FAST_POLL_S, IDLE_POLL_S, Reading, next_poll
from advtui.tui.threads import deliver
from advtui.tui.widgets.curves import CurvePlot

from pilots import settle, until
from tui_projects import EPOCHS, PROGRESS, STEPS_PER_EPOCH, curve


def _text(app: AdvtuiApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_every_screen_opens_on_a_fresh_clone(fresh_project: Path) -> None:
    app = AdvtuiApp(fresh_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#stages", DataTable)
        stages = dvcstate.load_stages(fresh_project)
        assert len(stages) >= 17  # E1 3, E2/E3 6, E4 7, report
        # every expanded stage, and a title row per experiment
        assert table.row_count == len(stages) + len(dvcstate.grouped(stages))
        assert "No run yet" in _text(app, "#run-status") and len(_text(app, "#run-status")) <= 78
        assert str(table.get_row("construct@D_det")[2]) == "never run"
        for key in "mrgep":
            await pilot.press(key)
            await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        assert "No stage is running" in _text(app, "#monitor-title")
        await pilot.press("c")  # nothing to replay: says so, opens nothing
        await pilot.pause()
        assert app.screen.__class__.__name__ == "MonitorScreen"
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_pipeline_states_and_param_changes(fake_project: Path) -> None:
    params = fake_project / "params.yaml"
    params.write_text(params.read_text().replace("steps: 50}    # D_rand", "steps: 60}    # D_rand"))
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#stages", DataTable)
        states = {key.value: str(table.get_row(key)[2]) for key in table.rows if not key.value.startswith("group:")}
        assert states["source@standard"] == "up to date"
        assert states["retrain@D_R"] == "never run"
        assert str(table.get_row("construct@D_rand")[4]) == "1 changed"
        assert str(table.get_row("construct@D_NR")[4]) == ""
        table.move_cursor(row=table.get_row_index("construct@D_det"))
        await pilot.pause()
        assert "construct.relabel.steps: 50 → 60" in _text(app, "#stage-detail")


async def test_a_read_that_ends_after_the_app_closed_is_dropped(fake_project: Path) -> None:
    """However late a worker's read ends (a loaded machine), it cannot fail the app by drawing into widgets
    that are gone: the late result is dropped."""
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        monitor = app.screen
    assert not app.is_running
    late = Reading("retrain@D_R", "a read that ended late", loss=[], acc=[])
    # as the read worker hands it over; drawing it would raise NoMatches (its widgets are gone)
    await asyncio.to_thread(deliver, app, monitor._apply, late)


async def test_monitor_replays_a_finished_stage(fake_project: Path) -> None:
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        app.screen.watch_stage("retrain@D_R")
        await settle(pilot)
        assert "retrain@D_R · replay" in _text(app, "#monitor-title")
        loss = app.screen.query_one("#loss-plot", CurvePlot)
        steps = [float(s) for s in range(STEPS_PER_EPOCH * EPOCHS)]
        assert loss.series[0] == ("train loss", steps, [curve(int(s))[0] for s in steps])
        acc = app.screen.query_one("#acc-plot", CurvePlot)
        assert [label for label, *_ in acc.series] == ["train acc", "test acc"]
        app.screen.watch_stage("construct@D_det")
        await settle(pilot)
        label = str(app.screen.query_one("#progress-label").render())
        assert f"{PROGRESS['done']}/{PROGRESS['total']}" in label and "robust acc 25.0%" in label


async def test_a_stage_whose_process_is_gone_reads_died(fake_project: Path) -> None:
    """Issue 11: a killed stage's progress file says "running" forever; the app checks the pid it names, and
    a row shown running from its progress file turns to died when that process ends."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    by_hand = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        running = {**PROGRESS, "stage": "retrain@D_R", "pid": by_hand.pid, "host": socket.gethostname(),
                   "started": 1.0}
        (fake_project / "data/progress/retrain-D_R.json").write_text(json.dumps(running))
        (fake_project / "data/progress/construct-D_det.json").write_text(json.dumps(running | {
            "stage": "construct@D_det", "pid": int(gone.stdout)}))
        app = AdvtuiApp(fake_project)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            table = app.screen.query_one("#stages", DataTable)
            assert str(table.get_row("construct@D_det")[2]) == "died"
            assert str(table.get_row("retrain@D_R")[2]) == "running"
            by_hand.stdin.close()  # the stage run by hand is killed
            by_hand.wait()
            await until(pilot, lambda: str(table.get_row("retrain@D_R")[2]) == "died", "the row to read died")
            await pilot.press("m")
            await settle(pilot)
            app.screen.watch_stage("construct@D_det")
            await settle(pilot)
            label = str(app.screen.query_one("#progress-label").render())
            assert f"died (pid {int(gone.stdout)} is gone); rerun the stage to resume" in label
    finally:
        by_hand.kill()
        by_hand.wait()


async def test_outside_a_project_says_where_to_start(tmp_path: Path) -> None:
    app = AdvtuiApp(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "no dvc.yaml here; start advtui in the project folder" in _text(app, "#run-status")
        await pilot.press("m")
        await settle(pilot)
        await pilot.press("q")
    assert app.return_code == 0


@pytest.mark.slow  # `advtui profile use` imports torch: seconds
async def test_switch_profile_from_the_pipeline_screen(fresh_project: Path) -> None:
    app = AdvtuiApp(fresh_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.screen.sub_title == "profile smoke"
        await pilot.press("u")
        await pilot.pause()
        assert type(app.screen).__name__ == "ChoiceDialog"
        # from smoke (active, highlighted, first) up, wrapping round past the profiles listed after cpu, to cpu
        await pilot.press(*["up"] * (len(PROFILES) - PROFILES.index("cpu")), "enter")
        await until(pilot, lambda: "profile: cpu" in (fresh_project / "params.yaml").read_text(),
                    what="params.yaml to hold the cpu profile")
        await until(pilot, lambda: app.screen.sub_title == "profile cpu", what="the sub-title")
        table = app.screen.query_one("#stages", DataTable)
        await until(pilot, lambda: str(table.get_row("source@standard")[4]).endswith("changed"),
                    what="changed params against the committed smoke profile")


async def test_the_screens_are_imported_after_the_first_frame_off_the_ui_thread(fake_project: Path,
                                                                                 monkeypatch) -> None:
    """No first visit to a screen (nor the help, which lists every screen's keys) waits for its imports: a
    worker imports them once the first frame is drawn."""
    loaded: dict[str, bool] = {}  # mode -> imported first on the UI thread
    screen_class = app_module.screen_class

    def recording(mode: str):
        loaded.setdefault(mode, threading.current_thread() is threading.main_thread())
        return screen_class(mode)

    monkeypatch.setattr(app_module, "screen_class", recording)
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert loaded == {mode: False for mode in app_module.available_modes()}


def test_the_monitor_polls_fast_while_files_change_and_backs_off_when_quiet() -> None:
    assert next_poll(IDLE_POLL_S, changed=True) == FAST_POLL_S <= 1 / 12  # > 10 frames/s while rows arrive
    waits = [FAST_POLL_S]
    for _ in range(6):
        waits.append(next_poll(waits[-1], changed=False))
    assert waits == sorted(waits) and waits[-1] == IDLE_POLL_S  # quiet: later and later, up to the idle wait
    assert IDLE_POLL_S >= 0.5  # idle: at most 2 polls a second (a fixed 4 Hz poll before)


async def test_the_monitor_draws_new_rows_and_slows_down_once_they_stop(fake_project: Path) -> None:
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        monitor = app.screen
        monitor.watch_stage("retrain@D_R")
        await until(pilot, lambda: monitor.interval == monitor.idle_s, "the replay to go quiet")
        loss = monitor.query_one("#loss-plot", CurvePlot)
        steps = STEPS_PER_EPOCH * EPOCHS
        with (fake_project / "data/live/E4/D_R/plots/metrics/train/loss.tsv").open("a") as tsv:
            tsv.write(f"{steps}\t0.01\n")
        await until(pilot, lambda: loss.series[0][1][-1] == steps, "the new row to be drawn")
        await until(pilot, lambda: monitor.interval == monitor.idle_s, "the poll to slow down again")


def _notices(app: AdvtuiApp) -> list[str]:
    """Every notice the app posts from now on. Recorded, not read from the app's notification list, which drops
    a notice once its few seconds on screen are over: on a loaded machine, before the test looks."""
    notes: list[str] = []
    post = app.notify

    def record(message: str, *args, **kwargs):
        notes.append(str(message))
        return post(message, *args, **kwargs)

    app.notify = record  # type: ignore[method-assign]
    return notes


async def test_no_run_starts_outside_a_project(tmp_path: Path) -> None:
    app = AdvtuiApp(tmp_path)
    notices = _notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert app.current_run is None and not (tmp_path / ".advtui").exists()
        assert any(n.startswith(f"no dvc.yaml in {tmp_path}: nothing to run") for n in notices)


async def test_a_broken_params_file_is_reported_before_any_run(fresh_project: Path) -> None:
    """The CLI's own one-line check of params.yaml, before dvc starts a stage that would fail on it."""
    params = fresh_project / "params.yaml"
    params.write_text(params.read_text().replace("  seeds: 3 ", "  seeds: three "))
    app = AdvtuiApp(fresh_project)
    notices = _notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert app.current_run is None and not (fresh_project / ".advtui" / "runs").exists()
        assert f"{params}: retrain.seeds: expected an integer, got 'three'; fix the value in params.yaml" in notices


async def test_the_monitor_exports_the_curves_shown_as_data_and_figures(fake_project: Path) -> None:
    app = AdvtuiApp(fake_project)
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("m")
        await settle(pilot)
        app.screen.watch_stage("retrain@D_R")
        await settle(pilot)
        app.notify = lambda message, **kwargs: notes.append(message)
        await pilot.press("x")
        await until(pilot, lambda: app.screen.query("OptionList"), "the format dialog")
        await pilot.press("enter")  # CSV: a row per point
        await until(pilot, lambda: notes, "the table")
        await pilot.press("x")
        await until(pilot, lambda: app.screen.query("OptionList"), "the format dialog")
        await pilot.press("down", "down", "down", "down", "enter")  # SVG: a figure per plot
        await until(pilot, lambda: len(notes) == 2, "the figures")
    exports = ".advtui/exports/monitor_retrain_D_R"
    assert notes == [f"Wrote {exports}.csv", f"Wrote {exports}_loss.svg, {exports}_accuracy.svg"]
    rows = (fake_project / f"{exports}.csv").read_text().splitlines()
    assert rows[0] == "plot,line,x,y" and rows[1] == f"loss,train loss,0,{curve(0)[0]:.6g}"
    assert (fake_project / f"{exports}_accuracy.svg").read_text().count("<svg") == 1
