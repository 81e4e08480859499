"""Shared fixtures of the TUI tests: throw-away project folders with fixed, deterministic contents.

Fixtures (each returns a fresh copy under the test's ``tmp_path``; a session-wide template is built once,
since ``git``/``dvc`` calls take a second or two here):

- ``fresh_project``: what a fresh clone holds: this repository's ``dvc.yaml`` and ``params.yaml``, a git
  repository with them committed, ``dvc init`` done, no ``dvc.lock`` and no ``data/``. Every screen must
  show its empty state (with a hint) here.
- ``fake_project``: ``fresh_project`` plus fixed data, as after part of the smoke pipeline ran:

  * ``data/metrics/E1/{standard,robust_l2,robust_linf}.json``, ``data/metrics/construct/<set>.json`` and
    ``data/metrics/E4/<set>.json`` for every set of ``E4_DONE`` (``neg_robust`` is left out on purpose, so
    its report row is ``missing``); the numbers are ``E1_RESULTS`` / ``E4_RESULTS`` below;
  * DVCLive files of ``source@standard`` (``data/live/E1/standard``) and ``retrain@D_R``
    (``data/live/E4/D_R``): ``plots/metrics/train/{loss,acc}.tsv`` per step and
    ``plots/metrics/epoch/{train_loss,test_acc}.tsv`` per epoch, values from ``curve`` below;
  * a progress file ``data/progress/construct-D_det.json`` of a stage caught mid-way (``PROGRESS``), with a
    fixed ``updated`` time;
  * ``source@standard`` committed to ``dvc.lock`` (its deps are small stand-in files), so it reads
    "up to date"; every other stage has no lock entry ("never run").

- ``tiny_project``: a git + DVC project whose ``dvc.yaml`` has one real, quick stage family,
  ``retrain@tiny`` and ``retrain@quick`` (``fake_stage.py``: DVCLive rows and a progress file over about
  ``TINY_SECONDS`` s, no torch); for tests that start, watch and stop runs.

Nothing in the first two folders depends on the clock or on process ids, so snapshots of them are stable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    "D_R": (0.866, 0.094, 0.233, 0.717, 0.809),
    "D_NR": (1.0, 0.0, 0.011, 0.011, 1.0),
    "D_rand": (1.0, 0.0, 0.099, 0.099, 1.0),
    "D_det": (1.0, 0.0, 0.022, 0.022, 1.0),
    "zero_robust": (1.0, 0.0, 0.1, 0.1, 1.0),
}
E4_DONE = tuple(E4_RESULTS)
PROGRESS = {"stage": "construct@D_det", "phase": "construct", "done": 500, "total": 1000, "rate": 40.0,
            "eta_s": 12.5, "updated": 1_800_000_000.0, "state": "running", "robust_acc": 0.25}
ATTACKS = {
    "l2": [{"kind": "pgd", "norm": "l2", "eps": 0.25, "steps": 20, "step_size": 0.05, "restarts": 1,
            "version": "standard", "name": "pgd20-l2-eps0.25"}],
    "linf": [{"kind": "pgd", "norm": "linf", "eps": 0.0156863, "steps": 20, "step_size": 0.0039216,
              "restarts": 1, "version": "standard", "name": "pgd20-linf-eps0.0156863"}],
}
TINY_STEPS, TINY_DELAY = 30, 0.1
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


def _make_fresh(root: Path) -> None:
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    (root / ".gitignore").write_text("/data/*\n/.advtui/\n")
    _init_repo(root)


def _init_repo(root: Path) -> None:
    _run(["git", "init", "-q", "-b", "main"], root)
    _run(["git", "config", "user.email", "test@example.com"], root)
    _run(["git", "config", "user.name", "test"], root)
    _run([str(Path(BIN) / "dvc"), "init", "-q"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "fresh clone"], root)


def _fill(root: Path) -> None:
    data = root / "data"
    for model, result in E1_RESULTS.items():
        _dump(data / "metrics" / "E1" / f"{model}.json", {**result, "model": model, "n": 1000, "attacks": ATTACKS})
    for name, (clean, robust, shape, colour, pattern) in E4_RESULTS.items():
        _dump(data / "metrics" / "E4" / f"{name}.json", {
            "dataset": name, "clean_acc": clean, "robust_acc_l2": robust, "robust_acc_linf": 0.0, "n": 1000,
            "n_train": 1000, "attacks": ATTACKS, "robust_agreement": shape, "colour_agreement": colour,
            "nonrobust_agreement": pattern})
        if name != "natural":
            _dump(data / "metrics" / "construct" / f"{name}.json", {
                "dataset": name, "n": 1000, "robust_agreement": shape, "colour_agreement": colour,
                "nonrobust_agreement": pattern, "mean_l2_change": 0.5})
    write_live(data / "live" / "E1" / "standard")
    write_live(data / "live" / "E4" / "D_R")
    _dump(data / "progress" / "construct-D_det.json", PROGRESS)
    # source@standard's deps and outs exist, so DVC can commit it: the one "up to date" stage.
    for dep in ("advtui/experiments/sources.py", "advtui/paradigms/supervised.py"):
        (root / dep).parent.mkdir(parents=True, exist_ok=True)
        (root / dep).write_text(f"# stand-in for {dep}\n")
    (data / "models").mkdir(parents=True, exist_ok=True)
    (data / "models" / "standard.safetensors").write_bytes(b"stand-in weights")
    _run([str(Path(BIN) / "dvc"), "commit", "-q", "-f", "source@standard"], root)
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-q", "-m", "source@standard ran"], root)


@pytest.fixture(scope="session")
def _project_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tui-projects")
    _make_fresh(base / "fresh")
    tiny = base / "tiny"
    tiny.mkdir()
    (tiny / "dvc.yaml").write_text(TINY_DVC_YAML)
    (tiny / "params.yaml").write_text("seed: 0\n")
    shutil.copy(Path(__file__).parent / "fake_stage.py", tiny / "fake_stage.py")
    _init_repo(tiny)
    shutil.copytree(base / "fresh", base / "filled", symlinks=True)
    _fill(base / "filled")
    return {"fresh": base / "fresh", "filled": base / "filled", "tiny": tiny}


@pytest.fixture
def fresh_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh clone: dvc.yaml, params.yaml, git and DVC initialised, no data (see the module docstring)."""
    root = tmp_path / "clone"
    shutil.copytree(_project_templates["fresh"], root, symlinks=True)
    return root


@pytest.fixture
def fake_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A project part-way through the smoke pipeline, with fixed data (see the module docstring)."""
    root = tmp_path / "project"
    shutil.copytree(_project_templates["filled"], root, symlinks=True)
    return root


@pytest.fixture
def tiny_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A project with two quick real stages, retrain@tiny and retrain@quick (see the module docstring)."""
    root = tmp_path / "tiny"
    shutil.copytree(_project_templates["tiny"], root, symlinks=True)
    return root
