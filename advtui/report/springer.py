"""Report rows of Springer et al.'s entanglement experiments (E9-E11), from their metrics files only (no torch).

- E9 (Tables 1, 5): one row per classifier (standard, robust, zero-robust, negative-robust) and control (the images
  as they are; the non-robust subspace projected out), its accuracy on the natural test subset and on each R_eps,
  Table 5's figure beside each cell where the paper has that eps; and one leak row per source (what R_eps carries
  of the planted truth, synthetic data).
- E10 (Figs. 3, 4): one row per source eps: the standard classifiers' accuracy on R_eps (mean ±95% interval over
  their seeds) and the source's clean accuracy (Wilson interval over the test images).
- E11 (Figs. 5, 6): one row per source eps: the untargeted error rate and the targeted hit rate on each victim.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from advtui.catalog.names import E9_CLASSIFIERS
from advtui.catalog.published import (
    E10_PUBLISHED_FINDING, E11_PUBLISHED_FINDING, E9_PUBLISHED, SPRINGER_SOURCE,
)

Read = Callable[[str, str], "dict[str, Any] | None"]
#: Each experiment's metrics file (``data/metrics/<id>/<name>.json``): E10 reads E9's.
FILES = {"E9": "robustified", "E11": "slight_transfer"}
#: How each control's rows are named in the E9 table.
CONTROLS = {"R": "", "R_projected": ", projected"}


def _published_at(table: dict[float, float], eps: float) -> float | None:
    """Table 5's figure (%) at ``eps`` as a fraction (the tables print both as %), None where the paper has no column."""
    found = next((v for e, v in table.items() if math.isclose(e, eps, rel_tol=1e-6, abs_tol=1e-12)), None)
    return None if found is None else found / 100


def _not_run(experiment: str) -> list[dict[str, Any]]:
    return [{"name": FILES[experiment], "missing": True}]


def e9_rows(read: Read) -> list[dict[str, Any]]:
    """E9's classifier rows (``R:<source>`` and ``test`` cells, ``ci95`` per cell) and its leak rows (``leak``)."""
    result = read("E9", FILES["E9"])
    if result is None:
        return _not_run("E9")
    names, eps = result.get("names") or [], result.get("sweep_eps") or []
    shared = {"n_test": result.get("n_test"), "chance": result.get("chance"), "control": result.get("control"),
              "steps": result.get("steps"), "step_size": result.get("step_size"), "start": result.get("start"),
              "sweep": dict(zip(names, eps)), "published_source": f"{SPRINGER_SOURCE}, Table 5 (CIFAR-10, ResNet-50)"}
    rows = []
    every = result.get("cells") or {}
    # Table 5's row order (JSON files keep keys sorted)
    for classifier in [*(c for c in E9_CLASSIFIERS if c in every), *sorted(c for c in every if c not in E9_CLASSIFIERS)]:
        cells = every[classifier]
        for control, suffix in CONTROLS.items():
            if not cells.get(control):
                continue
            # the paper's figures stand beside the images as they are; it has no projected ones
            published = E9_PUBLISHED.get(classifier, {}) if not suffix else {}
            test = cells.get("test" if control == "R" else "test_projected") or {}
            row: dict[str, Any] = {"name": f"{classifier}{suffix}", "classifier": classifier, "projected": bool(suffix),
                                   "from": E9_CLASSIFIERS.get(classifier, classifier), "missing": False,
                                   "test": test.get("acc"), "ci95": {"test": (test.get("ci95") or {}).get("acc")},
                                   "n_seeds": (result.get("classifiers") or {}).get(classifier, {}).get("n_seeds"),
                                   "published_test": _published_at({0.0: published["test"]}, 0.0) if published else None,
                                   **shared}
            for name, value in zip(names, eps):
                cell = cells[control].get(name) or {}
                row[f"R:{name}"], row["ci95"][f"R:{name}"] = cell.get("acc"), (cell.get("ci95") or {}).get("acc")
                row[f"published_R:{name}"] = _published_at(published.get("R", {}), value)
            rows.append(row)
    for name, value in zip(names, eps):
        leak = (result.get("leak") or {}).get(name)
        source = (result.get("sources") or {}).get(name) or {}
        rows.append({"leak": name, "eps": value, "origin": source.get("origin"), "missing": False,
                     "repr_error": source.get("repr_error"), **(leak or {}),
                     **{k: v for k, v in shared.items() if k != "published_source"}})
    return rows


