"""Measure the terminal app: start-up, key latency, idle CPU, and frame rate while a stage is logging.

1. **Start-up and first keys** (``startup``): bare ``advtui`` in a detached 80x24 tmux session; the pane is
   captured every 10 ms. First frame: from process start to the pipeline screen's table header. Then, once
   the first frame is up, two first key presses, each timed from the key to what it shows: ``?`` (the help
   screen over the pipeline while its first ``dvc status`` runs) and, after ``escape``, ``r`` (the Results
   screen's first visit, up to its first table's title). Medians of ``--repeats`` launches. Also the time of
   ``import advtui.tui.app`` alone in a fresh interpreter.
2. **Idle CPU** (``idle``): the app's CPU time (user + system, from /proc) over ``--idle-s`` seconds while it
   sits on the pipeline screen, then on the monitor screen, with no run: what polling costs when nothing
   happens.
3. **Frame rate while a stage logs** (``framerate``): the app (headless, ``App.run_test``) starts a stand-in
   stage through ``dvc repro`` that appends DVCLive rows every ``--delay`` s; the monitor screen shows it.
   A frame is a monitor poll that redrew something (curves, progress or log); frames/s is counted over
   the stage's training phase. The event loop's worst stall over the same window (a 10 ms timer's
   largest lateness) shows whether file reading ever blocks the UI.

    .venv/bin/python bench/tui.py                    # everything, about 2 minutes
    .venv/bin/python bench/tui.py --parts framerate --poll 0.1
    .venv/bin/python bench/tui.py --parts startup idle --repo /tmp/before .   # before and after a change

``--repo`` measures the advtui source tree(s) given instead of this one (the code before a change: e.g.
``git worktree add /tmp/before HEAD~3``); with several, the start-up launches alternate between them. Run with ``OMP_NUM_THREADS=1`` and read the load average it prints
at the start and the end: on a shared machine the figures move with it. Needs tmux (start-up and idle
parts), git and dvc. Uses tests/tui/fake_stage.py as the stand-in stage (no torch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGE_YAML = """stages:
  retrain:
    foreach: [bench]
    do:
      cmd: python fake_stage.py ${{item}} {steps} {delay}
      outs:
        - data/live/E4/${{item}}:
            persist: true
"""
#: What each measured moment shows on the pane (the same in the app before and after issue 14).
FIRST_FRAME = "last run"  # the pipeline table's header
HELP_SHOWN = "advtui keys"
RESULTS_SHOWN = "E1 source models"
#: Seconds after which a wait is taken for a hang (only a guard: no figure comes near it).
HANG_S = 120.0


def _project(root: Path, steps: int, delay: float) -> Path:
    """A git + DVC project with this repo's params.yaml and one stand-in stage, retrain@bench."""
    root.mkdir(parents=True)
    (root / "dvc.yaml").write_text(STAGE_YAML.format(steps=steps, delay=delay))
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copy(REPO / "tests" / "tui" / "fake_stage.py", root / "fake_stage.py")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    return root


class _Pane:
    """Bare ``advtui`` (the code under ``repo``) in a detached 80x24 tmux session, as its own process."""

    def __init__(self, root: Path, repo: Path, name: str) -> None:
        self.name = name
        line = (f"cd {shlex.quote(str(root))} && exec env PYTHONPATH={shlex.quote(str(repo))} "
                f"PATH={shlex.quote(str(BIN))}:$PATH {shlex.quote(str(BIN / 'advtui'))}")
        self.started = time.monotonic()
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", line], check=True)
        self.pid = int(subprocess.run(["tmux", "display-message", "-p", "-t", name, "#{pane_pid}"],
                                      capture_output=True, text=True, check=True).stdout)

    def wait_for(self, text: str, since: float, shown: bool = True) -> float:
        """Seconds from ``since`` until ``text`` shows on the pane (``shown`` False: until it has gone)."""
        while True:
            pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout
            if (text in pane) == shown:
                return time.monotonic() - since
            if time.monotonic() - since > HANG_S:
                raise RuntimeError(f"{text!r} did not show within {HANG_S:.0f} s; pane:\n{pane}")
            time.sleep(0.01)

    def key(self, key: str) -> float:
        """Send ``key``; the moment it was sent."""
        sent = time.monotonic()
        subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)
        return sent

    def cpu_s(self) -> float:
        """The app's CPU seconds so far (user + system, all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, "q"], capture_output=True)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def _keep_server() -> str:
    """A tmux session that lasts the whole bench: without it the tmux server exits with each measured app
    and the next launch can race its shutdown ("server exited unexpectedly")."""
    name = f"advtui-bench-keep-{os.getpid()}"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "cat"], check=True)
    return name


def startup(root: Path, repos: list[Path], repeats: int) -> list[dict[str, list[float]]]:
    """Per launch of bare `advtui`: seconds to its first frame, then the latency of its first key presses; and
    the time of importing the app alone. With several source trees, launches alternate between them, so a
    change in the machine's load hits each alike. One dict of lists per tree."""
    out: list[dict[str, list[float]]] = [
        {"first_frame_s": [], "help_key_s": [], "results_key_s": [], "import_app_s": []} for _ in repos]
    for i in range(repeats):
        for repo, figures in zip(repos, out):
            pane = _Pane(root, repo, f"advtui-bench-{os.getpid()}-{i}")
            try:
                figures["first_frame_s"].append(pane.wait_for(FIRST_FRAME, pane.started))
                figures["help_key_s"].append(pane.wait_for(HELP_SHOWN, pane.key("?")))
                # the next key only once the help has gone: right after escape, r would read as alt+r
                pane.wait_for(HELP_SHOWN, pane.key("Escape"), shown=False)
                figures["results_key_s"].append(pane.wait_for(RESULTS_SHOWN, pane.key("r")))
            finally:
                pane.close()
            start = time.monotonic()
            subprocess.run([sys.executable, "-c", "import advtui.tui.app"], check=True, env={**os.environ,
                           "PYTHONPATH": str(repo)})
            figures["import_app_s"].append(time.monotonic() - start)
    return out


