"""Measure the terminal app: start-up time, and frame rate while a stage is logging.

1. **Start-up**: bare ``advtui`` in a detached 80x24 tmux session, from process start to the first frame
   that shows the pipeline screen's title (the pane is captured every 20 ms); median of ``--repeats``.
   Also the time of ``import advtui.tui.app`` alone in a fresh interpreter.
2. **Frame rate while a stage logs**: the app (headless, ``App.run_test``) starts a stand-in stage
   through ``dvc repro`` that appends DVCLive rows every ``--delay`` s; the monitor screen shows it.
   A frame is a monitor poll that redrew something (curves, progress or log); frames/s is counted over
   the stage's training phase. The event loop's worst stall over the same window (a 10 ms timer's
   largest lateness) shows whether file reading ever blocks the UI.

    .venv/bin/python bench/tui.py                    # both, about 40 s
    .venv/bin/python bench/tui.py --parts framerate --poll 0.1

Needs tmux (start-up part), git and dvc. Uses tests/tui/fake_stage.py as the stand-in stage (no torch).
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


def startup(root: Path, repeats: int) -> dict[str, float]:
    """Median seconds from launching bare `advtui` in tmux to its first frame; and the app's import time."""
    exe = BIN / "advtui"
    line = (f"cd {shlex.quote(str(root))} && PYTHONPATH={shlex.quote(str(REPO))} "
            f"PATH={shlex.quote(str(BIN))}:$PATH {shlex.quote(str(exe))}")
    times = []
    for i in range(repeats):
        name = f"advtui-bench-{os.getpid()}-{i}"
        start = time.monotonic()
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", line], check=True)
        try:
            while True:
                pane = subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout
                if "advtui pipeline" in pane:
                    times.append(time.monotonic() - start)
                    break
                if time.monotonic() - start > 60:
                    raise RuntimeError(f"advtui did not draw within 60 s; pane:\n{pane}")
                time.sleep(0.02)
            subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
            time.sleep(0.5)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    imports = []
    for _ in range(repeats):
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "import advtui.tui.app"], check=True, env={**os.environ,
                       "PYTHONPATH": str(REPO)})
        imports.append(time.monotonic() - start)
    return {"first_frame_s": statistics.median(times), "first_frame_all_s": times,
            "import_app_s": statistics.median(imports)}


async def _framerate(root: Path, poll: float, steps: int, delay: float) -> dict[str, float]:
    sys.path.insert(0, str(REPO))
    from advtui.appcore import runs
    from advtui.tui.app import AdvtuiApp
    from advtui.appcore.live import read_progress

    app = AdvtuiApp(root, poll_s=poll)
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
    return {"poll_s": poll, "rows_per_s_written": 1 / delay, "seconds": seconds, "frames": frames,
            "frames_per_s": frames / seconds, "max_event_loop_stall_ms": 1000 * stall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["startup", "framerate"], choices=["startup", "framerate"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.25, help="monitor poll interval, s (the app's default)")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds between the stand-in stage's rows")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        if "startup" in args.parts:
            if shutil.which("tmux") is None:
                print("startup: skipped, tmux is not installed")
            else:
                result = startup(_project(Path(tmp) / "startup", 10, 0.1), args.repeats)
                print(f"start-up to first frame (tmux 80x24): median {result['first_frame_s']:.2f} s "
                      f"(all: {', '.join(f'{t:.2f}' for t in result['first_frame_all_s'])}); "
                      f"import advtui.tui.app: {result['import_app_s']:.2f} s")
        if "framerate" in args.parts:
            root = _project(Path(tmp) / "framerate", args.steps, args.delay)
            result = asyncio.run(_framerate(root, args.poll, args.steps, args.delay))
            print(f"monitor while a stage logs {result['rows_per_s_written']:.0f} rows/s: {result['frames']} frames "
                  f"in {result['seconds']:.1f} s = {result['frames_per_s']:.2f} frames/s (poll {args.poll} s); "
                  f"worst event-loop stall {result['max_event_loop_stall_ms']:.0f} ms")
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