def e10_rows(read: Read) -> list[dict[str, Any]]:
    """E10's rows, one per source eps: the standard classifiers on R_eps and the source's clean accuracy."""
    result = read("E9", FILES["E9"])
    if result is None:
        return [{"name": FILES["E9"], "missing": True}]
    standard = ((result.get("cells") or {}).get("standard") or {})
    rows = []
    for name, value in zip(result.get("names") or [], result.get("sweep_eps") or []):
        cell = (standard.get("R") or {}).get(name) or {}
        source = (result.get("sources") or {}).get(name) or {}
        rows.append({
            "source": name, "eps": value, "origin": source.get("origin"), "missing": False,
            "standard_on_R": cell.get("acc"), "source_clean": source.get("clean_acc"),
            "ci95": {"standard_on_R": (cell.get("ci95") or {}).get("acc"),
                     "source_clean": (source.get("ci95") or {}).get("clean_acc")},
            "published_standard_on_R": _published_at(E9_PUBLISHED["standard"]["R"], value),
            "n_seeds": (result.get("classifiers") or {}).get("standard", {}).get("n_seeds"),
            "n_test": result.get("n_test"), "n_clean": source.get("n_test"),
            "published_finding": E10_PUBLISHED_FINDING,
            "published_source": f"{SPRINGER_SOURCE}, Table 5 standard row, Figs. 3, 4 (CIFAR-10)",
        })
    return rows


def e11_rows(read: Read) -> list[dict[str, Any]]:
    """E11's rows: ``no attack`` (each victim's clean error and clean target rate), then one per source eps:
    ``untargeted:<victim>`` error rates and ``targeted:<victim>`` hit rates
    (``white_box``: the source itself), each with its Wilson interval in ``ci95``; victims listed in ``victims``."""
    result = read("E11", FILES["E11"])
    if result is None:
        return _not_run("E11")
    victims = ["white_box", *(result.get("victims") or [])]
    shared = {"missing": False, "victims": victims, "n_test": result.get("n"), "attack_eps": result.get("attack_eps"),
              "steps": result.get("steps"), "step_size": result.get("step_size"),
              "published_finding": E11_PUBLISHED_FINDING, "published_source": f"{SPRINGER_SOURCE}, Figs. 5, 6 (CIFAR-10)"}
    # the baseline: each victim on the clean images (its error; how often it predicts the targets anyway)
    rows: list[dict[str, Any]] = [{"source": "no attack", "ci95": {}, **shared}]
    for victim, base in (result.get("baseline") or {}).items():
        for mode, key in (("untargeted", "clean_error"), ("targeted", "clean_target")):
            rows[0][f"{mode}:{victim}"] = (base.get(key) or {}).get("rate")
            rows[0]["ci95"][f"{mode}:{victim}"] = ((base.get(key) or {}).get("ci95") or {}).get("rate")
    for name in result.get("names") or []:
        source = (result.get("sources") or {}).get(name) or {}
        row: dict[str, Any] = {"source": name, "eps": source.get("eps"), "origin": source.get("origin"), "ci95": {},
                               **shared}
        for mode in ("untargeted", "targeted"):
            for victim in victims:
                cell = (source.get(mode) or {}).get(victim) or {}
                row[f"{mode}:{victim}"] = cell.get("rate")
                row["ci95"][f"{mode}:{victim}"] = (cell.get("ci95") or {}).get("rate")
        rows.append(row)
    return rows


def springer_rows(read: Read) -> dict[str, list[dict[str, Any]]]:
    """Every experiment of this module, by id."""
    return {"E9": e9_rows(read), "E10": e10_rows(read), "E11": e11_rows(read)}
