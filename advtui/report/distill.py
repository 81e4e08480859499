"""Report rows of Ilyas et al.'s theory and the Distill discussion's experiments (E13, E14, E16, E18), from their
metrics files only (no torch). :func:`advtui.report.tables.collect` puts them under their experiment ids; each
experiment is one stage writing one metrics file, so a row that has not run names that file (``name``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advtui.catalog.published import E16_PUBLISHED

Read = Callable[[str, str], "dict[str, Any] | None"]
#: Row order of the experiments whose metrics file holds its sets by name (JSON files keep keys sorted).
ORDER = {"E14": ("D_rand", "D_det"), "E16": ("errors", "noise"), "E18": ("natural", "high_passed", "pattern_free"),
         "world1": ("natural", "D_rand", "D_det")}
#: Each experiment's stage name, which is also its metrics file's name (``data/metrics/<id>/<name>.json``); E18's
#: second stage, World 1, writes ``E18/world1.json``.
FILES = {"E13": "gaussian", "E14": "leakage", "E16": "mislabelled", "E18": "frequency"}


def _not_run(experiment: str, name: str | None = None) -> list[dict[str, Any]]:
    return [{"name": name or FILES[experiment], "missing": True}]


def _ordered(experiment: str, sets: dict[str, Any]) -> list[Any]:
    """The rows of ``sets`` (name -> row) in the experiment's order, any other name after them."""
    names = [n for n in ORDER[experiment] if n in sets] + sorted(n for n in sets if n not in ORDER[experiment])
    return [sets[n] for n in names]


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


def e14_rows(read: Read) -> list[dict[str, Any]]:
    """One E14 row per relabelled set (D_rand, D_det): the shape probe's agreement with the assigned labels, its
    excess over chance and the attack's own part (``leakage``), beside what the planted truth expects; the linear
    lower bound; the robust linear model's settings and accuracy on every row."""
    result = read("E14", FILES["E14"])
    if result is None:
        return _not_run("E14")
    shared = {"chance": result.get("chance"), "linear_clean_acc": result.get("linear_clean_acc"),
              "linear_eps": (result.get("adversarial") or {}).get("eps"), "n_test": result.get("n_test")}
    return [{"missing": False, **row, **shared} for row in _ordered("E14", result.get("sets") or {})]


def e16_rows(read: Read) -> list[dict[str, Any]]:
    """E16 rows: the weak model, the fresh model trained on its errors and the one trained on labelled noise, each
    with its natural test accuracy beside Wallace's figure where there is one."""
    result = read("E16", FILES["E16"])
    if result is None:
        return _not_run("E16")
    sets = result.get("sets") or {}
    rows = [{"set": "weak model", "missing": False, "clean_acc": result.get("weak_test_acc"),
             "train_acc": result.get("weak_train_acc"), "n_train": result.get("n_train_natural"),
             "published_clean_acc": E16_PUBLISHED["weak"]}]
    for row in _ordered("E16", sets):
        published = {"published_clean_acc": E16_PUBLISHED["errors"], "published_n_train": E16_PUBLISHED["n_errors"]}
        rows.append({"missing": False, **row, **(published if row.get("set") == "errors" else {})})
    for row in rows:
        row.update(n_test=result.get("n_test"), chance=result.get("chance"), published_source=E16_PUBLISHED["source"])
    return rows


def e18_rows(read: Read) -> list[dict[str, Any]]:
    """One E18 row per test set (natural, high-passed, pattern-free): the accuracy of the model trained on
    high-passed images, beside what the planted truth expects; the probes on its training images on every row."""
    result = read("E18", FILES["E18"])
    if result is None:
        return _not_run("E18")
    probes = {f"train_{k}": v for k, v in (result.get("train_probes") or {}).items()}
    shared = {"sigma": result.get("sigma"), "n_train": result.get("n_train"), "n_test": result.get("n_test"),
              "chance": result.get("chance"), **probes}
    return [{"missing": False, **row, **shared} for row in _ordered("E18", result.get("sets") or {})]


def world1_rows(read: Read) -> list[dict[str, Any]]:
    """E18's World-1 rows, one per E4 training set (natural, D_rand, D_det): mean accuracy over its seeds on the
    natural test set (``world2_acc``) and without the planted pattern (``world1_acc``), beside the expectation."""
    result = read("E18", "world1")
    if result is None:
        return _not_run("E18", "world1")
    if result.get("not_applicable"):
        return [{"name": "world1", "missing": False, "not_applicable": result["not_applicable"]}]
    shared = {"n_test": result.get("n_test"), "chance": result.get("chance"), "n_seeds": result.get("n_seeds")}
    return [{"missing": False, **row, **shared} for row in _ordered("world1", result.get("sets") or {})]


def distill_rows(read: Read) -> dict[str, list[dict[str, Any]]]:
    """Every experiment of this module, by id."""
    return {"E13": e13_rows(read), "E14": e14_rows(read), "E16": e16_rows(read), "E18": e18_rows(read) + world1_rows(read)}
