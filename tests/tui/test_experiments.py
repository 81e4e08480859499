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


# --- comparing runs: baseline, filter, metric against param, curves overlay, export; starting experiments ---

from advtui.appcore import exprun, runs as runs_mod  # noqa: E402
from advtui.appcore.compare import filter_table, metric_vs_param, parse_plots_diff  # noqa: E402
from advtui.schema import ParamsError  # noqa: E402
from pilots import until, wait_for  # noqa: E402


def test_a_baseline_puts_every_other_runs_difference_beside_its_values():
    runs = parse_exp_show(PAYLOAD)
    master = runs[1]
    table = comparison(runs, baseline=master.rev)
    by_name = {row["name"]: table.cells(row) for row in table.rows}
    assert by_name["master ◆"][3:6] == ["50", "0.5", "55.0"]  # the baseline itself: plain values
    assert by_name["└ steps200"][3:6] == ["200 (+150)", "0.5 (+0)", "70.0 (+15.0)"]  # accuracy in points
    assert "◆ baseline master" in table.legend


def test_filter_keeps_matching_rows_and_named_columns():
    table = comparison(parse_exp_show(PAYLOAD))
    assert [r["name"] for r in filter_table(table, "success").rows] == ["└ eps1", "└ steps200"]
    assert [r["name"] for r in filter_table(table, "success -steps200").rows] == ["└ eps1"]
    narrowed = filter_table(table, "c:robust")
    assert [c.key for c in narrowed.columns] == ["name", "m:E4/natural:robust_acc_l2", "m:E4/D_det:robust_acc_l2"]
    assert len(filter_table(table, "").rows) == len(table.rows)


def test_metric_against_param_has_a_point_per_run_sorted_by_the_param():
    lines = metric_vs_param(parse_exp_show(PAYLOAD), "construct.relabel.steps", ["E4/natural:clean_acc"])
    assert lines == [("E4/natural:clean_acc", [50.0, 200.0, 200.0, 200.0], [0.55, 0.7, 0.7, 0.7])]


def test_plots_diff_gives_a_line_per_run_and_file():
    def datum(step, loss, rev, model):
        return {"step": str(step), "loss": str(loss), "rev": rev, "filename": f"{model}/plots/metrics/train/loss.tsv"}

    payload = {"errors": [], "data": {"E1 training loss": [{"type": "vega", "content": {
        "encoding": {"x": {"field": "step"}},
        "data": {"values": [datum(0, 2.3, "workspace", "standard"), datum(1, 1.9, "workspace", "standard"),
                            datum(0, 2.2, "exp-a", "standard")]}}}], "E5 loss": []}}
    (plot,) = parse_plots_diff(payload)
    assert plot.title == "E1 training loss" and plot.x == "step"
    assert plot.series == [("workspace standard", [0.0, 1.0], [2.3, 1.9]), ("exp-a standard", [0.0], [2.2])]
    with pytest.raises(ValueError, match="upgrade DVC"):
        parse_plots_diff([])


def test_exp_run_values_are_checked_against_the_params_schema_before_dvc_starts(fresh_project):
    assert exprun.parse_sets("construct.relabel.steps=200 seed=1") == [("construct.relabel.steps", "200"), ("seed", "1")]
    exprun.check_sets(fresh_project, exprun.parse_sets("construct.relabel.steps=200"))
    with pytest.raises(ParamsError, match=r"-S retrain.seeds=three: retrain.seeds: expected an integer, got 'three'; fix the -S value"):
        exprun.check_sets(fresh_project, [("retrain.seeds", "three")])
    with pytest.raises(ParamsError, match="construct.relabl: unknown key; did you mean 'relabel'"):
        exprun.check_sets(fresh_project, [("construct.relabl.steps", "3")])
    with pytest.raises(ParamsError, match="expected key=value"):
        exprun.parse_sets("steps200")
    assert exprun.exp_run_args([("seed", "1")], queue=True) == ["exp", "run", "--queue", "-S", "seed=1"]


def test_an_experiment_run_is_a_detached_run_like_any_other(fresh_project):
    record = runs_mod.start_run(fresh_project, command=["version"])  # the same launcher `n` uses, with a quick command
    assert record.what == "dvc version" and record.cmd[1:] == ["version"]
    wait_for(lambda: runs_mod.RunRecord.load(runs_mod.record_path(fresh_project, record.id)).returncode is not None,
             "dvc version to end")
    assert runs_mod.RunRecord.load(runs_mod.record_path(fresh_project, record.id)).returncode == 0


async def test_queueing_an_experiment_checks_it_then_shows_it_queued(fresh_project):
    app = ScreenHost(lambda: ExperimentsScreen(fresh_project))
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.notify = lambda message, **kwargs: notes.append(message)
        await pilot.press("u", *"retrain.seeds=three", "enter")
        await pilot.pause()
        problem = app.screen.query_one("#input-problem")
        assert problem.display and "retrain.seeds: expected an integer, got 'three'" in str(problem.render())
        await pilot.press(*["backspace"] * 5, *"2", "enter")  # retrain.seeds=2
        await until(pilot, lambda: any("Queued" in n for n in notes), "DVC to queue the experiment")
        await until(pilot, lambda: any(r.state == "queued" for r in app.screen.runs), "dvc exp show to list it")
        assert "1 queued: w starts the queue" in str(app.screen.query_one("#exp-status").render())
        table = app.screen.query_one(ResultsTable)
        queued = next(r for r in app.screen.runs if r.state == "queued")
        assert queued.params["retrain.seeds"] == 2 and len(table.row_order) == 3


