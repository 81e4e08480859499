"""`advtui` in a real terminal (tmux, 80x24): open it, start a stage, lose the terminal mid-run (the
session is killed, as when SSH drops), reopen and find the run re-attached, then quit stopping it.

The stand-in stage is held after half its steps (``pilots.hold``), so the run is still live when the second
terminal opens, however long the machine takes to start the app twice."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advtui.appcore import runs
from pilots import hold, wait_for

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None,
                                                   reason="tmux is not installed (apt-get install tmux)")]


def advtui_command(root: Path, status_file: Path) -> str:
    """A shell line that runs bare `advtui` (this checkout first) in ``root`` and records its exit code."""
    exe = Path(sys.executable).parent / "advtui"
    env = f"PYTHONPATH={shlex.quote(str(REPO))} PATH={shlex.quote(str(exe.parent))}:$PATH TERM=xterm-256color"
    return f"cd {shlex.quote(str(root))} && {env} {shlex.quote(str(exe))}; echo $? > {shlex.quote(str(status_file))}"


class Tmux:
    """One detached tmux session of a given size."""

    def __init__(self, name: str, command: str, size: tuple[int, int] = (80, 24)) -> None:
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command],
                       check=True)

    def pane(self) -> str:
        proc = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return proc.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str) -> None:
        """Wait until ``text`` shows in the pane (the failure shows the pane as it was then)."""
        try:
            wait_for(lambda: text in self.pane(), f"{text!r} to show")
        except AssertionError as err:
            raise AssertionError(f"{err}; pane:\n{self.pane()}") from None

    def alive(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", self.name], capture_output=True).returncode == 0

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def test_advtui_in_tmux_survives_a_lost_terminal(tiny_project: Path, tmp_path: Path) -> None:
    status = tmp_path / "exit-status"
    hold(tiny_project, "tiny", "train")  # never released: the run is live until the app stops it
    first = Tmux(f"advtui-test-{os.getpid()}-a", advtui_command(tiny_project, status))
    try:
        first.wait_for("q Quit")  # the mode bar: the first frame
        first.wait_for("never run")
        first.keys("Enter")  # the cursor starts on the first stage, retrain@tiny
        first.wait_for("● running")
    finally:
        first.kill()  # the terminal is gone: the app gets SIGHUP and dies, the run must not
    record = runs.live_run(tiny_project)
    assert record is not None and record.targets == ["retrain@tiny"]
    second = Tmux(f"advtui-test-{os.getpid()}-b", advtui_command(tiny_project, status))
    try:
        second.wait_for("q Quit")
        second.wait_for("● running")  # re-attached
        second.keys("m")
        second.wait_for("● retrain@tiny · running")
        second.keys("q")
        second.wait_for("Leave it running")
        second.keys("s")
        wait_for(lambda: not second.alive(), "the app to stop the run and quit")
    finally:
        second.kill()
    assert status.read_text().strip() == "0"
    assert not runs.is_alive(runs.RunRecord.load(runs.record_path(tiny_project, record.id)))
