"""Resume without surprises (issue 11, items 1 and 5), on tiny real stages.

A stage killed at any point resumes from what it kept, and only from what was made from its current inputs:
a kill during the evaluation after training keeps the finished training (and the finished attack chunks); a
checkpoint made on a training set that has since been replaced is discarded with one line; and a second run
of a stage that is running fails at once with one line naming the first, while the lock of a dead one is
taken over.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import advtui.paradigms.trainer as trainer_module
import advtui.pipeline.runners.source as source_runner
from advtui.catalog import paths
from advtui.catalog.params import parse_params
from advtui.cli.main import app
from advtui.files import STALE
from advtui.pipeline.progress import this_process
from advtui.pipeline.runners import run_stage
from advtui.pipeline.stagelock import StageBusy, checkpoint_file, lock_path, resume_dir, stage_lock
from test_integrity import rewrite, tiny_raw

REPO = Path(__file__).resolve().parents[1]
#: source@standard's model and metrics: what a resumed run must write byte for byte as an uninterrupted one did.
SOURCE_OUTPUTS = (paths.model_path("standard"), paths.metrics_path("E1", "standard"))


def raw_params() -> dict:
    """The integrity tests' tiny stages, with two retraining epochs (a kill can fall between them)."""
    raw = tiny_raw()
    raw["retrain"]["train"]["epochs"] = 2
    return raw


def params():
    return parse_params(raw_params())


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict[Path, bytes]]:
    """A project after uninterrupted runs of source@standard and construct@D_det, and the bytes source wrote."""
    root = tmp_path_factory.mktemp("resume")
    (root / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_stage("source", params(), "standard")
        run_stage("construct", params(), "D_det")
    assert not any(p.suffix == ".resume" for p in (root / paths.PROGRESS).iterdir())  # removed when done
    return root, {out: (root / out).read_bytes() for out in SOURCE_OUTPUTS}


@pytest.fixture
def copy(built, tmp_path, monkeypatch) -> Path:
    """A private copy of the project, as the working directory."""
    root = tmp_path / "copy"
    shutil.copytree(built[0], root)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def epochs(monkeypatch) -> list[int]:
    """The epochs the trainer runs from now on, in order."""
    ran: list[int] = []
    real = trainer_module._train_epoch

    def counted(run, epoch, live, bars):
        ran.append(epoch)
        return real(run, epoch, live, bars)

    monkeypatch.setattr(trainer_module, "_train_epoch", counted)
    return ran


def test_a_kill_during_the_evaluation_keeps_the_finished_training(copy, built, epochs, monkeypatch):
    stage, real = "source@standard", source_runner.evaluate_classifier
    paths.metrics_path("E1", "standard").unlink()

    def killed_after_the_first_chunk(*args, on_progress, **kwargs):
        def report(phase, done, total, **info):
            on_progress(phase, done, total, **info)
            if "batch" in info:  # a chunk attacked and its state saved: killed here
                raise KeyboardInterrupt
        return real(*args, on_progress=report, **kwargs)

    monkeypatch.setattr(source_runner, "evaluate_classifier", killed_after_the_first_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_stage("source", params(), stage.split("@")[1])
    assert epochs == [1] and checkpoint_file(stage).exists()  # trained, stored, then killed while attacking
    assert not paths.metrics_path("E1", "standard").exists()

    chunks: list[str] = []

    def recorded(*args, on_progress, **kwargs):
        def report(phase, done, total, **info):
            chunks.extend([phase] if "batch" in info else [])
            on_progress(phase, done, total, **info)
        return real(*args, on_progress=report, **kwargs)

    monkeypatch.setattr(source_runner, "evaluate_classifier", recorded)
    run_stage("source", params(), "standard")
    assert epochs == [1]  # the rerun trained no epoch: it loaded the finished checkpoint
    assert "attack l2" not in chunks and "attack linf" in chunks  # nor attacked the finished chunk again
    for out, before in built[1].items():
        assert (copy / out).read_bytes() == before, f"{out} differs from an uninterrupted run's"
    assert not resume_dir(stage).exists()  # removed once the metrics, the last output, were written


def test_a_checkpoint_of_a_replaced_training_set_is_not_resumed(copy, tmp_path, monkeypatch, capsys):
    stage, real = "retrain@D_det", trainer_module._train_epoch

    def killed_in_epoch_2(run, epoch, live, bars):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(run, epoch, live, bars)

    monkeypatch.setattr(trainer_module, "_train_epoch", killed_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_stage("retrain", params(), "D_det")
    monkeypatch.setattr(trainer_module, "_train_epoch", real)
    assert checkpoint_file(stage, 0).exists()  # the first seed's, killed in its second epoch

    def other_pixel(tensors):  # D_det replaced by other content under the same params and header
        images = tensors["images"].clone()
        images.view(-1)[1] = 0.25 if images.view(-1)[1] > 0.5 else 0.75
        tensors["images"] = images

    rewrite(paths.dataset_path("D_det"), other_pixel)
    fresh = tmp_path / "fresh"
    shutil.copytree(copy, fresh, ignore=shutil.ignore_patterns("*.resume"))
    monkeypatch.chdir(fresh)
    run_stage("retrain", params(), "D_det")
    monkeypatch.chdir(copy)
    capsys.readouterr()
    run_stage("retrain", params(), "D_det")
    assert capsys.readouterr().err == f"{checkpoint_file(stage, 0)}: {STALE}\n"
    seeds = params().retrain.seeds
    for out in (*(paths.retrained_path("D_det", k) for k in range(seeds)), paths.metrics_path("E4", "D_det")):
        assert (copy / out).read_bytes() == (fresh / out).read_bytes(), f"{out} differs from a fresh run's"


HOLD = """
import sys
from advtui.pipeline.stagelock import stage_lock
with stage_lock("source@standard"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_one_run_of_a_stage_at_a_time_and_a_dead_runs_lock_is_taken_over(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw_params()))
    holder = subprocess.Popen([sys.executable, "-c", HOLD], cwd=tmp_path, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline() == "held\n"  # blocks until the holder has the lock (or has died)
        result = CliRunner().invoke(app, ["stage", "source", "standard"])
        assert result.exit_code == 2, result.output
        line = " ".join(result.output.split())  # rich wraps long lines on narrow terminals
        assert line.startswith("error: source@standard: already running (pid ")
        assert f"pid {holder.pid} on " in line and f"kill -INT {holder.pid}), then rerun" in line
        assert "Traceback" not in result.output and not (tmp_path / paths.model_path("standard")).exists()
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: no chance to remove its lock file
        holder.wait()
    lock = tmp_path / lock_path("source@standard")
    assert json.loads(lock.read_text())["pid"] == holder.pid  # a dead run's lock file is left behind
    with stage_lock("source@standard"):  # and taken over
        assert json.loads(lock.read_text()) | {"started": 0} == {"stage": "source@standard", **this_process(),
                                                                  "started": 0}
        with pytest.raises(StageBusy, match=rf"already running \(pid {os.getpid()} "):
            with stage_lock("source@standard"):  # even this process cannot run the stage twice
                pass
    assert not lock.exists()  # released: the file goes with the lock
