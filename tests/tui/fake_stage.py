"""A stand-in stage for the TUI tests: logs DVCLive-shaped rows and a progress file over a few seconds.

``python fake_stage.py NAME [STEPS] [DELAY]``: STEPS training steps DELAY s apart (10 per epoch) into
``data/live/E4/NAME``, then an "attack" phase, while ``data/progress/retrain-NAME.json`` says how far it
is; at the end ``data/metrics/E4/NAME.json``. No torch: it only imitates what the real stages write.
"""

import json
import os
import sys
import time
from pathlib import Path


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj))
    os.replace(tmp, path)


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
    for done in range(0, 101, 20):
        write_json(progress, {"stage": f"retrain@{name}", "phase": "attack l2", "done": done, "total": 100,
                              "rate": 200.0, "eta_s": (100 - done) / 200, "updated": time.time(),
                              "state": "running", "robust_acc": 1 - done / 200})
        time.sleep(delay)
    write_json(Path("data/metrics/E4") / f"{name}.json", {"dataset": name, "clean_acc": 0.9})
    write_json(progress, {"stage": f"retrain@{name}", "state": "done", "updated": time.time()})


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) if i == 0 else float(a) for i, a in enumerate(sys.argv[2:])))
