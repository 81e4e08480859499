"""Pipeline runs that outlive the app: start ``dvc repro`` detached, find it again, stop it cleanly.

A run is ``python -m advtui.appcore.runwrap RECORD -- dvc repro TARGETS...`` started in its own session
(so a closed terminal or SSH connection sends it no SIGHUP), with stdin closed and its output in a log
file. Its record, ``.advtui/runs/<id>.json``, holds the pid (also the process-group id), the command,
the targets, the start time and the log path; the wrapper adds each stage's start time as DVC reports
it and, when DVC exits, the end time and exit code, so all of it exists even when no app is watching.

This module imports no textual (tests and other front ends use it alone).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from advtui.catalog.paths import PARAMS_FILE
from advtui.files import write_json
from advtui.schema import ParamsError

RUNS_DIR = Path(".advtui") / "runs"
#: The command a pipeline run starts (``advtui repro``: ``dvc repro``, the profile's ``jobs`` stages at once).
REPRO = [sys.executable, "-m", "advtui", "repro"]
#: Seconds between SIGINT (DVC and the stage stop cleanly, keeping finished chunks and checkpoints)
#: and SIGTERM, then between SIGTERM and SIGKILL.
STOP_GRACE_S = 10.0
KILL_GRACE_S = 5.0
_WRAPPER = "advtui.appcore.runwrap"
# Wrappers this process started: polled so that a finished one is reaped, not left a zombie.
_CHILDREN: dict[int, subprocess.Popen] = {}


@dataclass
class StageRun:
    """One stage within a run: when it started, when it ended (``dvc repro``: when the next one began) and how
    (``done`` or ``failed``; None while it runs, and for a stage the run's end cut short: it shares the run's
    fate)."""

    stage: str
    started: float
    ended: float | None = None
    outcome: str | None = None


@dataclass
class RunRecord:
    """What ``.advtui/runs/<id>.json`` holds about one run."""

    id: str
    pid: int
    pgid: int
    cmd: list[str]
    targets: list[str]
    started: float
    log: str
    stages: list[StageRun] = field(default_factory=list)
    ended: float | None = None
    returncode: int | None = None
    stopped_by: int | None = None  # the signal that stopped it (SIGINT from the app or a Ctrl-C), if any

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read a record file (FileNotFoundError / ValueError when absent or damaged)."""
        try:
            raw = json.loads(path.read_text())
            raw["stages"] = [StageRun(**s) for s in raw.get("stages", [])]
            return cls(**raw)
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise ValueError(f"{path}: not a run record ({err}); delete it") from err

    def save(self, path: Path) -> None:
        """Write the record atomically (the app and the wrapper may read it at any moment)."""
        write_json(path, asdict(self))

    @property
    def what(self) -> str:
        """The run in words: ``advtui repro D_R``, ``advtui repro`` of the whole pipeline, ``dvc exp run -S ...``."""
        if self.cmd[:len(REPRO)] == REPRO:
            args = self.cmd[len(REPRO):]
            return "advtui repro (the whole pipeline)" if not self.targets else " ".join(["advtui repro", *args])
        return " ".join(["dvc", *self.cmd[1:]])

    @property
    def current_stage(self) -> str | None:
        """The stage started last among those running now (or the one that ran last)."""
        running = self.running_stages
        return running[-1] if running else (self.stages[-1].stage if self.stages else None)

    @property
    def running_stages(self) -> list[str]:
        """The stages started and not yet ended (several under ``advtui repro --jobs N``), in start order."""
        return [s.stage for s in self.stages if s.ended is None and s.outcome is None] if self.ended is None else []

    @property
    def duration(self) -> float:
        """Seconds the run took, or has taken so far."""
        return (self.ended or time.time()) - self.started


def record_path(root: Path, run_id: str) -> Path:
    """Where run ``run_id``'s record lives."""
    return root / RUNS_DIR / f"{run_id}.json"