def idle_cpu(root: Path, repo: Path, seconds: float) -> dict[str, float]:
    """The app's CPU use (% of one core) over ``seconds`` on the pipeline screen, then on the monitor screen,
    with no run; each after a settling pause of a few seconds (start-up, first ``dvc status``)."""
    pane = _Pane(root, repo, f"advtui-bench-idle-{os.getpid()}")
    out = {}
    try:
        pane.wait_for(FIRST_FRAME, pane.started)
        for screen, key in (("pipeline", None), ("monitor", "m")):
            if key:
                pane.key(key)
            time.sleep(5.0)
            before, start = pane.cpu_s(), time.monotonic()
            time.sleep(seconds)
            out[screen] = 100 * (pane.cpu_s() - before) / (time.monotonic() - start)
    finally:
        pane.close()
    return out


async def _framerate(root: Path, repo: Path, poll: float | None) -> dict[str, float]:
    sys.path.insert(0, str(repo))
    from advtui.appcore import runs
    from advtui.tui.app import AdvtuiApp
    from advtui.appcore.live import read_progress

    app = AdvtuiApp(root) if poll is None else AdvtuiApp(root, poll_s=poll)
    progress = root / "data" / "progress" / "retrain-bench.json"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.start_run(["retrain@bench"])
        await pilot.press("m")
        monitor = app.screen
        stall, last = 0.0, time.monotonic()
        while (read_progress(progress) or {}).get("phase") != "train":
            await asyncio.sleep(0.01)
        frames0, t0 = monitor.frames, time.monotonic()
        last = t0
        while (read_progress(progress) or {}).get("phase") == "train":
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stall, last = max(stall, now - last - 0.01), now
        frames, seconds = monitor.frames - frames0, time.monotonic() - t0
        while runs.is_alive(app.current_run):
            await asyncio.sleep(0.1)
        await pilot.press("q")
    return {"seconds": seconds, "frames": frames, "frames_per_s": frames / seconds,
            "max_event_loop_stall_ms": 1000 * stall}


def _median(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (all: {', '.join(f'{v:.2f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["startup", "idle", "framerate"],
                        choices=["startup", "idle", "framerate"])
    parser.add_argument("--repo", type=Path, nargs="+", default=[REPO],
                        help="the advtui source tree(s) to measure (default: this one); start-up launches alternate")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--idle-s", type=float, default=10.0, help="seconds of idle CPU measured per screen")
    parser.add_argument("--poll", type=float, default=None, help="monitor poll interval, s (default: the app's)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between the stand-in stage's rows")
    args = parser.parse_args()
    repos = [repo.resolve() for repo in args.repo]
    if "framerate" in args.parts and len(repos) > 1:
        parser.error("framerate imports the app in this process: measure one --repo at a time")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, load {os.getloadavg()[0]:.2f}")
    tmux = shutil.which("tmux") is not None
    keep = _keep_server() if tmux and {"startup", "idle"} & set(args.parts) else None
    with tempfile.TemporaryDirectory() as tmp:
        if "startup" in args.parts or "idle" in args.parts:
            root = _project(Path(tmp) / "startup", 10, 0.1)
        if "startup" in args.parts and tmux:
            for repo, result in zip(repos, startup(root, repos, args.repeats)):
                print(f"{repo}:")
                print(f"  first frame (tmux 80x24): {_median(result['first_frame_s'])}")
                print(f"  first key ? (help): {_median(result['help_key_s'])}")
                print(f"  first visit r (Results, first table): {_median(result['results_key_s'])}")
                print(f"  import advtui.tui.app: {_median(result['import_app_s'])}")
        if "idle" in args.parts and tmux:
            for repo in repos:
                result = idle_cpu(root, repo, args.idle_s)
                print(f"{repo}: idle CPU over {args.idle_s:.0f} s: "
                      + ", ".join(f"{k} {v:.1f}%" for k, v in result.items()))
        if not tmux and {"startup", "idle"} & set(args.parts):
            print("startup, idle: skipped, tmux is not installed")
        if "framerate" in args.parts:
            root = _project(Path(tmp) / "framerate", args.steps, args.delay)
            result = asyncio.run(_framerate(root, repos[0], args.poll))
            print(f"{repos[0]}: monitor while a stage logs {1 / args.delay:.0f} rows/s: {result['frames']} frames "
                  f"in {result['seconds']:.1f} s = {result['frames_per_s']:.2f} frames/s "
                  f"(poll {'default' if args.poll is None else args.poll}); "
                  f"worst event-loop stall {result['max_event_loop_stall_ms']:.0f} ms")
    if keep:
        subprocess.run(["tmux", "kill-session", "-t", keep], capture_output=True)
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
