"""One progress path: what the attack loop and the trainer's epochs report reaches the progress file the
app reads (same keys as before) and the terminal line, through ``StageProgress.update`` unchanged."""

from __future__ import annotations

import io
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.pipeline.progress import DIED, DONE, RUNNING, StageProgress, liveness, progress_path, status_line
from advtui.progress import epoch_progress
from linear_ground_truth import interior_points, linear_model, predict

FILE_KEYS = {"stage", "phase", "done", "total", "rate", "eta_s", "updated", "state"}


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the status line is drawn into it."""

    def isatty(self) -> bool:
        return True


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_robust_accuracy_reports_straight_into_the_stage_file(tmp_path: Path) -> None:
    model = linear_model((3, 8, 8), 10, seed=0)
    x = interior_points(40, (3, 8, 8), seed=1)
    y = predict(model, x)
    specs = [AttackSpec(norm="linf", eps=0.01, steps=3, step_size=0.005), AttackSpec(norm="linf", eps=0.03, steps=3,
                                                                                   step_size=0.01)]
    terminal = Terminal()
    progress = StageProgress("attack@SL-natural", folder=tmp_path, stream=terminal)
    result = robust_accuracy(model, x, y, specs, batch_size=16, on_progress=progress.update, phase="attack linf",
                             generator=torch.Generator().manual_seed(0))
    record = read(progress_path("attack@SL-natural", tmp_path))
    assert FILE_KEYS <= set(record) and record["state"] == "running"
    assert (record["stage"], record["phase"], record["done"], record["total"]) == ("attack@SL-natural", "attack linf",
                                                                                  80, 80)
    assert record["robust_acc"] == result.robust_acc and record["attack"] == specs[1].name
    lines = terminal.getvalue().replace("\r", "\n").split()
    assert "80/80" in lines and "robust_acc" in lines
    progress.finish(clean_acc=result.clean_acc)
    assert read(progress.path) | {"updated": 0} == {"stage": "attack@SL-natural", "state": "done", "updated": 0,
                                                   "clean_acc": result.clean_acc}


def test_writes_are_limited_to_new_phases_whole_percents_and_the_end(tmp_path: Path) -> None:
    # min_interval inf: only the count decides what is written, whatever the machine's speed
    progress = StageProgress("construct@D_R", folder=tmp_path, min_interval=math.inf)
    path = progress.path
    progress.update("construct", 0, 1000, target_hit=0.0)
    assert read(path)["done"] == 0  # a phase's first report is written
    progress.update("construct", 9, 1000)
    assert read(path)["done"] == 0  # under one percent more: held back
    progress.update("construct", 10, 1000, target_hit=0.5)
    assert read(path)["done"] == 10 and read(path)["target_hit"] == 0.5
    progress.update("attack l2", 1, 1000)
    assert read(path)["phase"] == "attack l2"  # a new phase is written at once
    progress.update("attack l2", 1000, 1000)
    assert read(path)["done"] == 1000  # and so is the end


def test_terminal_only_progress_writes_no_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    terminal = Terminal()
    progress = StageProgress("model.safetensors", folder=None, stream=terminal)
    progress.update("attack l2", 5, 10, robust_acc=0.25)
    progress.finish()
    assert not any(tmp_path.iterdir())
    assert terminal.getvalue().startswith("model.safetensors attack l2: 5/10 ")


def test_status_line_names_phase_count_rate_time_left_and_float_info() -> None:
    record = {"phase": "attack l2", "done": 50, "total": 200, "rate": 12.4, "eta_s": 12.1, "updated": 1.5,
              "robust_acc": 0.4125, "attack": "pgd20-l2-eps0.25", "batch": 3}
    assert status_line("retrain@D_R", record) == "retrain@D_R attack l2: 50/200 12/s 12s left robust_acc 0.412"
    assert status_line("x", record | {"eta_s": None}) == "x attack l2: 50/200 12/s robust_acc 0.412"


def test_epoch_progress_reports_each_epoch_and_passes_the_metrics_on() -> None:
    calls: list[tuple] = []
    hook = epoch_progress(lambda phase, done, total, **info: calls.append((phase, done, total, info)), "train", 3,
                          evaluate=lambda module, epoch: {"test_acc": 0.5 + epoch / 10})
    assert calls == [("train", 0, 3, {})]  # the phase is visible before the first epoch ends
    assert hook(None, 1) == {"test_acc": 0.6}  # the trainer logs what the evaluation returns
    assert calls[-1] == ("train", 1, 3, {"test_acc": 0.6})
    plain = epoch_progress(lambda *a, **k: calls.append(a), "probe", 2)
    assert plain(None, 2) is None and calls[-1] == ("probe", 2, 2)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_a_killed_stage_reads_died_not_running(tmp_path: Path) -> None:
    """A killed stage cannot mark its file: the file names its process, and a reader that finds that
    process gone on this host reads the stage as died (issue 11: 'running' forever)."""
    progress = StageProgress("retrain@D_R", folder=tmp_path)
    progress.update("train", 1, 5)
    record = read(progress.path)
    assert (record["pid"], record["host"]) == (os.getpid(), socket.gethostname())
    assert record["started"] <= record["updated"]
    assert liveness(record) == RUNNING
    assert liveness(record | {"pid": dead_pid()}) == DIED
    assert liveness(record | {"pid": dead_pid(), "host": "another-host"}) is None  # cannot be told from here
    assert liveness({k: v for k, v in record.items() if k not in ("pid", "host")}) is None  # an older file
    assert "started" not in status_line("retrain@D_R", record)  # a clock time, not progress
    progress.finish()
    assert liveness(read(progress.path)) == DONE
