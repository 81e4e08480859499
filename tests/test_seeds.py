"""Seeds and 95% intervals of E4 (issue 12 item 1) and its pattern-free control row (item 3).

Curves averaged over seeds; a tiny E4 stage that trains three seeds and reports their mean and interval; a stage killed in its second seed that resumes without retraining the first; the
pattern-free control set, which carries exactly nothing of the planted pattern; and the report showing
``mean ±half-width``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

import advtui.experiments.retrain as retrain_module
import advtui.paradigms.trainer as trainer_module
from advtui.appcore.live import LiveCurves, newest_run
from advtui.catalog import paths
from advtui.catalog.names import CURVE_MODELS, NATURAL_NOPATTERN
from advtui.catalog.params import parse_params
from advtui.data.ground_truth import probe_agreement
from advtui.data.store import read_header
from advtui.data.synthetic import nonrobust_patterns
from advtui.experiments.common import save_classifier
from advtui.experiments.construct import training_set
from advtui.experiments.curves import mean_curves
from advtui.files import write_json
from advtui.models.registry import create_model
from advtui.pipeline.runners import run_stage
from advtui.pipeline.stagelock import checkpoint_file, resume_dir
from advtui.report.layout import report_tables
from advtui.report.tables import collect, markdown
from advtui.schema import ParamsError
from advtui.stats import interval95
from test_errors import image_tree
from test_integrity import tiny_raw

# --- curves over seeds, and the seeds param ------------------------------------------------------------------


def test_curves_of_several_seeds_average_radius_by_radius():
    curves = [{"n": 10, "clean_acc": clean, "l2": [[0.0, clean], [0.5, mid]], "linf": [[0.0, clean], [0.1, mid]]}
              for clean, mid in ((0.9, 0.5), (0.8, 0.3), (0.7, 0.1))]
    row = mean_curves(curves, [0, 1, 2])
    assert row["l2"] == [[0.0, pytest.approx(0.8)], [0.5, pytest.approx(0.3)]] and row["clean_acc"] == pytest.approx(0.8)
    assert row["per_seed"]["l2"] == [[0.9, 0.5], [0.8, 0.3], [0.7, 0.1]]
    assert row["ci95"]["l2"][1] == pytest.approx(interval95([0.5, 0.3, 0.1]))


def test_e4_curves_average_each_sets_seeds_and_mark_the_control_off_synthetic_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADVTUI_CACHE", str(tmp_path / "cache"))
    image_tree(tmp_path / "tree")  # two classes of 8x8 images (read at 32x32): not synthetic
    raw = tiny_raw()
    raw["data"].update(source="imagefolder", root=str(tmp_path / "tree"), train_size=None, test_size=None)
    raw["retrain"]["seeds"] = 2
    raw["curves"].update(steps=2, test_size=None)
    params = parse_params(raw)
    for name in CURVE_MODELS["E4"]:
        if name != NATURAL_NOPATTERN:  # its retrain stage wrote an empty folder here
            for k in range(2):
                torch.manual_seed(10 * len(name) + k)  # every seed its own (untrained) weights
                save_classifier(create_model("small_cnn", num_classes=2), paths.retrained_path(name, k),
                                paradigm="supervised", params={})
    run_stage("curve", params, "E4")
    stored = json.loads(paths.metrics_path("curves", "E4").read_text())
    assert stored[NATURAL_NOPATTERN] == {"experiment": "E4", "model": NATURAL_NOPATTERN, "not_applicable": "synthetic only"}
    row = stored["D_R"]
    assert row["seeds"] == [0, 1] and len(row["per_seed"]["l2"]) == 2
    for i, (eps, acc) in enumerate(row["l2"]):
        per_radius = [curve[i] for curve in row["per_seed"]["l2"]]
        assert acc == pytest.approx(sum(per_radius) / 2) and row["ci95"]["l2"][i] == pytest.approx(interval95(per_radius))
    tsv = paths.curve_tsv("E4", "D_R", "l2").read_text().splitlines()
    assert tsv[1:] == [f"{e:g}\t{a:.6f}" for e, a in row["l2"]]  # dvc plots draws the mean
    assert paths.curve_tsv("E4", NATURAL_NOPATTERN, "l2").read_text() == "eps\trobust_acc\n"
    curves = next(t for t in report_tables(collect(Path("data"))) if t.spec.id == "curves")
    d_r = next(r for r in curves.rows if r["run"] == "E4-D_R")
    half = (row["ci95"]["clean_acc"][1] - row["ci95"]["clean_acc"][0]) / 2
    assert curves.cells(d_r)[1] == f"{100 * row['clean_acc']:.1f} ±{100 * half:.1f}"
    control = next(r for r in curves.rows if r["run"] == f"E4-{NATURAL_NOPATTERN}")
    assert curves.cells(control)[1] == "n/a (synthetic only)"
    assert "E4 rows: mean ±95% interval over 2 seeds (Student t)" in curves.caption


def test_seeds_must_be_at_least_one():
    raw = tiny_raw()
    raw["retrain"]["seeds"] = 0
    with pytest.raises(ParamsError, match=r"retrain\.seeds: must be >= 1, got 0; train at least one classifier"):
        parse_params(raw)


# --- the E4 stage with seeds ----------------------------------------------------------------------------------


def tiny(seeds: int = 3, epochs: int = 1):
    raw = tiny_raw()
    raw["retrain"]["seeds"] = seeds
    raw["retrain"]["train"]["epochs"] = epochs
    return parse_params(raw)


def test_a_set_trains_one_classifier_per_seed_and_reports_their_mean_and_interval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_stage("retrain", tiny(), "natural")
    row = json.loads(paths.metrics_path("E4", "natural").read_text())
    assert row["seeds"] == [0, 1, 2]
    for key in ("clean_acc", "robust_acc_l2", "robust_acc_linf"):
        values = row["per_seed"][key]
        assert len(values) == 3 and row[key] == pytest.approx(sum(values) / 3)  # the old key holds the mean
        lo, hi = row["ci95"][key]
        assert lo <= row[key] <= hi and hi - lo == pytest.approx(2 * (interval95(values)[1] - row[key]))
    headers = [json.loads(read_header(paths.retrained_path("natural", k))["params"]) for k in range(3)]
    assert [h["seed"] for h in headers] == [0, 1, 2] and {h["data_seed"] for h in headers} == {0}
    weights = [paths.retrained_path("natural", k).read_bytes() for k in range(3)]
    assert len(set(weights)) == 3  # three different classifiers, not one written three times
    assert sorted(p.name for p in paths.live_dir("E4", "natural").iterdir()) == ["0", "1", "2"]

    run_stage("retrain", tiny(seeds=2), "natural")  # fewer seeds: no weights or logs of the third are left
    assert sorted(p.name for p in paths.retrained_dir("natural").iterdir()) == ["0.safetensors", "1.safetensors"]
    assert sorted(p.name for p in paths.live_dir("E4", "natural").iterdir()) == ["0", "1"]
    assert paths.retrained_path("natural", 0).read_bytes() == weights[0]  # the same seed trains the same model


def test_a_stage_killed_in_its_second_seed_resumes_without_retraining_the_first(tmp_path, monkeypatch):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    monkeypatch.chdir(whole)
    run_stage("retrain", tiny(epochs=2), "natural")  # uninterrupted: what the resumed run must write

    monkeypatch.chdir(killed)
    trained: list[tuple[int, int]] = []  # (seed, epoch) of every epoch trained
    attacked: list[int] = []  # the seed of every attack chunk finished
    state = {"seed": None, "kill": True}
    real_epoch, real_evaluate, real_train = (trainer_module._train_epoch, retrain_module.evaluate_classifier,
                                             retrain_module.train_classifier)

    def train_seed(*args, seed, **kwargs):
        state["seed"] = seed
        return real_train(*args, seed=seed, **kwargs)

    def epoch_of_seed(run, epoch, live, bars):
        if (state["seed"], epoch) == (1, 2) and state["kill"]:
            state["kill"] = False
            raise KeyboardInterrupt  # seed 0 done, seed 1 killed in its second epoch
        trained.append((state["seed"], epoch))
        return real_epoch(run, epoch, live, bars)

    def recorded(*args, on_progress, **kwargs):
        def report(phase, done, total, **info):
            attacked.extend([state["seed"]] if "batch" in info else [])
            on_progress(phase, done, total, **info)
        return real_evaluate(*args, on_progress=report, **kwargs)

    monkeypatch.setattr(retrain_module, "train_classifier", train_seed)
    monkeypatch.setattr(trainer_module, "_train_epoch", epoch_of_seed)
    monkeypatch.setattr(retrain_module, "evaluate_classifier", recorded)
    with pytest.raises(KeyboardInterrupt):
        run_stage("retrain", tiny(epochs=2), "natural")
    assert trained == [(0, 1), (0, 2), (1, 1)] and checkpoint_file("retrain@natural", 1).exists()
    assert set(attacked) == {0}
    assert not paths.metrics_path("E4", "natural").exists()

    trained.clear(), attacked.clear()
    run_stage("retrain", tiny(epochs=2), "natural")
    assert trained == [(1, 2), (2, 1), (2, 2)]  # seed 0 not retrained, seed 1 from its checkpoint
    assert set(attacked) == {1, 2}  # nor attacked again
    for out in (*(paths.retrained_path("natural", k) for k in range(3)), paths.metrics_path("E4", "natural")):
        assert (killed / out).read_bytes() == (whole / out).read_bytes(), f"{out} differs from an uninterrupted run's"
    assert not resume_dir("retrain@natural").exists()


# --- the pattern-free control ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def control():
    """1000 natural training images of the smoke data, and the same images in the pattern-free control set."""
    raw = tiny_raw()
    raw["data"]["train_size"] = 2000
    raw["construct"]["size"] = 1000
    params = parse_params(raw)
    sets = {name: training_set(name, dataset_path=None, construct=params.construct, data=params.data, seed=0)
            for name in ("natural", NATURAL_NOPATTERN)}
    return params.data.synthetic, sets["natural"], sets[NATURAL_NOPATTERN]


def test_the_control_is_the_natural_images_without_their_planted_pattern(control):
    cfg, natural, free = control
    assert torch.equal(natural.labels, free.labels)
    patterns = nonrobust_patterns(cfg)
    assert torch.allclose(natural.float_images() - free.float_images(), patterns[natural.labels], atol=1e-6)
    # nothing of the label's pattern is left: its projection is that of any other class's (planted: 0.5)
    unit = patterns.flatten(1) / patterns.flatten(1).norm(dim=1, keepdim=True)
    for images, planted in ((natural, 0.5), (free, 0.0)):
        projection = images.float_images().flatten(1) @ unit.T
        own = projection.gather(1, natural.labels[:, None]).squeeze(1)
        others = (projection.sum(dim=1) - own) / (cfg.num_classes - 1)
        assert (own - others).mean().item() == pytest.approx(planted, abs=0.01)


def test_the_control_keeps_the_shapes_and_its_pattern_probe_reads_chance(control):
    cfg, natural, free = control
    before = probe_agreement(natural.float_images(), natural.labels, cfg)
    after = probe_agreement(free.float_images(), free.labels, cfg)
    assert before["nonrobust_agreement"] >= 0.99
    # chance is 1/10; 1000 images put a binomial standard deviation of 0.0095 around it (measured 0.11)
    assert abs(after["nonrobust_agreement"] - 1 / cfg.num_classes) < 0.05
    assert after["robust_agreement"] == before["robust_agreement"] and after["colour_agreement"] == before["colour_agreement"]


def test_off_synthetic_data_the_control_row_says_not_applicable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tiny_raw()
    raw["data"].update(source="imagefolder", root=str(tmp_path / "no-such-tree"))
    (tmp_path / paths.retrained_dir(NATURAL_NOPATTERN)).mkdir(parents=True)
    (tmp_path / paths.retrained_path(NATURAL_NOPATTERN, 0)).write_text("from a synthetic run")
    run_stage("retrain", parse_params(raw), NATURAL_NOPATTERN)  # reads no image: the tree need not exist
    assert json.loads(paths.metrics_path("E4", NATURAL_NOPATTERN).read_text()) == {
        "dataset": NATURAL_NOPATTERN, "not_applicable": "synthetic only"}
    # dvc.yaml names the same outs for every data source: they exist, and hold nothing of an earlier run
    assert list(paths.retrained_dir(NATURAL_NOPATTERN).iterdir()) == []
    assert list(paths.live_dir("E4", NATURAL_NOPATTERN).iterdir()) == []
    row = next(r for r in collect(Path("data"))["E4"] if r["dataset"] == NATURAL_NOPATTERN)
    assert row["not_applicable"] == "synthetic only" and "clean_acc" not in row
    assert f"| {NATURAL_NOPATTERN} | n/a (synthetic only) | — | — |" in markdown(collect(Path("data")))


# --- what the report and the app show -------------------------------------------------------------------------


def _e4_metrics(data: Path, seeds: list[int]) -> None:
    spec = {"kind": "pgd", "norm": "l2", "eps": 0.25, "steps": 20, "step_size": 0.05, "restarts": 1, "name": "pgd"}
    per_seed = {"clean_acc": [0.81, 0.821, 0.832][: len(seeds)], "robust_acc_l2": [0.5, 0.55, 0.6][: len(seeds)],
                "robust_acc_linf": [0.1, 0.1, 0.1][: len(seeds)]}
    write_json(data / "metrics/E4/D_R.json", {
        "dataset": "D_R", "n": 1000, "n_train": 1000, "attacks": {"l2": [spec], "linf": [{**spec, "norm": "linf"}]},
        **{key: sum(values) / len(values) for key, values in per_seed.items()},
        "seeds": seeds, "per_seed": per_seed, "ci95": {key: interval95(values) for key, values in per_seed.items()},
    })


def test_the_report_shows_each_mean_with_its_interval_and_how_many_seeds(tmp_path):
    _e4_metrics(tmp_path, [0, 1, 2])
    report = collect(tmp_path)
    d_r = next(row for row in report["E4"] if row["dataset"] == "D_R")
    assert d_r["seeds"] == [0, 1, 2] and d_r["per_seed"]["robust_acc"] == [0.5, 0.55, 0.6]
    assert d_r["ci95"]["clean_acc"] == pytest.approx(interval95([0.81, 0.821, 0.832]))
    # 82.1 ±2.7: the half-width of the clean interval, 4.303 * 0.011 / sqrt(3), in percent
    half = 100 * 4.302653 * 0.011 / math.sqrt(3)
    l2_half = 100 * 4.302653 * 0.05 / math.sqrt(3)
    text = markdown(report)
    assert f"| D_R | 82.1 ±{half:.1f} | 55.0 ±{l2_half:.1f} | 10.0 ±0.0 | 84/48 |" in text
    e4 = next(t for t in report_tables(report) if t.spec.id == "E4")
    assert "clean, L2, Linf: mean ±95% interval over 3 seeds (Student t)" in e4.caption


def test_one_seed_shows_no_interval(tmp_path):
    _e4_metrics(tmp_path, [0])
    text = markdown(collect(tmp_path))
    assert "| D_R | 81.0 | 50.0 | 10.0 | 84/48 |" in text and "one seed per row, no interval" in text


def test_the_app_shows_the_interval_as_the_report_does(tmp_path):
    from advtui.appcore.resultsdata import load_tables

    _e4_metrics(tmp_path / "data", [0, 1, 2])
    e4 = next(t for t in load_tables(tmp_path) if t.id == "E4")
    d_r = next(row for row in e4.rows if row["dataset"] == "D_R")
    cells = dict(zip((c.key for c in e4.shown_columns), e4.cells(d_r)))
    assert cells["clean_acc"].startswith("82.1 ±") and cells["robust_acc"] == f"55.0 ±{100 * 4.302653 * 0.05 / math.sqrt(3):.1f}"


def test_the_monitor_follows_the_seed_that_is_training(tmp_path):
    folder = tmp_path / "live"
    for seed in ("0", "1"):
        tsv = folder / seed / "plots/metrics/train/loss.tsv"
        tsv.parent.mkdir(parents=True)
        tsv.write_text(f"step\tloss\n0\t{seed}.5\n")
    os.utime(folder / "0/plots/metrics/train/loss.tsv", (1, 1))  # seed 0 finished long ago
    curves = LiveCurves(folder)
    curves.poll()
    assert newest_run(folder) == folder / "1" and curves.loss[0][1].values == [1.5]
    shutil.copytree(folder / "1", folder / "2")  # the next seed starts logging
    (folder / "2/plots/metrics/train/loss.tsv").write_text("step\tloss\n0\t2.5\n")
    os.utime(folder / "1/plots/metrics/train/loss.tsv", (2, 2))
    assert curves.poll() and curves.loss[0][1].values == [2.5]
    flat = tmp_path / "flat"  # a stage of one run logs into its folder itself
    (flat / "plots").mkdir(parents=True)
    assert newest_run(flat) == flat
