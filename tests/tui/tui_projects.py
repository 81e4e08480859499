"""Builders and fixed values of the TUI tests' project folders (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from advtui.catalog.stages import family
from advtui.stats import interval95

REPO = Path(__file__).resolve().parents[2]
#: The venv's bin folder first, so ``dvc`` and ``advtui`` resolve to the tested install.
BIN = str(Path(sys.executable).parent)

E1_RESULTS = {
    "standard": {"clean_acc": 0.991, "robust_acc_l2": 0.021, "robust_acc_linf": 0.0,
                 "adversarial": {"norm": "l2", "eps": 0.0, "steps": 1, "step_size": None}},
    "robust_l2": {"clean_acc": 0.882, "robust_acc_l2": 0.868, "robust_acc_linf": 0.837,
                  "adversarial": {"norm": "l2", "eps": 1.0, "steps": 3, "step_size": None}},
    "robust_linf": {"clean_acc": 0.874, "robust_acc_l2": 0.851, "robust_acc_linf": 0.846,
                    "adversarial": {"norm": "linf", "eps": 0.0313725, "steps": 3, "step_size": None}},
}
E4_RESULTS = {  # set: (clean_acc, robust_acc_l2, robust_agreement, colour_agreement, nonrobust_agreement)
    "natural": (1.0, 0.021, 0.909, 0.909, 1.0),
    "natural_nopattern": (0.902, 0.412, 0.909, 0.909, 0.102),
    "D_R": (0.866, 0.094, 0.233, 0.717, 0.809),
    "D_NR": (1.0, 0.0, 0.011, 0.011, 1.0),
    "D_rand": (1.0, 0.0, 0.099, 0.099, 1.0),
    "D_det": (1.0, 0.0, 0.022, 0.022, 1.0),
    "zero_robust": (1.0, 0.0, 0.1, 0.1, 1.0),
}
E4_DONE = tuple(E4_RESULTS)
#: Each E4 set's three seeds lie this far below and above its mean (clean and L2, where that stays within [0, 1];
#: else all three at the mean): a 95% interval of +-4.303 * SEED_SPREAD / sqrt(3), 2.5 points for 0.01.
SEED_SPREAD = 0.01


def seed_values(mean: float) -> list[float]:
    """The three per-seed values of a fake E4 measurement with mean ``mean``."""
    if SEED_SPREAD <= mean <= 1 - SEED_SPREAD:
        return [mean - SEED_SPREAD, mean, mean + SEED_SPREAD]
    return [mean] * 3
PROGRESS = {"stage": "construct@D_det", "phase": "construct", "done": 500, "total": 1000, "rate": 40.0,
            "eta_s": 12.5, "updated": 1_800_000_000.0, "state": "running", "robust_acc": 0.25}
ATTACKS = {
    "l2": [{"kind": "pgd", "norm": "l2", "eps": 0.25, "steps": 20, "step_size": 0.05, "restarts": 1,
            "version": "standard", "name": "pgd20-l2-eps0.25"}],
    "linf": [{"kind": "pgd", "norm": "linf", "eps": 0.0156863, "steps": 20, "step_size": 0.0039216,
              "restarts": 1, "version": "standard", "name": "pgd20-linf-eps0.0156863"}],
}
TINY_STEPS, TINY_DELAY = 50, 0.1
TINY_SECONDS = TINY_STEPS * TINY_DELAY + 0.6
TINY_DVC_YAML = f"""stages:
  retrain:
    foreach: [tiny, quick]
    do:
      cmd: python fake_stage.py ${{item}} {TINY_STEPS} {TINY_DELAY}
      deps: [fake_stage.py]
      outs:
        - data/live/E4/${{item}}:
            persist: true
      metrics:
        - data/metrics/E4/${{item}}.json:
            persist: true
