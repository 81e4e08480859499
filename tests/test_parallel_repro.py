"""`advtui repro --jobs N` against `dvc repro` on a small project of shell stages (no torch): it must record the
same dvc.lock, run stages that can overlap at the same time, skip what did not change, and stop cleanly at a
failure without losing what finished."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from advtui.pipeline.parallel import FINISHED_STAGE, PARALLEL_RUN, repro, start_order

DVC = str(Path(sys.executable).parent / "dvc")

# a and b each wait until the other has started: they finish only when run at the same time (the bound is
# there only so that a broken runner fails instead of hanging). c needs both; d is independent of all.
HANDSHAKE = "touch {me}.started && i=0 && while [ ! -f {other}.started ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && test -f {other}.started"

DVC_YAML = textwrap.dedent(f"""\
    stages:
      a:
        cmd: {HANDSHAKE.format(me="a", other="b")} && echo A${{word}} > a.txt && echo ran >> runs.log
        params: [word]
        outs: [a.txt]
      b:
        cmd: {HANDSHAKE.format(me="b", other="a")} && echo B > b.txt
        outs: [b.txt]
      c:
        cmd: cat a.txt b.txt > c.txt && echo threads $OMP_NUM_THREADS
        deps: [a.txt, b.txt]
        outs: [c.txt]
      d:
        cmd: echo D > d.txt
        outs: [d.txt]
    """)


def _project(root: Path) -> Path:
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("word: x\n")
    subprocess.run(f"git init -q && {DVC} init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm init",
                   shell=True, cwd=root, check=True)
    return root


def _lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


def _run(root: Path, *targets: str, jobs: int = 2) -> tuple[int, list[str]]:
    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(root)  # DVC resolves a stage's paths against the working directory, as on the command line
    try:
        return repro(Path("."), targets, jobs=jobs, threads=1, echo=lines.append), lines
    finally:
        os.chdir(cwd)


def _status_clean(root: Path) -> bool:
    out = subprocess.run([DVC, "status", "--json"], cwd=root, capture_output=True, text=True, check=True).stdout
    return out.strip() in ("{}", "")


def test_two_jobs_record_what_dvc_repro_records(tmp_path: Path) -> None:
    ours = _project(tmp_path / "ours")
    code, lines = _run(ours)
    assert code == 0, lines
    # a and b completed their handshake, so they ran at the same time
    assert PARALLEL_RUN.match(lines[0])
    assert {m.group(1) for line in lines if (m := FINISHED_STAGE.match(line))} == {"a", "b", "c", "d"}
    assert "[c] threads 1" in lines
    assert _status_clean(ours)
    # dvc repro on a copy, with the handshake satisfied in advance, records the same stages the same way
    theirs = _project(tmp_path / "theirs")
    (theirs / "a.started").touch()
    (theirs / "b.started").touch()
    subprocess.run([DVC, "repro", "-q"], cwd=theirs, check=True)
    assert _lock(ours) == _lock(theirs)


def test_second_run_runs_nothing_and_a_param_change_reruns_only_its_stage(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    assert _run(root)[0] == 0
    code, lines = _run(root)
    assert code == 0
    assert not any(FINISHED_STAGE.match(line) for line in lines)
    assert (root / "runs.log").read_text().count("ran") == 1
    (root / "params.yaml").write_text("word: y\n")
    (root / "b.started").touch()  # b does not rerun: a's handshake partner must look started
    code, lines = _run(root, jobs=1)
    assert code == 0, lines
    assert [m.group(1) for line in lines if (m := FINISHED_STAGE.match(line))] == ["a", "c"]
    assert (root / "c.txt").read_text() == "Ay\nB\n"
    # back to the first value: DVC's run cache restores a's outputs instead of running it again
    (root / "params.yaml").write_text("word: x\n")
    assert _run(root, jobs=1)[0] == 0
    assert (root / "runs.log").read_text().count("ran") == 2
    assert (root / "a.txt").read_text() == "Ax\n"
    assert _status_clean(root)


def test_targets_run_only_what_they_need(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    code, lines = _run(root, "d")
    assert code == 0
    assert [m.group(1) for line in lines if (m := FINISHED_STAGE.match(line))] == ["d"]
    assert set(_lock(root)) == {"d"}


def test_a_failure_keeps_finished_stages_and_runs_nothing_downstream(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    (root / "dvc.yaml").write_text(DVC_YAML.replace("echo B > b.txt", "echo B > b.txt && echo broken && exit 3"))
    code, lines = _run(root)
    assert code == 1
    assert any("stage 'b' failed with exit code 3" in line for line in lines)
    assert any(line.startswith("Not run because a stage failed: c") for line in lines)
    assert not (root / "c.txt").exists()
    # a finished beside b, so it is committed and will not run again; b and c are not
    assert "a" in _lock(root) and "b" not in _lock(root) and "c" not in _lock(root)


@pytest.mark.parametrize("batch_s, writes", [(3600.0, 1), (0.0, 4)])
def test_short_stages_share_one_dvc_lock_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_s: float,
                                               writes: int) -> None:
    """dvc.lock is rewritten whole on every write (seconds on a large pipeline): stages shorter than LOCK_BATCH_S
    are written together (here all four at the end), a longer one at once (batch 0: each stage), and either way
    the lock ends as dvc repro records it (test_two_jobs_record_what_dvc_repro_records)."""
    from dvc.dvcfile import ProjectFile

    from advtui.pipeline import parallel

    calls: list[list[str]] = []
    real = ProjectFile.dump_stages

    def counting(self, stages, *args, **kwargs):
        calls.append([stage.name for stage in stages])
        return real(self, stages, *args, **kwargs)

    monkeypatch.setattr(ProjectFile, "dump_stages", counting)
    monkeypatch.setattr(parallel, "LOCK_BATCH_S", batch_s)
    root = _project(tmp_path / "p")
    code, lines = _run(root)
    assert code == 0, lines
    assert len(calls) == writes and sorted(sum(calls, [])) == ["a", "b", "c", "d"]
    assert set(_lock(root)) == {"a", "b", "c", "d"} and _status_clean(root)


def test_keep_going_still_runs_what_does_not_depend_on_the_failure(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    (root / "dvc.yaml").write_text(DVC_YAML.replace("echo A${word} > a.txt", "exit 1"))
    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = repro(Path("."), jobs=2, threads=1, keep_going=True, echo=lines.append)
    finally:
        os.chdir(cwd)
    assert code == 1
    assert {"b", "d"} <= set(_lock(root)) and "c" not in _lock(root)


@pytest.mark.parametrize("jobs", [0, -1])
def test_bad_jobs_is_one_clear_error(tmp_path: Path, jobs: int) -> None:
    root = _project(tmp_path / "p")
    with pytest.raises(ValueError, match="--jobs must be at least 1"):
        _run(root, jobs=jobs)


def test_a_run_waits_for_another_dvc_command_instead_of_failing(tmp_path: Path) -> None:
    import threading
    import time

    from dvc.repo import Repo

    root = _project(tmp_path / "p")
    (root / "a.started").touch()
    (root / "b.started").touch()
    other = Repo(str(root))  # another DVC command (the app's `dvc status`) holding the repository lock
    other.lock.lock()
    lines: list[str] = []
    result: list[int] = []
    cwd = os.getcwd()
    os.chdir(root)
    try:
        worker = threading.Thread(target=lambda: result.append(
            repro(Path("."), jobs=2, threads=1, echo=lines.append)))
        worker.start()
        while not any(line.startswith("Waiting for another DVC command") for line in lines):
            assert worker.is_alive(), lines  # it must wait, not give up with DVC's LockError
            time.sleep(0.1)
        other.lock.unlock()
        worker.join()
    finally:
        os.chdir(cwd)
        other.close()
    assert result == [0], lines
    assert _status_clean(root)


def test_an_unknown_target_is_one_line(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "advtui", "repro", "--jobs", "2", "nosuchstage"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: repro:") and "nosuchstage" in proc.stderr and "Traceback" not in proc.stderr


def test_the_head_of_the_longest_chain_starts_first() -> None:
    # w is first in dvc.yaml but alone; x heads x -> y -> z, which would otherwise run alone at the end
    needs = {"w": set(), "x": set(), "y": {"x"}, "z": {"y"}, "v": set()}
    assert start_order(["w", "x", "y", "z", "v"], needs) == ["x", "y", "w", "z", "v"]
