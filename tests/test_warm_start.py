"""`advtui repro` forks `advtui ...` stage commands from a process that has imported torch: the stage must write
exactly what it writes as a fresh process, fail with the same words and exit code, and be recorded in dvc.lock
as `dvc repro` records it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from advtui.catalog.params import profile_path
from advtui.pipeline.parallel import FINISHED_STAGE, repro
from advtui.pipeline.warmstart import WarmStarter, warm_argv

ADVTUI = str(Path(sys.executable).parent / "advtui")
DVC = str(Path(sys.executable).parent / "dvc")
STAGE = ["advtui", "stage", "gaussian", "gaussian"]  # E13: seconds of torch, no upstream data


def _project(root: Path) -> Path:
    """A folder holding smoke's params with E13 cut to a second of work."""
    root.mkdir()
    params = yaml.safe_load(profile_path("smoke").read_text())
    params["e13"].update(samples=200, fit_steps=20)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*")) if p.is_file() and p.name != ".gitignore"}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _cold(root: Path, argv: list[str]) -> tuple[int, str]:
    done = subprocess.run([ADVTUI, *argv[1:]], cwd=root, env=_env(), capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def _warm(starter: WarmStarter, root: Path, argv: list[str]) -> tuple[int, str]:
    proc, stream = starter.start(argv, str(root), _env(), threads=1)
    with stream:
        out = stream.read()
    return proc.wait(), out


@pytest.mark.slow
def test_a_forked_stage_writes_and_says_what_a_fresh_process_does(tmp_path: Path) -> None:
    starter = WarmStarter()
    cold, warm = _project(tmp_path / "cold"), _project(tmp_path / "warm")
    assert _cold(cold, STAGE) == _warm(starter, warm, STAGE)
    assert _digests(warm) and _digests(warm) == _digests(cold)
    # A bad name: the CLI's one line and exit code, from the fork as from a fresh process.
    bad = [*STAGE[:3], "nosuch"]
    code, out = _warm(starter, warm, bad)
    assert (code, out) == _cold(cold, bad)
    assert code != 0 and out.count("\n") == 1 and "unknown name 'nosuch'" in out


@pytest.mark.slow
def test_repro_records_a_forked_stage_as_dvc_repro_does(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    (root / "dvc.yaml").write_text(textwrap.dedent(f"""\
        stages:
          gaussian:
            cmd: {" ".join(STAGE)}
            params: [e13]
            outs: [data/metrics/E13, data/curves/E13]
        """))
    subprocess.run(f"git init -q && {DVC} init -q && git add -A && git -c user.name=t -c user.email=t@t commit -qm i",
                   shell=True, cwd=root, check=True)
    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(root)
    try:
        assert repro(Path("."), jobs=1, threads=1, echo=lines.append) == 0
    finally:
        os.chdir(cwd)
    assert "[gaussian] gaussian gaussian done dim 10, n_samples 200, mean_norm 1, condition_true 100" in lines
    finished = [m for line in lines if (m := FINISHED_STAGE.match(line))]
    assert [m.group(1) for m in finished] == ["gaussian"]
    assert 0 < float(finished[0].group(3)) < 600  # the fork's own CPU, imports not counted
    status = subprocess.run([DVC, "status", "--json"], cwd=root, capture_output=True, text=True, check=True).stdout
    assert status.strip() in ("{}", "")
    reference = _project(tmp_path / "cold")
    assert _cold(reference, STAGE)[0] == 0
    assert _digests(root) == _digests(reference)


@pytest.mark.parametrize("cmd, argv", [
    ("advtui stage retrain D_R", ["advtui", "stage", "retrain", "D_R"]),
    ("advtui report --write", ["advtui", "report", "--write"]),
    ("advtui stage construct 'D R'", ["advtui", "stage", "construct", "D R"]),
    ("python -m advtui stage retrain D_R", None),      # another program: its own process
    ("advtui stage a b && echo done", None),           # shell syntax needs a shell
    ("advtui stage a b > log.txt", None),
    ("OMP_NUM_THREADS=4 advtui stage a b", None),
    ("advtui stage $NAME b", None),
    ("", None),
])
def test_only_plain_advtui_commands_are_forked(cmd: str, argv: list[str] | None) -> None:
    assert warm_argv(cmd) == argv
