"""One module per ``advtui stage RUNNER``, each with ``run(params, name) -> metrics row``.

``advtui stage`` imports only the runner it is asked for, so each stage's code deps (the import closure of
its runner, :mod:`advtui.catalog.codedeps`) hold only the code that stage runs. This package file imports only
the catalogue, the stage lock and the (torch-free) distributed context: it is part of every runner's closure.
"""

from __future__ import annotations

import shutil
from importlib import import_module
from typing import TYPE_CHECKING

from advtui.catalog.stages import runner_module, stage_name
from advtui import distributed
from advtui.pipeline.stagelock import resume_dir, stage_lock

if TYPE_CHECKING:
    from advtui.catalog.params import Params


def run_stage(runner: str, params: Params, name: str) -> dict:
    """Run ``advtui stage RUNNER NAME``: import that runner's module only and return its metrics row. An
    unknown runner or name fails in :func:`~advtui.catalog.stages.stage_name`, so runners need no check of their own.

    The stage's lock is held throughout, so a second run of the same stage fails at once with one line
    naming the first. What the stage kept to resume (:func:`~advtui.pipeline.stagelock.resume_dir`) is removed
    only once the runner has returned, i.e. written its last output: a kill at any point before, during the
    evaluation after training included, resumes from it.

    Under torchrun every rank runs the runner; rank 0 alone holds the lock and removes what was kept to resume.
    """
    stage = stage_name(runner, name)
    if not distributed.is_main():
        return import_module(runner_module(runner)).run(params, name)
    with stage_lock(stage):
        row = import_module(runner_module(runner)).run(params, name)
        shutil.rmtree(resume_dir(stage), ignore_errors=True)
    return row
