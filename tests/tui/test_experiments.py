"""The Experiments screen: `dvc exp show --json` parsed into runs, compared in one sortable table."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from advtui.appcore import expshow
from advtui.appcore.expshow import comparison, parse_exp_show, run_exp_show
from advtui.tui.screens.experiments import ExperimentsScreen
from advtui.tui.widgets.table import ResultsTable
from screenhost import ScreenHost, settle

pytestmark = pytest.mark.anyio

#: Recorded from DVC 3.67 on a two-stage repo after `dvc exp run -S construct.relabel.steps=200 -n steps200`
#: and `-S construct.relabel.eps=1.0 -n eps1`, plus a failed experiment as DVC reports one.
PAYLOAD = json.loads((Path(__file__).parent / "exp_show.json").read_text())


def test_parse_keeps_every_run_with_its_params_and_metrics():
    runs = parse_exp_show(PAYLOAD)
    assert [(r.name, r.state, r.baseline) for r in runs] == [
        ("workspace", "workspace", None), ("master", "commit", None), ("eps1", "success", "master"),
        ("steps200", "success", "master"), ("broken", "failed", "master")]
    master, eps1, steps200, broken = runs[1:]
    assert master.params["construct.relabel.steps"] == 50 and steps200.params["construct.relabel.steps"] == 200
    assert eps1.params["construct.relabel.eps"] == 1.0
    assert steps200.metrics["E4/natural:clean_acc"] == pytest.approx(0.7) and master.metrics["E4/D_det:clean_acc"] == 0.55
    assert master.timestamp == "11-27 10:00"
    assert broken.error == "failed to reproduce 'retrain@D_det'" and broken.params == {}


def test_comparison_shows_the_changed_params_and_the_accuracies():
    table = comparison(parse_exp_show(PAYLOAD))
    keys = [c.key for c in table.columns]
    assert keys[:3] == ["name", "state", "created"]
    assert [k for k in keys if k.startswith("p:")] == ["p:construct.relabel.steps", "p:construct.relabel.eps"]  # not seed
    assert [k for k in keys if k.startswith("m:")] == [
        "m:E4/natural:clean_acc", "m:E4/natural:robust_acc_l2", "m:E4/D_det:clean_acc", "m:E4/D_det:robust_acc_l2"]
    steps200 = next(r for r in table.rows if r["name"] == "└ steps200")
    assert table.cells(steps200)[3:6] == ["200", "0.5", "70.0"]
    assert "broken: failed to reproduce 'retrain@D_det'" in table.legend
    every = comparison(parse_exp_show(PAYLOAD), all_columns=True)
    assert {"p:seed", "m:E4/natural:n"} <= {c.key for c in every.columns}


def test_parse_rejects_what_is_not_exp_show_output():
    with pytest.raises(ValueError, match="upgrade DVC"):
        parse_exp_show({"workspace": {}})


def test_dvc_outside_a_repository_gives_a_one_line_reason(tmp_path):
    with pytest.raises(RuntimeError, match="dvc exp show failed: .*DVC repository"):
        run_exp_show(tmp_path)


def test_a_cancelled_read_stops_dvc_at_once(fresh_project, monkeypatch):
    """A cancelled read kills DVC rather than waiting for it: told by how DVC ended, not by a clock."""
    started: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(expshow.subprocess, "Popen", Recorded)
    with pytest.raises(RuntimeError, match="stopped"):
        run_exp_show(fresh_project, cancelled=lambda: True)
    (dvc,) = started
    assert dvc.returncode == -signal.SIGKILL  # killed mid-run (DVC alone takes seconds)


async def test_fresh_clone_has_no_experiments_and_says_how_to_run_one(fresh_project):
    app = ScreenHost(lambda: ExperimentsScreen(fresh_project))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)  # runs the real `dvc exp show --json`
        status = app.screen.query_one("#exp-status")
        assert status.display and "dvc exp run -S" in str(status.render())
        table = app.screen.query_one(ResultsTable)
        assert table.row_order == ["workspace", "main"]


@pytest.fixture
def recorded(monkeypatch):
    """Answer `dvc exp show` with the recorded payload (no DVC run)."""
    monkeypatch.setattr("advtui.tui.screens.experiments.run_exp_show", lambda root, **_: parse_exp_show(PAYLOAD))


async def test_runs_side_by_side_sort_and_toggle_columns(tmp_path, recorded):
    app = ScreenHost(lambda: ExperimentsScreen(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#exp-status").display  # there are experiments: no hint
        table = app.screen.query_one(ResultsTable)
        assert table.row_order == ["workspace", "master", "└ eps1", "└ steps200", "└ broken"]
        await pilot.press("right", "right", "right", "s")  # by relabel.steps
        await pilot.pause()
        assert table.row_order == ["master", "workspace", "└ eps1", "└ steps200", "└ broken"]  # no value: last
        narrow = len(table.columns)
        await pilot.press("a")
        await pilot.pause()
        assert len(table.columns) > narrow
        await pilot.press(*["right"] * 8, "a")  # back, with the cursor past the narrow table's last column
        await pilot.pause()
        assert len(table.columns) == narrow and table.cursor_column < narrow


def test_snapshot_80x24(tmp_path, recorded, snap_compare):
    assert snap_compare(ScreenHost(lambda: ExperimentsScreen(tmp_path)), terminal_size=(80, 24))


def test_snapshot_120x40(tmp_path, recorded, snap_compare):
    assert snap_compare(ScreenHost(lambda: ExperimentsScreen(tmp_path)), terminal_size=(120, 40))
