"""The layer rules: the app imports no torch (it must open in about a second); headless code no textual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What the app must never load: torch and the model code above it (each experiment, paradigm and attack
#: module imports torch, and the app reads their results from files instead).
HEAVY = ("torch", "torchvision", "timm", "advtui.models", "advtui.experiments", "advtui.paradigms", "advtui.attacks")


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def modules_of(package: str) -> list[str]:
    """Every module of ``package`` in this checkout, found from its files (without importing any)."""
    folder = REPO / Path(*package.split("."))
    return sorted(".".join((package, *path.relative_to(folder).with_suffix("").parts))
                  for path in folder.rglob("*.py") if path.name != "__init__.py")


def test_module_lists_cover_every_screen_the_app_imports_lazily() -> None:
    from advtui.tui.modes import MODES

    assert {mode.module for mode in MODES.values()} <= set(modules_of("advtui.tui"))
    assert "advtui.appcore.resultsdata" in modules_of("advtui.appcore")


@pytest.mark.parametrize("statement", [
    "import advtui.tui.app",
    "from advtui.tui.app import AdvtuiApp; AdvtuiApp.__init__",
    "import advtui.cli.main",  # what bare `advtui` imports before it opens the app
])
def test_the_app_imports_no_torch(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "textual" in loaded or "typer" in loaded
    assert not {"torch", "torchvision", "timm", "advtui.models", "advtui.experiments"} & loaded


def test_no_screen_and_no_headless_module_loads_torch_or_model_code() -> None:
    """Every module of the app, the screens it imports only when first shown (Results, Gallery, Experiments)
    included, its headless core and the report it draws: imported one after another in one fresh interpreter,
    none may bring in torch or the experiments, models, paradigms or attacks packages."""
    modules = [*modules_of("advtui.tui"), *modules_of("advtui.appcore"), *modules_of("advtui.report")]
    check = (
        "import importlib, sys\n"
        f"heavy = {HEAVY!r}\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    loaded = sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + '.' for h in heavy)))\n"
        "    if loaded:\n"
        "        print(f'importing {name} loads {loaded[:5]}')\n"
        "        break\n"
    )
    out = subprocess.run([sys.executable, "-c", check, *modules], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out == ""


def test_headless_code_imports_no_textual() -> None:
    headless = [*modules_of("advtui.pipeline"), "advtui.experiments.construct", *modules_of("advtui.report"),
                *modules_of("advtui.appcore")]
    loaded = _modules_after(f"import {', '.join(headless)}")
    assert "torch" in loaded  # the stage code really was imported
    assert not {m for m in loaded if m == "textual" or m.startswith("textual.")}


def test_bare_advtui_opens_the_app_and_commands_still_work() -> None:
    """The command modules are registered lazily: every command is still there for `advtui --help`."""
    from typer.testing import CliRunner

    from advtui.cli.main import app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "attack", "invert", "stage", "report", "dataset", "profile", "models", "tui"):
        assert f" {command} " in result.output


#: Runs the `advtui` command as its console script does, with ARGV, the app (if it opens) headless at 80x24
#: visiting every screen and waiting for each one's reads; then prints every module that was loaded.
_RUN_COMMAND = """
import sys
from advtui.tui.app import AdvtuiApp

run = AdvtuiApp.run

async def visit(pilot):
    from textual.worker import WorkerCancelled
    for key in "pmrge?":
        await pilot.press(key)
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # a screen's read replaced by the next screen's: the modules loaded all the same
            pass
    pilot.app.exit()

AdvtuiApp.run = lambda self, **kwargs: run(self, headless=True, size=(80, 24), auto_pilot=visit)
sys.argv = ["advtui", *sys.argv[1:]]
from advtui.cli.entry import main
try:
    main()
except SystemExit:
    pass
print("\\nLOADED", " ".join(sys.modules))
"""


@pytest.mark.parametrize("argv", [[], ["tui", "{project}"], ["--help"], ["--version"]], ids=" ".join)
def test_the_advtui_command_never_loads_torch(argv: list[str], fresh_project: Path) -> None:
    """`advtui`, `advtui tui PATH` (every screen visited), `--help` and `--version`: the modules loaded, not a time."""
    args = [a.format(project=fresh_project) for a in argv]
    out = subprocess.run([sys.executable, "-c", _RUN_COMMAND, *args], cwd=fresh_project, capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    loaded = set(out.rpartition("\nLOADED ")[2].split())
    assert ("advtui.tui.screens.gallery" in loaded) == (argv[:1] in ([], ["tui"]))  # the app ran, every screen
    heavy = {m for m in loaded if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))}
    assert not heavy, f"advtui {' '.join(argv)} loads {sorted(heavy)[:5]}"
    if not argv:  # bare `advtui` opens the app without the command line's parser (~80 ms of its start-up)
        assert "typer" not in loaded and "click" not in loaded


def test_a_bad_graphics_setting_is_one_error_line_before_the_app_starts(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from advtui.cli.entry import main; main()"], cwd=tmp_path,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO),
                                                               "ADVTUI_GRAPHICS": "sixel"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: ADVTUI_GRAPHICS: unknown value 'sixel'; use one of auto, ask, halfblock"]
