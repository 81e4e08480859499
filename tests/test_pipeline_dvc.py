"""The DVC pipeline end to end on tiny params: repro, no-op rerun, targeted rerun, push and pull; and the pull
of a partly built project.

One test for the whole pipeline, since each step needs the one before; both run the real `advtui repro`, `dvc` and
`advtui stage` commands in a throw-away git repository holding this checkout's dvc.yaml and code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from advtui.catalog.params import profile_path

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def tiny_params() -> dict:
    p = yaml.safe_load(profile_path("smoke").read_text())
    p["data"].update(train_size=200, test_size=60)
    p["sources"]["train"].update(epochs=1, batch_size=64)
    for name in ("robust_l2", "robust_linf"):
        p["sources"][name]["adversarial"].update(steps=1)
    p["construct"].update(size=20, zero_robust_size=2, chunk=10)
    for key in ("robust", "nonrobust", "relabel", "springer"):
        p["construct"][key]["steps"] = 2
    for key in ("train", "springer"):
        p["retrain"][key].update(epochs=1, batch_size=64)
    for key in ("l2", "linf"):
        p["attack"][key]["steps"] = 2
    for run in p["paradigms"].values():
        run["train"].update(epochs=1, warmup_epochs=0)
    p["paradigms"]["robust_cl"]["config"]["adversarial"]["steps"] = 1
    p["probe"]["train"]["epochs"] = 1
    p["e6"].update(test_size=10, rand_test_size=2, batch_size=10)
    for threat in ("l2", "linf"):
        p["e6"][threat]["pgd"]["steps"] = 2
    p["e7"].update(test_size=4, batch_size=4)
    p["e7"]["projector"]["epochs"] = 1
    p["e8"].update(test_size=4, batch_size=4)
    p["e13"].update(samples=200, fit_steps=20)
    p["e16"]["weak_size"] = 100  # of the 200 training images
    for section, key in (("e14", "linear"), ("e14", "restricted"), ("e16", "weak"), ("e16", "train"), ("e18", "train")):
        p[section][key]["epochs"] = 1
    p["e9"].update(test_size=20, steps=2, batch_size=20)  # of the 60 test images
    p["e11"].update(test_size=4, steps=2, batch_size=4)
    p["e12"]["test_size"] = 10  # of the 60 test images
    p["e15"].update(size=10)  # of the 20 images D_det starts from
    p["e17"].update(test_size=10, steps=2)
    p["e15"]["attack"]["steps"] = 2
    for section in ("e12", "e15"):
        p[section]["train"]["epochs"] = 1
    return p


# E5/E6 repeat the same three stage families over paradigm x training set (56 stages, ~6 s of imports
# each); one cell of each kind keeps every family and both AutoAttack versions in the test, and E7/E8 need
# every paradigm's natural-image encoder and probe.
_NATURAL = {"SL-natural", "CL-natural", "MIM-natural", "DM-natural"}
E5_E6_CELLS = {"pretrain": {*_NATURAL, "DM-D_R_CL"}, "probe": {*_NATURAL, "DM-D_R_CL"},
               "attack": {"DM-D_R_CL"}, "attack_sl": {"SL-natural"}}


def pipeline_subset(dvc_yaml: Path) -> str:
    """The project's dvc.yaml with the E5/E6 matrices cut down to ``E5_E6_CELLS``."""
    spec = yaml.safe_load(dvc_yaml.read_text())
    for stage, keep in E5_E6_CELLS.items():
        items = spec["stages"][stage]["foreach"]
        spec["stages"][stage]["foreach"] = (
            {k: v for k, v in items.items() if k in keep} if isinstance(items, dict) else [k for k in items if k in keep]
        )
    return yaml.safe_dump(spec, sort_keys=False)


def run(cmd: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    done = subprocess.run(cmd, shell=True, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def digests(repo: Path) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / "data").rglob("*"))
        if p.is_file() and p.name != ".gitignore" and "progress" not in p.parts
    }


def new_repo(repo: Path) -> Path:
    """A throw-away git + DVC repository at ``repo`` holding this checkout's pipeline (``pipeline_subset``),
    code and tiny params, committed; nothing built yet."""
    repo.mkdir()
    (repo / "dvc.yaml").write_text(pipeline_subset(ROOT / "dvc.yaml"))
    shutil.copytree(ROOT / "advtui", repo / "advtui", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    (repo / ".gitignore").write_text("/data/*\n__pycache__/\n")
    run("git init -q && dvc init -q && dvc config core.autostage true && git add -A && git commit -qm init", repo)
    return repo


def test_repro_rerun_push_pull(tmp_path):
    repo, remote = new_repo(tmp_path / "a"), tmp_path / "remote"

    # Built by `advtui repro` (stages forked from one process that imported torch: the test's minutes were imports),
    # then checked by DVC itself: a `dvc repro` after it runs nothing.
    out = run("advtui repro --jobs 1", repo)
    assert "Running stage 'report'" in out
    report = yaml.safe_load((repo / "data/report/report.json").read_text())
    assert [row["dataset"] for row in report["E4"]] == ["natural", "natural_nopattern", "D_R", "D_NR", "D_rand", "D_det",
                                                        "zero_robust", "neg_robust"]
    assert not any(row["missing"] for row in report["E4"])
    assert {row["dataset"] for row in report["E5"]} == {"natural", "untrained", "D_R", "D_NR"}
    run("git add -A && git commit -qm results", repo)

    out = run("dvc repro", repo)
    assert "Running stage" not in out  # a second repro does nothing

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["construct"]["relabel"]["steps"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run("advtui repro --jobs 1", repo)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    # and what reads D_rand / D_det or their classifiers: E14's leakage, E18's World-1 control, E12 (which also makes
    # its source examples with D_det's settings)
    assert ran == {"construct@D_rand", "construct@D_det", "retrain@D_rand", "retrain@D_det", "curve_E4", "figures",
                   "gallery", "leakage", "world1", "learnability", "report"}
    run("git add -A && git commit -qm steps", repo)

    run(f"dvc remote add -d local {remote} && git add -A && git commit -qm remote && dvc push", repo)
    clone = tmp_path / "b"
    run(f"git clone -q {repo} {clone}", tmp_path)
    run("dvc pull", clone)
    assert digests(clone) == digests(repo)
    assert "up to date" in run("dvc status", clone)


def test_a_partly_built_project_pulls_what_exists(tmp_path):
    """Issue 11: with only part of the pipeline built, plain `dvc pull` exits 1 (one warning per out of every
    stage never run) although everything built arrived. `dvc pull --allow-missing` is the command the README
    gives: exit 0, and the built artifacts arrive byte for byte."""
    repo, remote = new_repo(tmp_path / "a"), tmp_path / "remote"
    run("dvc repro source@standard", repo)  # one stage of the pipeline, nothing else
    run(f"dvc remote add -d local {remote} && git add -A && git commit -qm results && dvc push", repo)

    clone = tmp_path / "b"
    run(f"git clone -q {repo} {clone}", tmp_path)
    run("dvc pull --allow-missing", clone)
    built = digests(repo)
    assert "data/models/standard.safetensors" in built and "data/metrics/E1/standard.json" in built
    assert digests(clone) == built
    assert "up to date" in run("dvc status source@standard", clone)
