"""The tiny process that owns a detached run: ``python -m advtui.appcore.runwrap RECORD -- CMD...``.

It runs CMD (``advtui repro ...`` or ``dvc repro ...``) in its own process group, copies CMD's output to its
stdout (the run's log file), records each ``Running stage 'x':`` line with its time (and, from ``advtui
repro``, each stage's end: several may run at once), and on exit writes the end time and exit code into
RECORD. A SIGINT or SIGTERM sent to the group reaches DVC and the stage
directly; the wrapper only notes it (so the run reads "stopped") and waits for them to finish.
No textual, no torch: it must start fast and run without the app.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from advtui.appcore.runs import RunRecord, StageRun
from advtui.pipeline.parallel import FAILED_STAGE, FINISHED_STAGE, PARALLEL_RUN

#: The line with which `dvc repro` announces a stage (read by this wrapper and by bench/pipeline_times.py).
RUNNING_STAGE = re.compile(r"^Running stage '([^']+)'")
_RECORD_WAIT_S = 10.0


def _load(path: Path) -> RunRecord:
    # The starter writes the record just after spawning us; wait for it rather than race it.
    deadline = time.monotonic() + _RECORD_WAIT_S
    while True:
        try:
            return RunRecord.load(path)
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _end(record: RunRecord, stage: str, when: float, outcome: str) -> None:
    for run in reversed(record.stages):
        if run.stage == stage and run.outcome is None:
            run.ended, run.outcome = when, outcome
            return


def main(argv: list[str]) -> int:
    """Run the command after ``--`` and keep RECORD up to date; returns the command's exit code."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m advtui.appcore.runwrap RECORD -- CMD...; started by advtui.appcore.runs",
              file=sys.stderr)
        return 2
    path, cmd = Path(argv[0]), argv[2:]
    signalled: list[int] = []
    # A handler (not SIG_IGN, which the child would inherit) keeps the wrapper alive to record the end.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda num, _frame: signalled.append(num))
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = sys.stdout.buffer
    record = _load(path)
    assert proc.stdout is not None
    parallel = False  # under dvc repro a stage ends when the next begins; advtui repro says when each ends
    for line in iter(proc.stdout.readline, b""):
        out.write(line)
        out.flush()
        text, now = line.decode(errors="replace"), time.time()
        if PARALLEL_RUN.match(text):
            parallel = True
        elif match := RUNNING_STAGE.match(text):
            if record.stages and not parallel:
                _end(record, record.stages[-1].stage, now, "done")
            record.stages.append(StageRun(match.group(1), now))
        elif match := FINISHED_STAGE.match(text):
            _end(record, match.group(1), now, "done")
        elif match := FAILED_STAGE.match(text):
            _end(record, match.group(1), now, "failed")
        else:
            continue
        record.save(path)
    rc = proc.wait()
    record.ended = time.time()
    record.returncode = rc
    record.stopped_by = signalled[0] if signalled else None
    record.save(path)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
