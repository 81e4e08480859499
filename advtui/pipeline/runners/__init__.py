"""One module per ``advtui stage RUNNER``, each with ``run(params, name) -> metrics row``.

``advtui stage`` imports only the runner it is asked for, so each stage's code deps (the import closure of
its runner, :mod:`advtui.catalog.codedeps`) hold only the code that stage runs. This package file imports only
the catalogue: it is part of every runner's closure.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from advtui.catalog.stages import runner_module

if TYPE_CHECKING:
    from advtui.catalog.params import Params


def run_stage(runner: str, params: Params, name: str) -> dict:
    """Run ``advtui stage RUNNER NAME``: import that runner's module only and return its metrics row."""
    return import_module(runner_module(runner)).run(params, name)