async def test_baseline_filter_plot_and_figure_export_from_the_keyboard(tmp_path, recorded):
    app = ScreenHost(lambda: ExperimentsScreen(tmp_path))
    notes: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.notify = lambda message, **kwargs: notes.append(message)
        table = app.screen.query_one(ResultsTable)
        await pilot.press("down", "b")  # master is the baseline
        await pilot.pause()
        assert table.row_order[1] == "master ◆"
        assert str(table.get_row("└ steps200")[5]) == "70.0 (+15.0)"
        await pilot.press("slash", *"success", "enter")
        await pilot.pause()
        assert table.row_order == ["└ eps1", "└ steps200"]
        await pilot.press("slash", *["backspace"] * 7, "enter")  # an empty filter: every row again
        await pilot.pause()
        assert len(table.row_order) == 5
        await pilot.press("right", "right", "right", "v")  # the cursor on relabel.steps: every metric against it
        await pilot.pause()
        plot = app.screen.query_one("#exp-plot")
        assert plot.display and plot.xlabel == "construct.relabel.steps"
        assert [label for label, _, _ in plot.series] == [
            "E4/natural:clean_acc", "E4/natural:robust_acc_l2", "E4/D_det:clean_acc", "E4/D_det:robust_acc_l2"]
        await pilot.press("x")
        await until(pilot, lambda: app.screen.query("OptionList"), "the format dialog")
        await pilot.press("down", "down", "down", "enter")  # after CSV, Markdown, LaTeX: the PNG figure
        await until(pilot, lambda: notes, "the export")
    assert notes == ["Wrote .advtui/exports/exp_against_construct.relabel.steps.png"]
    assert (tmp_path / ".advtui/exports/exp_against_construct.relabel.steps.png").read_bytes()[:4] == b"\x89PNG"


async def test_overlay_draws_the_marked_runs_curves(tmp_path, recorded, monkeypatch):
    from advtui.appcore.compare import PlotData

    asked: list[list[str]] = []

    def plots_diff(root, revs, **_):
        asked.append(revs)
        return [PlotData("E1 training loss", "step", [(f"{rev} standard", [0.0, 1.0], [2.0, 1.0]) for rev in revs])]

    monkeypatch.setattr("advtui.tui.screens.experiments.run_plots_diff", plots_diff)
    app = ScreenHost(lambda: ExperimentsScreen(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "space", "down", "space", "o")  # mark eps1 and steps200
        await until(pilot, lambda: app.screen.query("OptionList"), "the choice of curves")
        await pilot.press("enter")
        await pilot.pause()
        plot = app.screen.query_one("#exp-plot")
        assert asked == [["eps1", "steps200"]]
        assert plot.display and [s[0] for s in plot.series] == ["eps1 standard", "steps200 standard"]


# --- many experiments at once: `dvc exp run --queue` twice, `dvc queue start -j 2` ---

import sys  # noqa: E402

from tui_projects import init_repo  # noqa: E402

#: A one-stage pipeline whose metric follows the params' seed: each queued experiment's result says which it ran.
SWEEP_STAGE = """import json, yaml
seed = yaml.safe_load(open("params.yaml"))["seed"]
json.dump({"value": 10 * seed}, open("metrics.json", "w"))
"""


def test_queue_summary_counts_what_the_queue_has_yet_to_finish():
    def run(name: str, state: str) -> expshow.ExpRun:
        return expshow.ExpRun(name, name, state, "main", "", {}, {})

    assert expshow.queue_summary(parse_exp_show(PAYLOAD)) is None  # success and failed only
    runs = [run("a", "queued"), run("b", "running"), run("c", "queued"), run("d", "failed")]
    assert expshow.queue_summary(runs) == "2 queued, 1 running"


def test_a_two_experiment_sweep_runs_through_the_queue(tmp_path):
    root = tmp_path / "sweep"
    root.mkdir()
    (root / "stage.py").write_text(SWEEP_STAGE)
    (root / "params.yaml").write_text("seed: 0\n")
    (root / "dvc.yaml").write_text(f"stages:\n  tiny:\n    cmd: {sys.executable} stage.py\n    deps: [stage.py]\n"
                                   "    params: [seed]\n    metrics:\n      - metrics.json:\n          cache: false\n")
    init_repo(root)
    for seed in (1, 2):
        exprun.queue_experiment(root, [("seed", str(seed))], name=f"seed{seed}")
    assert expshow.queue_summary(run_exp_show(root)) == "2 queued"
    try:
        exprun.start_queue(root, jobs=2)

        def experiments() -> dict[str, expshow.ExpRun]:
            return {r.name: r for r in run_exp_show(root) if r.baseline is not None}

        wait_for(lambda: expshow.queue_summary(list(experiments().values())) is None, "the queue to run both")
    except BaseException:
        subprocess.run([runs_mod.dvc_executable(), "queue", "stop", "--kill"], cwd=root, capture_output=True)
        raise
    done = {name: (r.state, r.params["seed"], r.metrics["metrics:value"]) for name, r in experiments().items()}
    assert done == {"seed1": ("success", 1, 10), "seed2": ("success", 2, 20)}
    with pytest.raises(ValueError, match="jobs: 0 workers"):
        exprun.start_queue(root, jobs=0)