"""
STEPS_PER_EPOCH = 10
EPOCHS = 4


def curve(step: int) -> tuple[float, float]:
    """The fixed (loss, accuracy) of the fake DVCLive logs at global step ``step``."""
    return 2.3 / (1 + 0.2 * step), min(1.0, 0.1 + 0.025 * step)


def write_live(folder: Path, steps_per_epoch: int = STEPS_PER_EPOCH, epochs: int = EPOCHS) -> None:
    """DVCLive-shaped logs (the trainer's layout) with the values of ``curve``."""
    train, epoch = folder / "plots" / "metrics" / "train", folder / "plots" / "metrics" / "epoch"
    train.mkdir(parents=True, exist_ok=True)
    epoch.mkdir(parents=True, exist_ok=True)
    steps = range(steps_per_epoch * epochs)
    ends = [s for s in steps if (s + 1) % steps_per_epoch == 0]
    (train / "loss.tsv").write_text("step\tloss\n" + "".join(f"{s}\t{curve(s)[0]}\n" for s in steps))
    (train / "acc.tsv").write_text("step\tacc\n" + "".join(f"{s}\t{curve(s)[1]}\n" for s in steps))
    (epoch / "train_loss.tsv").write_text("step\ttrain_loss\n" + "".join(f"{s}\t{curve(s)[0]}\n" for s in ends))
    (epoch / "test_acc.tsv").write_text("step\ttest_acc\n" + "".join(f"{s}\t{curve(s)[1]}\n" for s in ends))
    (folder / "metrics.json").write_text(json.dumps({"step": ends[-1], "epoch": {"test_acc": curve(ends[-1])[1]}}))


def _dump(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True))


def _run(cmd: list[str], cwd: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00",
           "GIT_COMMITTER_DATE": "2026-01-01T00:00:00", "DVC_NO_ANALYTICS": "1"}
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)


def make_fresh(root: Path) -> None:
    """A fresh clone: this repository's dvc.yaml and params.yaml, committed."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    (root / ".gitignore").write_text("/data/*\n/.advtui/\n")
    init_repo(root)


def init_repo(root: Path) -> None:
    """git init, dvc init, commit everything: a clone as git would give it."""
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["git", "config", "user.email", "test@example.com"], root)
    _run(["git", "config", "user.name", "test"], root)
    _run([str(Path(BIN) / "dvc"), "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "fresh clone"], root)


def fill_project(root: Path) -> None:
    """The fixed data of ``fake_project`` (see conftest.py)."""
    data = root / "data"
    for model, result in E1_RESULTS.items():
        _dump(data / "metrics" / "E1" / f"{model}.json", {**result, "model": model, "n": 1000, "attacks": ATTACKS})
    for name, (clean, robust, shape, colour, pattern) in E4_RESULTS.items():
        per_seed = {"clean_acc": seed_values(clean), "robust_acc_l2": seed_values(robust),
                    "robust_acc_linf": seed_values(0.0)}
        _dump(data / "metrics" / "E4" / f"{name}.json", {
            "dataset": name, "clean_acc": clean, "robust_acc_l2": robust, "robust_acc_linf": 0.0, "n": 1000,
            "n_train": 1000, "attacks": ATTACKS, "robust_agreement": shape, "colour_agreement": colour,
            "nonrobust_agreement": pattern, "seeds": [0, 1, 2], "per_seed": per_seed,
            "ci95": {key: interval95(values) for key, values in per_seed.items()}})
        if name not in ("natural", "natural_nopattern"):
            _dump(data / "metrics" / "construct" / f"{name}.json", {
                "dataset": name, "n": 1000, "robust_agreement": shape, "colour_agreement": colour,
                "nonrobust_agreement": pattern, "mean_l2_change": 0.5})
    write_live(data / "live" / "E1" / "standard")
    write_live(data / "live" / "E4" / "D_R")
    _dump(data / "progress" / "construct-D_det.json", PROGRESS)
    # source@standard's deps and outs exist, so DVC can commit it: the one "up to date" stage.
    # (its code deps: every advtui file it runs, from the catalogue that generates dvc.yaml)
    for dep in family("source").code_deps():
        (root / dep).parent.mkdir(parents=True, exist_ok=True)
        (root / dep).write_text(f"# stand-in for {dep}\n")
    (data / "models").mkdir(parents=True, exist_ok=True)
    (data / "models" / "standard.safetensors").write_bytes(b"stand-in weights")
    _run([str(Path(BIN) / "dvc"), "commit", "-q", "-f", "source@standard"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "source@standard ran"], root)


