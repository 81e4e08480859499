"""Smoke pipeline wall time (run by hand): a fresh clone's `dvc repro`, stage by stage.

Clones the repository's committed HEAD into a temporary folder (so no cached artifact helps), runs
`dvc repro` there with the current interpreter's environment, and times each stage from the moment DVC
announces it to the next announcement. Prints the stages slowest first, the sum per stage family, the
total, and the 1-minute load average at start and end (a busy machine inflates every figure).

    .venv/bin/python bench/pipeline_times.py                       # the smoke profile, ~25 min on 2 idle cores
    .venv/bin/python bench/pipeline_times.py --json times.json --keep /tmp/smoke-run
    .venv/bin/python bench/pipeline_times.py --jobs 2              # `advtui repro --jobs 2`: stages two at a time
    .venv/bin/python bench/pipeline_times.py --jobs 2 --cold       # ... each stage a new process, as dvc repro
    .venv/bin/python bench/pipeline_times.py --jobs 2 --targets retrain curve_E1 curve_E4 attack attack_sl probe
                                                                   # E1-E6 only: those stages and what they need
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advtui.appcore.runwrap import RUNNING_STAGE
from advtui.pipeline.parallel import FINISHED_STAGE

def run_timed(clone: Path, jobs: int = 0, cold: bool = False, targets: tuple[str, ...] = ()) -> tuple[list[tuple[str, float]], dict[str, float], float, int,
                                                                      dict[str, float], float]:
    """Run `dvc repro [TARGETS]` (``jobs`` 0) or `advtui repro [TARGETS] --jobs JOBS [--cold]` in `clone`; return (stage, seconds) in
    start order, each stage's CPU seconds where `advtui repro` reports them (forked stages), the total seconds,
    the exit code, under `advtui repro` each stage's command wall time (its `Finished stage` line's), and the CPU
    seconds the runner process used itself (DVC's checks and commits; its last reading before it exited). Under
    `dvc repro` a stage lasts until the next one is announced (so it includes DVC's bookkeeping); under `advtui
    repro` from its start to its `Finished stage` line, which comes after DVC has committed its outputs."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(clone)
    cmd = ["advtui", "repro", "--jobs", str(jobs), *(["--cold"] if cold else [])] if jobs else ["dvc", "repro"]
    cmd += list(targets)
    start = time.perf_counter()
    started: dict[str, float] = {}
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}
    command: dict[str, float] = {}
    runner_cpu = 0.0
    current = None
    proc = subprocess.Popen(cmd, cwd=clone, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        now = time.perf_counter()
        runner_cpu = _own_cpu(proc.pid, runner_cpu)
        if match := RUNNING_STAGE.match(line):
            if current is not None and not jobs:
                times[current] = now - started[current]
            current = match.group(1)
            started[current] = now
        elif (match := FINISHED_STAGE.match(line)) and match.group(1) in started:
            times[match.group(1)] = now - started[match.group(1)]
            command[match.group(1)] = float(match.group(2))
            if match.group(3):
                cpu[match.group(1)] = float(match.group(3))
    code = proc.wait()
    end = time.perf_counter()
    if current is not None and current not in times:
        times[current] = end - started[current]
    return [(stage, times[stage]) for stage in started if stage in times], cpu, end - start, code, command, runner_cpu


def _own_cpu(pid: int, last: float) -> float:
    """CPU seconds process ``pid`` has used itself, children not counted (Linux /proc; ``last`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return last
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slot_summary(times: list[tuple[str, float]], command: dict[str, float], total: float, jobs: int) -> str:
    """Where a parallel run's slots went: running commands, DVC's bookkeeping around them (announcement to
    `Finished stage`, less the command), and idle (no runnable stage, or the runner between stages)."""
    busy = sum(command.values())
    booked = sum(seconds for _, seconds in times) - busy
    idle = jobs * total - busy - booked
    return (f"{jobs} slots x {total / 60:.1f} min: commands {busy / 60:.1f} min, DVC bookkeeping {booked / 60:.1f} min "
            f"({booked / max(len(times), 1):.1f} s a stage), idle {idle / 60:.1f} min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--keep", type=Path, help="clone here and keep it (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the times here")
    parser.add_argument("--jobs", type=int, default=0,
                        help="run `advtui repro --jobs N` instead of `dvc repro` (stages overlap, so the per-stage "
                             "seconds add up to more than the total)")
    parser.add_argument("--cold", action="store_true",
                        help="with --jobs: `advtui repro --cold`, every stage its own new process (imports included)")
    parser.add_argument("--targets", nargs="+", default=[],
                        help="stages (or families) to reproduce with what they need, as `dvc repro` takes them")
    args = parser.parse_args()
    clone = args.keep or Path(tempfile.mkdtemp(prefix="advtui-times-"))
    if clone.exists() and any(clone.iterdir()):
        sys.exit(f"error: {clone} is not empty; pass an empty or new folder to --keep")
    subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, text=True,
                          capture_output=True, check=True).stdout.strip()
    load_start = os.getloadavg()[0]
    times, cpu, total, code, command, runner_cpu = run_timed(clone, args.jobs, args.cold, tuple(args.targets))
    load_end = os.getloadavg()[0]
    families: dict[str, float] = {}
    for stage, seconds in times:
        family = stage.split("@")[0]
        families[family] = families.get(family, 0.0) + seconds
    print(f"commit {head}" + (f", targets {' '.join(args.targets)}" if args.targets else "") + f", {len(times)} stages, exit {code}, total {total / 60:.1f} min, "
          f"load {load_start:.1f} -> {load_end:.1f}"
          + (f", stage CPU {sum(cpu.values()) / 60:.1f} min" if cpu else ""))
    if args.jobs:
        print(slot_summary(times, command, total, args.jobs))
        print(f"runner CPU (the advtui repro process itself: DVC's checks and commits): {runner_cpu:.0f} s")
    print("\nper family (s):")
    for family, seconds in sorted(families.items(), key=lambda kv: -kv[1]):
        print(f"  {family:28s} {seconds:7.1f}")
    print("\nper stage (s):")
    for stage, seconds in sorted(times, key=lambda kv: -kv[1]):
        print(f"  {stage:40s} {seconds:7.1f}" + (f"  CPU {cpu[stage]:7.1f}" if stage in cpu else ""))
    if args.json:
        args.json.write_text(json.dumps({"commit": head, "targets": args.targets, "jobs": args.jobs, "exit": code, "total_s": total,
                                         "load": [load_start, load_end], "stages": times, "cpu": cpu,
                                         "command": command, "runner_cpu": runner_cpu}, indent=1))
    if args.keep is None:
        shutil.rmtree(clone, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