def dvc_executable() -> str:
    """The ``dvc`` beside this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else (shutil.which("dvc") or "dvc")


def install_env(**extra: str) -> dict[str, str]:
    """This environment with this install's bin folder first on PATH (and ``extra``): what DVC starts by name,
    its queue workers (``dvc``) and the stages' ``advtui``, must be this install's, whatever PATH the user's
    shell had (the venv need not be activated)."""
    return {**os.environ, **extra, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _new_id(folder: Path) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 0
    while (folder / f"{stamp}-{n}.json").exists():
        n += 1
    return f"{stamp}-{n}"


def cannot_run(root: Path) -> str | None:
    """Why no run can start in ``root``, as one line naming the fix, or None: not a project (no ``dvc.yaml``), or
    a ``params.yaml`` that every stage would reject (the CLI's own check, so the mistake shows before any stage
    starts rather than in the first stage's log)."""
    if not (root / "dvc.yaml").is_file():
        return f"no dvc.yaml in {root}: nothing to run; start advtui in the project folder (or `advtui tui PATH`)"
    from advtui.catalog.params import load_params  # its ~40 dataclasses: not before the first frame

    try:
        load_params(root / PARAMS_FILE)
    except ParamsError as err:
        return str(err)
    return None


def start_run(root: Path, targets: list[str] | None = None, extra: list[str] | None = None,
              command: list[str] | None = None) -> RunRecord:
    """Start ``advtui repro [extra] [targets]`` in ``root`` (or ``dvc COMMAND``: an experiment, ``exp run -S ...``),
    detached, and write its record.

    ``advtui repro`` is ``dvc repro`` with as many stages at once as the profile's ``jobs`` says. No targets
    reproduces the whole pipeline. The run keeps going when this process exits.
    """
    targets = list(targets or [])
    folder = root / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    run_id = _new_id(folder)
    record_file, log = folder / f"{run_id}.json", folder / f"{run_id}.log"
    cmd = [dvc_executable(), *command] if command else [*REPRO, *(extra or []), *targets]
    env = install_env(PYTHONUNBUFFERED="1", DVC_NO_ANALYTICS="1")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", _WRAPPER, str(record_file), "--", *cmd], cwd=root, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    _CHILDREN[proc.pid] = proc
    record = RunRecord(id=run_id, pid=proc.pid, pgid=proc.pid, cmd=cmd, targets=targets, started=time.time(),
                       log=str(log.relative_to(root)))
    record.save(record_file)  # from here on only the wrapper writes it (it waits for this file)
    return record


def is_alive(record: RunRecord) -> bool:
    """Whether the run's wrapper is still running (its pid alive and still our wrapper for this record)."""
    if record.ended is not None:
        return False
    child = _CHILDREN.get(record.pid)
    if child is not None:  # our own child: its exit status is the truth (its cmdline is empty while it execs)
        if child.poll() is None:
            return True
        del _CHILDREN[record.pid]
        return False
    cmdline = _cmdline(record.pid)
    # A recycled pid runs something else: only our wrapper, for this record, counts.
    return _WRAPPER in cmdline and any(arg.endswith(f"{record.id}.json") for arg in cmdline)


def _cmdline(pid: int) -> list[str]:
    """The arguments process ``pid`` runs with ([] when it is gone); /proc on Linux, ps elsewhere."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            return proc.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return []
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
    return out.stdout.split()


def list_runs(root: Path) -> list[RunRecord]:
    """Every readable run record, oldest first."""
    folder = root / RUNS_DIR
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(RunRecord.load(path))
        except (OSError, ValueError):
            continue
    return sorted(records, key=lambda r: r.started)


def live_run(root: Path) -> RunRecord | None:
    """The newest run still going, if any (what a reopened app re-attaches to)."""
    for record in reversed(list_runs(root)):
        if is_alive(record):
            return record
    return None


def outcome(record: RunRecord) -> str:
    """``running``, ``done``, ``stopped``, ``failed``, or ``lost`` (wrapper killed before it could record)."""
    if is_alive(record):
        return "running"
    if record.returncode is None:
        return "lost"
    if record.returncode == 0:
        return "done"
    return "stopped" if record.stopped_by is not None else "failed"


@dataclass(frozen=True)
class StageHistory:
    """The latest run of one stage: its duration and how it ended (``done``, ``running``, ``failed``...)."""

    stage: str
    run_id: str
    started: float
    duration: float | None
    state: str


def stage_history(root: Path) -> dict[str, StageHistory]:
    """Each stage's latest run over all records (DVC keeps no durations; these come from the wrappers)."""
    history: dict[str, StageHistory] = {}
    for record in list_runs(root):
        state = outcome(record)
        for i, stage in enumerate(record.stages):
            last = i == len(record.stages) - 1
            end = stage.ended if stage.ended is not None else record.ended
            # A stage the run's end cut short (and, in records without outcomes, the last one) shares its fate.
            fate = stage.outcome or (state if last or stage.ended is None else "done")
            history[stage.stage] = StageHistory(
                stage.stage, record.id, stage.started, None if end is None else end - stage.started, fate)
    return history


def signal_run(record: RunRecord, sig: int) -> bool:
    """Send ``sig`` to the run's whole process group (DVC and the stage); False when it is already gone."""
    if not is_alive(record):
        return False
    try:
        os.killpg(record.pgid, sig)
    except ProcessLookupError:
        return False
    return True


def stop_run(root: Path, record: RunRecord, grace: float = STOP_GRACE_S, kill_grace: float = KILL_GRACE_S) -> str:
    """Stop a run cleanly: SIGINT, then SIGTERM after ``grace`` s, then SIGKILL. Blocks; returns its outcome.

    Call it from a worker thread. The wrapper records the signal, so a stopped run reads "stopped".
    """
    path = record_path(root, record.id)
    current = record
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, kill_grace), (signal.SIGKILL, kill_grace)):
        if not signal_run(current, sig):
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and is_alive(current):
            time.sleep(0.05)
        if not is_alive(current):
            break
    try:
        current = RunRecord.load(path)
    except (OSError, ValueError):
        pass
    return outcome(current)
