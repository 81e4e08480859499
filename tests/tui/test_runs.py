"""Detached runs (advtui.appcore.runs) on a real DVC project with a quick stand-in stage, without the app."""

from __future__ import annotations

import signal
from pathlib import Path

from advtui.appcore import runs
from advtui.appcore.live import LiveCurves, read_progress
from pilots import hold, wait_for
from tui_projects import TINY_DELAY, TINY_STEPS


def _reload(root: Path, record: runs.RunRecord) -> runs.RunRecord:
    return runs.RunRecord.load(runs.record_path(root, record.id))


def test_run_records_each_stage_and_its_exit(tiny_project: Path) -> None:
    record = runs.start_run(tiny_project, ["retrain@tiny"])
    assert runs.live_run(tiny_project).id == record.id
    wait_for(lambda: not runs.is_alive(_reload(tiny_project, record)), "the run to end")
    done = _reload(tiny_project, record)
    assert done.returncode == 0, (tiny_project / done.log).read_text()
    assert [s.stage for s in done.stages] == ["retrain@tiny"]
    history = runs.stage_history(tiny_project)["retrain@tiny"]
    # at least the stage's own sleeps, at most the whole run (bounds that hold on a machine of any speed)
    assert history.state == "done" and TINY_STEPS * TINY_DELAY <= history.duration <= done.ended - done.started
    assert runs.live_run(tiny_project) is None
    assert f"step {TINY_STEPS - 1}" in (tiny_project / done.log).read_text()
    curves = LiveCurves(tiny_project / "data/live/E4/tiny")
    curves.poll()
    assert len(curves.loss[0][1].steps) == TINY_STEPS and curves.acc[1][1].values[-1] > 0.8
    assert read_progress(tiny_project / "data/progress/retrain-tiny.json")["state"] == "done"


def test_stop_is_clean_and_recorded(tiny_project: Path) -> None:
    hold(tiny_project, "tiny", "train")  # so the stage is still running when it is stopped
    record = runs.start_run(tiny_project, ["retrain@tiny"])
    progress = tiny_project / "data/progress/retrain-tiny.json"
    wait_for(lambda: (read_progress(progress) or {}).get("done") == TINY_STEPS // 2, "the stage to reach its hold")
    assert runs.stop_run(tiny_project, record, grace=10) == "stopped"
    done = _reload(tiny_project, record)
    assert done.stopped_by == signal.SIGINT and done.returncode != 0
    assert runs.stage_history(tiny_project)["retrain@tiny"].state == "stopped"
    # nothing of the run is left behind
    assert runs.live_run(tiny_project) is None


def test_a_failing_stage_reads_failed(tiny_project: Path) -> None:
    from advtui.appcore import dvcstate

    with open(tiny_project / "dvc.yaml", "a") as handle:
        handle.write("  broken:\n    cmd: python -c \"import sys; print('boom'); sys.exit(3)\"\n")
    record = runs.start_run(tiny_project, ["broken"])
    wait_for(lambda: not runs.is_alive(_reload(tiny_project, record)), "the run to fail")
    done = _reload(tiny_project, record)
    assert done.returncode != 0 and runs.outcome(done) == "failed"
    history = runs.stage_history(tiny_project)
    assert dvcstate.stage_state("broken", {}, set(), history) == dvcstate.FAILED
    assert "boom" in (tiny_project / done.log).read_text()


def test_stages_that_run_at_once_are_each_recorded(tiny_project: Path) -> None:
    (tiny_project / "params.yaml").write_text("seed: 0\njobs: 2\n")  # the smoke profile's: two stages at once
    holds = [hold(tiny_project, name, "train") for name in ("tiny", "quick")]
    record = runs.start_run(tiny_project, ["retrain"])
    wait_for(lambda: sorted(_reload(tiny_project, record).running_stages) == ["retrain@quick", "retrain@tiny"],
             "both stages to run at once")
    for path in holds:
        path.unlink()
    wait_for(lambda: not runs.is_alive(_reload(tiny_project, record)), "the run to end")
    done = _reload(tiny_project, record)
    assert done.returncode == 0, (tiny_project / done.log).read_text()
    history = runs.stage_history(tiny_project)
    assert {history[s].state for s in ("retrain@tiny", "retrain@quick")} == {"done"}
    assert all(s.outcome == "done" and s.ended is not None for s in done.stages)
