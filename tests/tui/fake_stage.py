"""A stand-in stage for the TUI tests: logs DVCLive-shaped rows and a progress file over a few seconds.

``python fake_stage.py NAME [STEPS] [DELAY]``: STEPS training steps DELAY s apart (10 per epoch) into
``data/live/E4/NAME``, then an "attack" phase, while ``data/progress/retrain-NAME.json`` says how far it
is; at the end ``data/metrics/E4/NAME.json``. No torch: it only imitates what the real stages write.

A test drives it step by step, whatever the machine's speed, with hold files: while ``holds/NAME-train``
exists the stage waits after half of its training steps (progress phase "train"), while
``holds/NAME-attack`` exists it waits in its attack phase (phase "attack l2"). Without hold files it runs
straight through.
"""

import json
import os
import sys
import time
from pathlib import Path

HOLDS = Path("holds")
#: A held stage whose test died gives up after this long, so no stand-in outlives a test run for good.
HOLD_LIMIT_S = 900.0


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


def hold(name: str, point: str) -> None:
    """Wait while the test holds the stage at ``point`` (``holds/NAME-POINT`` exists)."""
    path = HOLDS / f"{name}-{point}"
    deadline = time.monotonic() + HOLD_LIMIT_S
    while path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"fake_stage: {path} was never released")
        time.sleep(0.02)


def main(name: str, steps: int = 30, delay: float = 0.1) -> None:
    live = Path("data/live/E4") / name / "plots" / "metrics"
    (live / "train").mkdir(parents=True, exist_ok=True)
    (live / "epoch").mkdir(parents=True, exist_ok=True)
    progress = Path("data/progress") / f"retrain-{name}.json"
    files = {key: open(live / rel, "w") for key, rel in
             (("loss", "train/loss.tsv"), ("acc", "train/acc.tsv"), ("test_acc", "epoch/test_acc.tsv"))}
    for key, handle in files.items():
        handle.write(f"step\t{key}\n")
    start = time.time()
    for step in range(steps):
        files["loss"].write(f"{step}\t{2.3 / (1 + 0.3 * step)}\n")
        files["acc"].write(f"{step}\t{min(1.0, 0.1 + 0.03 * step)}\n")
        if (step + 1) % 10 == 0:
            files["test_acc"].write(f"{step}\t{min(1.0, 0.05 + 0.03 * step)}\n")
        for handle in files.values():
            handle.flush()
        rate = (step + 1) / (time.time() - start)
        write_json(progress, {"stage": f"retrain@{name}", "phase": "train", "done": step + 1, "total": steps,
                              "rate": rate, "eta_s": (steps - step - 1) / rate, "updated": time.time(),
                              "state": "running"})
        print(f"step {step} loss {2.3 / (1 + 0.3 * step):.3f}", flush=True)
        time.sleep(delay)
        if step + 1 == steps // 2:
            hold(name, "train")
    for done in range(0, 101, 20):
        write_json(progress, {"stage": f"retrain@{name}", "phase": "attack l2", "done": done, "total": 100,
                              "rate": 200.0, "eta_s": (100 - done) / 200, "updated": time.time(),
                              "state": "running", "robust_acc": 1 - done / 200})
        time.sleep(delay)
        if done == 0:
            hold(name, "attack")
    write_json(Path("data/metrics/E4") / f"{name}.json", {"dataset": name, "clean_acc": 0.9})
    write_json(progress, {"stage": f"retrain@{name}", "state": "done", "updated": time.time()})


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[2:])))
