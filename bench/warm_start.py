"""What `advtui repro`'s fork server saves per stage (run by hand): the CPU a new stage process spends importing.

For each stage runner of dvc.yaml, a new interpreter imports what that stage imports before its first tensor op
(the runner's module, and the library its paradigm loads lazily: diffusers for DM, timm for MIM), and its CPU
time (user + system, from the child's rusage) is taken; then the same imports in a child forked from a process
that ran `advtui.pipeline.preload` (what `advtui repro` does), whose CPU is the fork's alone. Repeated, median
per runner; multiplied by the number of dvc.yaml stages each runner serves, it gives the CPU saved per pipeline.

    .venv/bin/python bench/warm_start.py                # ~2 min on 2 cores
    .venv/bin/python bench/warm_start.py --repeats 5 --json warm.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: The library each paradigm's stages import lazily (inside the paradigm's model builder), by stage item prefix.
LAZY = {"DM": "from diffusers import UNet2DModel, DDPMScheduler", "MIM": "import timm"}


def stage_imports(dvc_yaml: Path) -> Counter:
    """(runner, lazy import or "") -> how many stages of ``dvc_yaml`` run that runner with that import."""
    counts: Counter = Counter()
    for spec in yaml.safe_load(dvc_yaml.read_text())["stages"].values():
        words = spec["do"]["cmd"].split() if "do" in spec else spec["cmd"].split()
        if words[:2] != ["advtui", "stage"]:
            continue
        items = spec.get("foreach", [None])
        for item in items if isinstance(items, list) else list(items):
            lazy = next((code for prefix, code in LAZY.items() if str(item).startswith(f"{prefix}-")), "")
            counts[(words[2], lazy)] += 1
    return counts


def cold_cpu(code: str) -> float:
    """CPU seconds of a new interpreter that runs ``code``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def warm_cpu(code: str) -> float:
    """CPU seconds of a child forked after the preload that runs ``code`` (already imported: a lookup)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pid = os.fork()
    if pid == 0:
        exec(code)  # noqa: S102 (the benchmark's own import lines)
        os._exit(0)
    os.waitpid(pid, 0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    counts = stage_imports(ROOT / "dvc.yaml")
    codes = {key: f"import advtui.pipeline.runners.{key[0]}" + (f"; {key[1]}" if key[1] else "") for key in counts}
    cold = {key: [cold_cpu(code) for _ in range(args.repeats)] for key, code in codes.items()}
    import advtui.pipeline.preload  # noqa: F401  (what the fork server imports, once)

    warm = {key: [warm_cpu(code) for _ in range(args.repeats)] for key, code in codes.items()}
    rows = []
    for key in sorted(counts, key=lambda k: -counts[k] * statistics.median(cold[k])):
        c, w = statistics.median(cold[key]), statistics.median(warm[key])
        rows.append({"runner": key[0], "lazy": key[1].split()[1] if key[1] else "", "stages": counts[key],
                     "cold_cpu_s": round(c, 2), "warm_cpu_s": round(w, 3), "saved_s": round(counts[key] * (c - w), 1)})
    print(f"{'runner':12s} {'lazy':10s} {'stages':>6s} {'new process CPU s':>18s} {'forked CPU s':>13s} {'saved s':>8s}")
    for r in rows:
        print(f"{r['runner']:12s} {r['lazy']:10s} {r['stages']:6d} {r['cold_cpu_s']:18.2f} {r['warm_cpu_s']:13.3f} "
              f"{r['saved_s']:8.1f}")
    total = sum(r["saved_s"] for r in rows)
    print(f"{sum(counts.values())} stages: {total:.0f} s of CPU saved per pipeline ({total / 60:.1f} min), "
          f"load {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "saved_s": total}, indent=1))


if __name__ == "__main__":
    main()
