"""E12, learnability vs transferability (Ilyas Fig. 3). Ground truth on the synthetic data: the source's targeted
examples add the target's planted pattern, so a natural model that reads the pattern is fooled by them and a model
trained where there is no pattern is not; a model trained on D_det learns the pattern -> y+1 rule."""

from __future__ import annotations

from dataclasses import replace

import torch

from advtui.catalog.data import DataParams
from advtui.catalog.params import ConstructParams, RelabelConfig
from advtui.catalog.training import AugmentConfig, TrainConfig
from advtui.data.synthetic import without_pattern
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.construct import construct_dataset, load_constructed
from advtui.experiments.learnability import learnability_transfer, train_arch

DATA = DataParams(train_size=600, test_size=200)
RELABEL = RelabelConfig(steps=20, step_size=0.1, eps=0.5)
CFG = ConstructParams(size=300, chunk=150, relabel=RELABEL)
CPU = torch.device("cpu")


def _cfg(epochs: int, noise: float = 0.0) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=64, optimizer="adam", lr=2e-3, weight_decay=0.0,
                       augment=AugmentConfig(noise_std=noise))


def test_pattern_readers_learn_from_d_det_and_are_fooled(tmp_path) -> None:
    from advtui.experiments.common import save_classifier

    standard = train_arch("small_cnn", natural_split(DATA, "train", 0), _cfg(5, 0.03), checkpoint=tmp_path / "s.ckpt",
                          device=CPU, seed=0, progress=False)
    path = save_classifier(standard, tmp_path / "standard.safetensors", paradigm="supervised", params={})
    construct_dataset("D_det", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=path, out=tmp_path / "D_det.st")
    det = train_arch("small_cnn", load_constructed("D_det", tmp_path / "D_det.st"), _cfg(15),
                     checkpoint=tmp_path / "d.ckpt", device=CPU, seed=0, progress=False)
    natural = train_arch("small_cnn", natural_split(DATA, "train", 0), _cfg(4), checkpoint=tmp_path / "n.ckpt",
                         device=CPU, seed=1, progress=False)
    # an "architecture" blind to the pattern: the same net trained where no image carries it
    blind_data = natural_split(replace(DATA, synthetic=without_pattern(DATA.synthetic)), "train", 0)
    blind = train_arch("small_cnn", blind_data, _cfg(4), checkpoint=tmp_path / "b.ckpt", device=CPU, seed=1,
                       progress=False)
    origins = {a: {"det_from": "test", "natural_from": "test"} for a in ("reads", "blind")}
    result = learnability_transfer(
        source=load_classifier(path), det_models={"reads": [det], "blind": [det]},
        natural_models={"reads": [natural], "blind": [blind]}, origins=origins, data=DATA, relabel=RELABEL,
        test_size=100, seed=0, device=CPU)
    reads, blind_row = result["archs"]["reads"], result["archs"]["blind"]
    assert result["n"] == 100 and result["source_hit"] > 0.8
    assert result["pattern_added"] > 0.8  # the source's examples carry the target's pattern
    assert 0.1 < result["pattern_projection"] <= DATA.synthetic.nonrobust_norm * 1.5
    # measured: 30% against 8%; a model blind to the pattern names the target about as often as chance (10%)
    assert reads["transfer_success"] > 2 * blind_row["transfer_success"] and blind_row["transfer_success"] < 0.15
    assert reads["pattern_free_acc"] < reads["natural_acc"] - 0.2  # it reads the pattern
    assert reads["det_acc"] > 0.5  # the pattern -> y+1 rule generalises to natural test data
    assert reads["ci95"]["det_acc"] is None and reads["per_model"]["det_acc"] == [reads["det_acc"]]


def test_report_and_figure_put_e15_on_e12s_plot(tmp_path) -> None:
    from advtui.files import write_json
    from advtui.report.figures import write_distill_figures
    from advtui.report.tables import collect, markdown

    arch = {"arch": "small_cnn", "det_from": "E4 retrain@D_det", "natural_from": "E4 retrain@natural",
            "n_det_models": 3, "n_natural_models": 3, "det_acc": 0.9, "transfer_success": 0.8, "natural_acc": 0.9,
            "pattern_free_acc": 0.3, "per_model": {}, "ci95": {"det_acc": [0.8, 1.0], "transfer_success": [0.7, 0.9]}}
    write_json(tmp_path / "data/metrics/E12/learnability.json",
               {"n": 200, "n_test": 1000, "chance": 0.1, "source_hit": 1.0, "pattern_added": 0.85, "attack": {},
                "archs": {"small_cnn": arch}})
    write_json(tmp_path / "data/metrics/E15/bugs_only.json",
               {"n": 500, "references": 2, "chance": 0.1, "attack": {"eps": 0.5, "steps": 30, "step_size": 0.1},
                "joint_success": 0.9, "source_hit": 0.95, "reference_hit": 0.0, "transfer_success": 0.05,
                "pattern_added": 0.1, "pattern_projection": 0.05, "shape_kept": 1.0, "clean_acc": 0.12, "next_class_rate": 0.2})
    report = collect(tmp_path / "data")
    rows = {row["arch"]: row for row in report["E12"]}
    assert rows["E15 bugs-only set"]["det_acc"] == 0.12 and rows["E15 bugs-only set"]["transfer_success"] == 0.05
    text = markdown(report)
    assert "| small_cnn | 90.0 ±10.0 | 80.0 ±10.0 | 90.0 | 30.0 |" in text
    assert "| bugs_only | 90.0 | 95.0 | 0.0 | 5.0 | 10.0 | 0.050 | 100.0 | 12.0 | 20.0 |" in text
    assert report["E17"] == [{"name": "layers", "missing": True}]
    first = [p.read_bytes() for p in write_distill_figures(tmp_path / "data/metrics", tmp_path / "a")]
    again = [p.read_bytes() for p in write_distill_figures(tmp_path / "data/metrics", tmp_path / "b")]
    assert len(first) == 2 and first == again  # E12_learnability.{png,svg}, byte-reproducible
