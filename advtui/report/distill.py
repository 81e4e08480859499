"""Report rows of Ilyas et al.'s theory and the Distill discussion's experiments (E12-E18), from their
metrics files only (no torch). :func:`advtui.report.tables.collect` puts them under their experiment ids; each
experiment is one stage writing one metrics file, so a row that has not run names that file (``name``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advtui.catalog.published import (
    E12_PUBLISHED_FINDING, E12_SOURCE, E15_PUBLISHED_FINDING, E15_SOURCE, E16_PUBLISHED, E17_PUBLISHED_FINDING, E17_SOURCE,
)

Read = Callable[[str, str], "dict[str, Any] | None"]
#: Row order of the experiments whose metrics file holds its sets by name (JSON files keep keys sorted).
ORDER = {"E14": ("D_rand", "D_det"), "E16": ("errors", "noise"), "E18": ("natural", "high_passed", "pattern_free"),
         "world1": ("natural", "D_rand", "D_det")}
#: Each experiment's stage name, which is also its metrics file's name (``data/metrics/<id>/<name>.json``); E18's
#: second stage, World 1, writes ``E18/world1.json``.
FILES = {"E13": "gaussian", "E14": "leakage", "E16": "mislabelled", "E18": "frequency", "E12": "learnability",
         "E15": "bugs_only", "E17": "layers"}


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


def _e15_point(result: dict[str, Any]) -> dict[str, Any]:
    """E15's bugs-only set as a point of E12's plot: its model's natural accuracy against its examples' transfer."""
    return {"arch": "E15 bugs-only set", "missing": False, "det_acc": result.get("clean_acc"),
            "transfer_success": result.get("transfer_success"), "det_from": "E15 (trained on the bugs-only set)",
            "natural_from": "held-out E4 natural model", "published_finding": E15_PUBLISHED_FINDING}


def e12_rows(read: Read) -> list[dict[str, Any]]:
    """One E12 row per architecture: the natural test accuracy of its D_det classifiers (mean, 95% interval) against
    the transfer success of the standard source's targeted examples to its natural classifiers, their accuracy with
    and (synthetic data) without the planted pattern, where each model came from; then E15's point when it has run."""
    result = read("E12", FILES["E12"])
    if result is None:
        return _not_run("E12")
    shared = {"n": result.get("n"), "chance": result.get("chance"), "source_hit": result.get("source_hit"),
              "pattern_added": result.get("pattern_added"), "pattern_projection": result.get("pattern_projection"),
              "published_finding": E12_PUBLISHED_FINDING,
              "published_source": E12_SOURCE}
    rows = [{"missing": False, **row, **shared} for row in (result.get("archs") or {}).values()]
    bugs = read("E15", FILES["E15"])
    if bugs is not None:
        rows.append({**_e15_point(bugs), "n": bugs.get("n"), "chance": bugs.get("chance"),
                     "published_source": E15_SOURCE})
    return rows


def e15_rows(read: Read) -> list[dict[str, Any]]:
    """E15's row: the reference-consistent attack's success, the hit rates of the source, the references and the
    held-out model, the planted probes on what it added, and the natural accuracy of the model trained on it."""
    result = read("E15", FILES["E15"])
    if result is None:
        return _not_run("E15")
    return [{"name": FILES["E15"], "missing": False, **result, "expected": "clean ~chance",
             "published_finding": E15_PUBLISHED_FINDING, "published_source": E15_SOURCE}]


def e17_rows(read: Read) -> list[dict[str, Any]]:
    """One E17 row per block (in forward order): each model's ratio (``ratio``: model -> r) with its numerator and
    denominator, and whether the second model (robust_l2) has the lower ratio there, as the planted truth expects."""
    result = read("E17", FILES["E17"])
    if result is None:
        return _not_run("E17")
    models = result.get("models") or {}
    order = [m for m in result.get("model_order") or sorted(models) if m in models]  # JSON files sort their keys
    lower = result.get("robust_lower") or {}
    rows: dict[str, dict[str, Any]] = {}
    for model in order:
        for block in models[model]:
            row = rows.setdefault(block["block"], {"block": block["block"], "missing": False, "ratio": {},
                                                   "max_change": {}, "pair_distance": {}, "dim": block.get("dim")})
            for key in ("ratio", "max_change", "pair_distance"):
                row[key][model] = block.get(key)
    for row in rows.values():
        row.update(robust_lower=lower.get(row["block"]), models=order, compared=result.get("compared"),
                   n=result.get("n"), eps=result.get("eps"), steps=result.get("steps"),
                   published_finding=E17_PUBLISHED_FINDING, published_source=E17_SOURCE)
    return list(rows.values())


def distill_rows(read: Read) -> dict[str, list[dict[str, Any]]]:
    """Every experiment of this module, by id."""
    return {"E13": e13_rows(read), "E14": e14_rows(read), "E16": e16_rows(read), "E18": e18_rows(read) + world1_rows(read),
            "E12": e12_rows(read), "E15": e15_rows(read), "E17": e17_rows(read)}
