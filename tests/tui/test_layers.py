"""The layer rules: the app imports no torch (it must open in about a second); headless code no textual."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("statement", [
    "import advtui.tui.app",
    "from advtui.tui.app import AdvtuiApp; AdvtuiApp.__init__",
    "import advtui.cli.main",  # what bare `advtui` imports before it opens the app
])
def test_the_app_imports_no_torch(statement: str) -> None:
    loaded = _modules_after(statement)
    assert "textual" in loaded or "typer" in loaded
    assert not {"torch", "torchvision", "timm", "advtui.models", "advtui.experiments"} & loaded


def test_headless_code_imports_no_textual() -> None:
    loaded = _modules_after("import advtui.pipeline.stages, advtui.experiments.construct, advtui.report.tables, "
                            "advtui.appcore.runs, advtui.appcore.runwrap, advtui.appcore.dvcstate, advtui.appcore.live")
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
