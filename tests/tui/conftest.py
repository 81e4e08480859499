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
  ``TINY_SECONDS`` s, no torch); for tests that start, watch and stop runs, which hold the stage at the
  points they look at (``pilots.hold``) instead of racing it.

Async tests (``async def test_...``, e.g. with ``App.run_test()``) run under anyio's pytest plugin on
asyncio: this conftest marks every coroutine test of this folder, no decorator needed.

Nothing in the first two folders depends on the clock or on process ids, so snapshots of them are stable.
"""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import pytest
from tui_projects import TINY_DVC_YAML, fill_project, init_repo, make_fresh

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Marked as the functions are collected (not later), so anyio parametrizes them like any marked test
    # and plugins that index the collected items (syrupy's snapshot report) see the final items.
    if inspect.iscoroutinefunction(obj) and name.startswith("test") and Path(str(collector.path)).parent == HERE:
        pytest.mark.usefixtures("anyio_backend")(pytest.mark.anyio(obj))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Textual runs on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def _project_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("tui-projects")
    make_fresh(base / "fresh")
    tiny = base / "tiny"
    tiny.mkdir()
    (tiny / "dvc.yaml").write_text(TINY_DVC_YAML)
    (tiny / "params.yaml").write_text("seed: 0\n")
    shutil.copy(Path(__file__).parent / "fake_stage.py", tiny / "fake_stage.py")
    init_repo(tiny)
    shutil.copytree(base / "fresh", base / "filled", symlinks=True)
    fill_project(base / "filled")
    return {"fresh": base / "fresh", "filled": base / "filled", "tiny": tiny}


@pytest.fixture
def fresh_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A fresh clone: dvc.yaml, params.yaml, git and DVC initialised, no data (see conftest.py)."""
    root = tmp_path / "clone"
    shutil.copytree(_project_templates["fresh"], root, symlinks=True)
    return root


@pytest.fixture
def fake_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A project part-way through the smoke pipeline, with fixed data (see conftest.py)."""
    root = tmp_path / "project"
    shutil.copytree(_project_templates["filled"], root, symlinks=True)
    return root


@pytest.fixture
def tiny_project(_project_templates: dict[str, Path], tmp_path: Path) -> Path:
    """A project with two quick real stages, retrain@tiny and retrain@quick (see conftest.py)."""
    root = tmp_path / "tiny"
    shutil.copytree(_project_templates["tiny"], root, symlinks=True)
    return root
