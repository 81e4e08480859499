"""The tiny process that owns a detached run: ``python -m advtui.appcore.runwrap RECORD -- CMD...``.

It runs CMD (``dvc repro ...``) in its own process group, copies CMD's output to its stdout (the run's
log file), records each ``Running stage 'x':`` line DVC prints with its time, and on exit writes the end
time and exit code into RECORD. A SIGINT or SIGTERM sent to the group reaches DVC and the stage
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
    for line in iter(proc.stdout.readline, b""):
        out.write(line)
        out.flush()
        match = RUNNING_STAGE.match(line.decode(errors="replace"))
        if match:
            now = time.time()
            if record.stages:
                record.stages[-1].ended = now
            record.stages.append(StageRun(match.group(1), now))
            record.save(path)
    rc = proc.wait()
    record.ended = time.time()
    if record.stages and record.stages[-1].ended is None:
        record.stages[-1].ended = record.ended
    record.returncode = rc
    record.stopped_by = signalled[0] if signalled else None
    record.save(path)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
