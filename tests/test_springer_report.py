"""E9-E11 in the report and the figures, from metrics files shaped as the stages write them (no torch run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advtui.report.layout import report_tables
from advtui.report.springer import e9_rows, e10_rows, e11_rows, springer_rows
from advtui.report.springer_figures import write_springer_figures


def _cell(acc: float, seeds: int = 3) -> dict[str, Any]:
    return {"acc": acc, "per_seed": {"acc": [acc] * seeds}, "ci95": {"acc": [acc - 0.05, acc + 0.05] if seeds > 1 else None}}


E9 = {
    "sweep_eps": [0.0, 0.25, 1.0], "names": ["eps_0", "eps_0.25", "eps_1"], "n_test": 200, "chance": 0.1,
    "control": "planted", "start": "image", "steps": 30, "step_size": 0.2, "variant": "default",
    "classifiers": {"neg_robust": {"n_seeds": 3}, "standard": {"n_seeds": 3}},
    "cells": {c: {"test": _cell(0.9), "test_projected": _cell(0.8), "R": {n: _cell(0.5) for n in ("eps_0", "eps_0.25", "eps_1")},
                  "R_projected": {n: _cell(0.1) for n in ("eps_0", "eps_0.25", "eps_1")}} for c in ("neg_robust", "standard")},
    "sources": {n: {"eps": e, "origin": "trained", "clean_acc": 0.9, "ci95": {"clean_acc": [0.88, 0.92]}, "n_test": 1000,
                    "repr_error": 0.1} for n, e in (("eps_0", 0.0), ("eps_0.25", 0.25), ("eps_1", 1.0))},
    "leak": {n: {"shape_agreement": 0.1, "pattern_agreement": 0.9, "pattern_fraction": 0.5} for n in ("eps_0", "eps_0.25", "eps_1")},
}
E11 = {
    "names": ["eps_0", "eps_1"], "sweep_eps": [0.0, 1.0], "victims": ["SL-small_resnet"], "n": 50, "norm": "l2",
    "attack_eps": 2.0, "steps": 20, "step_size": 0.25, "chance_target": 1 / 9,
    "baseline": {"SL-small_resnet": {"clean_error": {"rate": 0.1, "ci95": {"rate": [0.05, 0.2]}},
                                     "clean_target": {"rate": 0.0, "ci95": {"rate": [0.0, 0.07]}}}},
    "sources": {n: {"eps": e, "origin": "trained", **{m: {v: {"rate": r, "ci95": {"rate": [r - 0.1, r + 0.1]}}
                                                         for v in ("white_box", "SL-small_resnet")}
                                                      for m, r in (("untargeted", 0.6), ("targeted", 0.3))}}
                for n, e in (("eps_0", 0.0), ("eps_1", 1.0))},
}


def _read(files: dict[str, dict]):
    return lambda experiment, name: files.get(f"{experiment}/{name}")


def test_e9_rows_follow_table_5_with_the_paper_beside_unprojected_cells_only() -> None:
    rows = e9_rows(_read({"E9/robustified": E9}))
    named = [r["name"] for r in rows if "leak" not in r]
    assert named == ["standard", "standard, projected", "neg_robust", "neg_robust, projected"]  # Table 5's order
    standard, projected = rows[0], rows[1]
    assert standard["published_R:eps_0"] == pytest.approx(0.583) and standard["published_R:eps_0.25"] == pytest.approx(0.751)
    assert standard["published_test"] == pytest.approx(0.941)  # Table 5, as fractions
    assert projected["published_R:eps_0"] is None and projected["R:eps_0"] == 0.1
    assert standard["ci95"]["R:eps_1"] == [0.45, 0.55]
    assert [r["leak"] for r in rows if "leak" in r] == ["eps_0", "eps_0.25", "eps_1"]


def test_e10_e11_rows_and_the_missing_file() -> None:
    read = _read({"E9/robustified": E9, "E11/slight_transfer": E11})
    e10 = e10_rows(read)
    assert [r["source"] for r in e10] == ["eps_0", "eps_0.25", "eps_1"]
    assert e10[1]["published_standard_on_R"] == pytest.approx(0.751) and e10[0]["ci95"]["source_clean"] == [0.88, 0.92]
    e11 = e11_rows(read)
    assert [r["source"] for r in e11] == ["no attack", "eps_0", "eps_1"]
    assert e11[0]["untargeted:SL-small_resnet"] == 0.1 and e11[2]["targeted:white_box"] == 0.3
    missing = springer_rows(_read({}))
    assert missing["E9"] == [{"name": "robustified", "missing": True}] and missing["E11"][0]["missing"] is True
    tables = {t.spec.id: t for t in report_tables(springer_rows(read))}
    assert [c.header for c in tables["E9"].columns][2:] == ["R_0", "R_0.25", "R_1"]
    assert "50.0 ±5.0 (58.3)" in tables["E9"].cells(tables["E9"].rows[0])


def test_figures_are_written_byte_reproducibly(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    for name, data in (("E9/robustified", E9), ("E11/slight_transfer", E11)):
        (metrics / name).parent.mkdir(parents=True, exist_ok=True)
        (metrics / f"{name}.json").write_text(json.dumps(data))
    first = write_springer_figures(metrics, tmp_path / "a")
    second = write_springer_figures(metrics, tmp_path / "b")
    assert sorted(p.name for p in first) == ["E10_universality.png", "E10_universality.svg", "E11_transfer.png",
                                             "E11_transfer.svg"]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second))
