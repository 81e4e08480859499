"""Report rows of Ilyas et al.'s theory and the Distill discussion's experiments (E13, E14, E16), from their
metrics files only (no torch). :func:`advtui.report.tables.collect` puts them under their experiment ids; each
experiment is one stage writing one metrics file, so a row that has not run names that file (``name``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Read = Callable[[str, str], "dict[str, Any] | None"]
#: Each experiment's stage name, which is also its metrics file's name (``data/metrics/<id>/<name>.json``).
FILES = {"E13": "gaussian"}


def _not_run(experiment: str) -> list[dict[str, Any]]:
    return [{"name": FILES[experiment], "missing": True}]


def e13_rows(read: Read) -> list[dict[str, Any]]:
    """One E13 row per attack radius: the standard MLE (eps 0), then the robust MLE at each eps, the simulated
    values beside the closed form's (``*_analytic``)."""
    result = read("E13", FILES["E13"])
    if result is None:
        return _not_run("E13")
    shared = {"n_samples": result.get("n_samples"), "dim": result.get("dim"),
              "condition_true": result.get("condition_true")}
    return [{"name": "standard" if not row.get("eps") else "robust", "missing": False, **row, **shared}
            for row in result.get("curve") or []]


def distill_rows(read: Read) -> dict[str, list[dict[str, Any]]]:
    """Every experiment of this module, by id."""
    return {"E13": e13_rows(read)}
