"""Stage list and state (advtui.appcore.dvcstate) against DVC itself; incremental DVCLive readers (live)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from advtui.appcore import dvcstate
from advtui.appcore.live import LogTail, TsvSeries, format_eta, read_progress, stage_lines, tail
from advtui.appcore.runs import StageHistory

DVC = str(Path(sys.executable).parent / "dvc")


def test_expanded_stages_are_dvcs_own(fresh_project: Path) -> None:
    out = subprocess.run([DVC, "stage", "list", "--all", "--name-only"], cwd=fresh_project, capture_output=True,
                         text=True, check=True).stdout.split()
    assert [s.name for s in dvcstate.load_stages(fresh_project)] == out


def test_matrix_and_new_families_form_their_own_group(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  sweep:\n    matrix:\n      model: [a, b]\n      eps: [1, 2]\n"
        "    cmd: run ${item.model} ${item.eps}\n    outs:\n      - data/live/P/${item.model}-${item.eps}\n"
        "  source:\n    cmd: train\n")
    stages = dvcstate.load_stages(tmp_path)
    assert [s.name for s in stages] == ["sweep@a-1", "sweep@a-2", "sweep@b-1", "sweep@b-2", "source"]
    assert stages[1].cmd == "run a 2" and stages[1].live_dir == "data/live/P/a-2"
    assert [label for label, _ in dvcstate.grouped(stages)] == ["E1 source models", "sweep"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([DVC, "init", "-q"], cwd=tmp_path, check=True)
    listed = subprocess.run([DVC, "stage", "list", "--all", "--name-only"], cwd=tmp_path, capture_output=True,
                            text=True, check=True).stdout.split()
    assert [s.name for s in stages] == listed


def test_a_broken_dvc_yaml_fails_with_one_line_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: [unclosed\n")
    with pytest.raises(ValueError, match=r"dvc.yaml: not valid YAML at line \d+; fix the file") as err:
        dvcstate.load_stages(tmp_path)
    assert "\n" not in str(err.value)


def test_state_rules() -> None:
    history = {"b": StageHistory("b", "r1", 0.0, 5.0, "failed"), "c": StageHistory("c", "r1", 0.0, 5.0, "done")}
    locked, status = {"a", "c", "d"}, {"d": [{"changed deps": {}}]}
    assert dvcstate.stage_state("a", status, locked, history) == dvcstate.UP_TO_DATE
    assert dvcstate.stage_state("b", status, locked, history) == dvcstate.FAILED
    assert dvcstate.stage_state("d", status, locked, history) == dvcstate.CHANGED
    assert dvcstate.stage_state("e", status, locked, history) == dvcstate.NEVER_RUN
    assert dvcstate.stage_state("a", None, locked, history) == dvcstate.UNKNOWN
    assert dvcstate.stage_state("c", status, locked, history, live={"c"}) == dvcstate.RUNNING


def test_progress_files_tell_a_dead_stage_from_a_live_one(tmp_path: Path) -> None:
    """A stage run outside the app reads running while its process lives, died once it is gone (not running
    forever); what the app's own run records say about a stage it stopped stays first."""
    history = {"b": StageHistory("b", "r1", 0.0, 5.0, "stopped")}
    locked, status = {"a", "b"}, {}
    assert dvcstate.stage_state("a", status, locked, history, progress="running") == dvcstate.RUNNING
    assert dvcstate.stage_state("a", status, locked, history, progress="died") == dvcstate.DIED
    assert dvcstate.stage_state("b", status, locked, history, progress="died") == dvcstate.STOPPED
    assert dvcstate.stage_state("a", status, locked, history, progress="done") == dvcstate.UP_TO_DATE
    assert dvcstate.stage_state("a", status, locked, history, progress=None) == dvcstate.UP_TO_DATE

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    record = {"stage": "retrain@D_R", "phase": "train", "done": 1, "total": 5, "state": "running",
              "pid": int(gone.stdout), "host": socket.gethostname(), "started": 1.0}
    (tmp_path / "p.json").write_text(json.dumps(record))
    assert read_progress(tmp_path / "p.json") == record | {"state": "died"}
    (tmp_path / "p.json").write_text(json.dumps(record | {"pid": os.getpid()}))
    assert read_progress(tmp_path / "p.json")["state"] == "running"


def test_tsv_reads_only_whole_new_rows_and_restarts_on_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "loss.tsv"
    series = TsvSeries(path)
    assert not series.poll()
    path.write_text("step\tloss\n0\t2.0\n1\t1.5\n2\t1.")  # the last row is half written
    assert series.poll() and series.steps == [0, 1] and series.values == [2.0, 1.5]
    with open(path, "a") as handle:
        handle.write("2\n")
    assert series.poll() and series.values == [2.0, 1.5, 1.2]
    assert not series.poll()
    replacement = tmp_path / "new.tsv"  # a resumed run rewrites the file without its last rows
    replacement.write_text("step\tloss\n0\t2.0\n")
    os.replace(replacement, path)
    assert series.poll() and series.steps == [0]


def test_tail_and_eta(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {i}\n" for i in range(500)) + "epoch 3/4\r epoch 4/4\n")
    assert tail(log, 3) == ["line 499", "epoch 3/4", " epoch 4/4"]
    assert [format_eta(s) for s in (None, 42, 185, 3720)] == ["—", "42s", "3m05s", "1h02m"]


def test_log_tail_returns_only_new_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    reader = LogTail(log, keep=3)
    assert reader.poll() == (False, [])
    log.write_text("a\nb\nc\nd\npart")
    assert reader.poll() == (True, ["b", "c", "d"])
    with open(log, "a") as handle:
        handle.write("ial\ne\n")
    assert reader.poll() == (False, ["partial", "e"])
    assert reader.poll() == (False, [])
    log.write_text("new\n")  # a new run's log in the same place
    assert reader.poll() == (True, ["new"])


def test_a_stage_log_keeps_its_own_lines_of_a_run_of_several_stages() -> None:
    run = ["Running 2 stages, up to 2 at a time, 1 torch threads each", "Running stage 'a@x':", "[a@x] step 0 loss 2.3",
           "Running stage 'b':", "[b] epoch 1", "[a@x] [E4] seed 0", "Finished stage 'a@x' in 3.0 s"]
    assert stage_lines(run, "a@x") == [run[0], run[1], "step 0 loss 2.3", run[3], "[E4] seed 0", run[6]]
    assert stage_lines(run, "b") == [run[0], run[1], run[3], "epoch 1", run[6]]
    dvc_repro = ["Running stage 'a@x':", "step 0 loss 2.3", "Updating lock file 'dvc.lock'"]
    assert stage_lines(dvc_repro, "a@x") == dvc_repro and stage_lines(run, None) == run
