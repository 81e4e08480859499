"""One run of a stage at a time, and where a stage keeps what it needs to resume.

``advtui stage X`` (what ``dvc repro`` runs, or a user by hand) holds ``data/progress/<stage>.lock`` while it
runs: an advisory ``flock`` on that file. The kernel drops the lock when its process ends, however it ends,
so the lock of a killed stage is taken over by the next run without any clean-up. The file names its holder
(pid, host, start time) for the one line a second run of the same stage gets instead of running alongside
it and writing the same outputs.

A stage keeps what it needs to resume (training checkpoints, attack state) in ``data/progress/<stage>.resume/``
until its last output is written (see :func:`advtui.pipeline.runners.run_stage`).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from advtui.catalog.paths import PROGRESS, progress_path, seed_dir
from advtui.pipeline.progress import this_process


def lock_path(stage: str, folder: Path = PROGRESS) -> Path:
    """The lock file of ``stage`` (``construct@D_R`` -> ``data/progress/construct-D_R.lock``)."""
    return progress_path(stage, folder).with_suffix(".lock")


def resume_dir(stage: str, folder: Path = PROGRESS) -> Path:
    """Where ``stage`` keeps its checkpoint and attack state until its last output is written."""
    return progress_path(stage, folder).with_suffix(".resume")


def _run_dir(stage: str, index: int | None) -> Path:
    # a stage of several runs (E4: one model per seed) keeps each run's files apart, so a rerun after a kill
    # resumes every run from its own checkpoint and attack state
    return resume_dir(stage) if index is None else seed_dir(resume_dir(stage), index)


def checkpoint_file(stage: str, index: int | None = None) -> Path:
    """The training checkpoint of ``stage`` (a stage trains one module per run), or of its ``index``-th run."""
    return _run_dir(stage, index) / "train.ckpt"


def attack_state_dir(stage: str, index: int | None = None) -> Path:
    """The folder of ``stage``'s (or its ``index``-th run's) attack resume files, one sub-folder per threat model."""
    return _run_dir(stage, index) / "attacks"


class StageBusy(RuntimeError):
    """The stage is already running in another process (the message names it and what to do)."""


def _holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder ({} while the holder has not written it yet)."""
    try:
        data = os.pread(fd, 4096, 0)
        found = json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _busy_line(stage: str, holder: dict[str, Any]) -> str:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return f"{stage}: already running in another process; wait for it to finish, then rerun"
    started = holder.get("started")
    since = f" since {time.strftime('%H:%M:%S', time.localtime(started))}" if isinstance(started, (int, float)) else ""
    return (f"{stage}: already running (pid {pid} on {holder.get('host', '?')}{since}); "
            f"wait for it to finish or stop it (kill -INT {pid}), then rerun")


def _acquire(path: Path, stage: str) -> int:
    """Open and lock ``path`` without waiting; StageBusy when another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StageBusy(_busy_line(stage, holder)) from None
        # A holder that finished removes its file: if it did so between our open and our flock, we hold a
        # lock on a removed file that guards nothing, and open the path again.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def stage_lock(stage: str, folder: Path = PROGRESS) -> Iterator[None]:
    """Hold ``stage``'s lock while the block runs; StageBusy (one line naming the holder's pid and what to
    do) when another process runs the stage. A lock file left by a dead process is taken over."""
    path = lock_path(stage, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _acquire(path, stage)
    try:
        # Written in place, not through advtui.files: a renamed file would be another inode, unlocked.
        # A reader that catches it half-written names no pid (see _holder).
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"stage": stage, **this_process(), "started": time.time()}).encode(), 0)
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a later run then creates and locks a fresh file
        os.close(fd)
