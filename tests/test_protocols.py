"""The papers' protocols end to end on a tiny project: Springer's early-stopped E4 recipe and fp32 for
constructed sets, as a stage runs them and records them."""

from __future__ import annotations

import json

import yaml

from advtui.catalog import paths
from advtui.catalog.params import parse_params, profile_path
from advtui.pipeline.runners import run_stage
from test_integrity import tiny_raw as integrity_tiny_raw


def tiny_raw() -> dict:
    """The integrity tests' seconds-sized smoke profile, with the paper profile's Springer recipe (bf16 asked for)."""
    raw = integrity_tiny_raw()
    paper = yaml.safe_load(profile_path("paper").read_text())
    raw["construct"]["springer"]["steps"] = 2
    raw["retrain"]["springer"] = {**paper["retrain"]["springer"], "epochs": 6, "batch_size": 16, "precision": "bf16",
                                  "channels_last": False, "early_stop": {"patience": 2, "val_fraction": 0.25, "metric": "acc"}}
    return raw


def test_springer_classifier_is_early_stopped_on_assigned_labels_in_fp32(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    params = parse_params(tiny_raw())
    run_stage("source", params, "standard")
    run_stage("construct", params, "neg_robust")
    capsys.readouterr()
    row = run_stage("retrain", params, "neg_robust")
    assert "precision: fp32, not bf16, for constructed set neg_robust" in capsys.readouterr().err
    stored = json.loads(paths.metrics_path("E4", "neg_robust").read_text())
    assert stored["recipe"]["precision"] == "fp32"  # what ran, not what the params asked for
    assert row["early_stopping"] == stored["early_stopping"]
    assert len(stored["early_stopping"]) == len(stored["seeds"])  # one record per seed's classifier
    for stopping in stored["early_stopping"]:
        assert stopping["validation_labels"] == "assigned" and stopping["n_val"] == 10  # a quarter of 40 images
        assert 1 <= stopping["best_epoch"] <= stopping["epochs_trained"] <= 6
        assert stopping["epochs_trained"] == 6 or stopping["epochs_trained"] - stopping["best_epoch"] == 2
        assert 0 <= stopping["val_acc"] <= 1
    assert stored["recipe"]["early_stop"] == {"patience": 2, "val_fraction": 0.25, "metric": "acc"}
