"""E2/E3 constructions: the plan of starts and labels, the ground truth they plant, and resumable chunks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from advtui.data.store import load_artifact
from advtui.experiments import construct as construct_mod
from advtui.experiments.common import save_classifier
from advtui.catalog.data import DataParams
from advtui.experiments.construct import construct_dataset, make_plan
from advtui.catalog.params import ConstructParams, InversionConfig, RelabelConfig
from advtui.models.registry import create_model
from advtui.catalog.training import AugmentConfig
from advtui.paradigms.supervised import train_classifier
from advtui.catalog.training import TrainConfig
from advtui.runtime import seed_everything

DATA = DataParams(train_size=600, test_size=100)
CFG = ConstructParams(
    size=60, zero_robust_size=6, chunk=25,
    robust=InversionConfig(steps=5, step_size=1.0), nonrobust=InversionConfig(steps=5, step_size=0.1, eps=0.5),
    relabel=RelabelConfig(steps=20, step_size=0.1, eps=0.5), springer=RelabelConfig(steps=5),
)


@pytest.fixture(scope="module")
def standard_model(tmp_path_factory) -> Path:
    """A small CNN trained on the synthetic data (it leans on the planted non-robust pattern)."""
    from advtui.experiments.common import natural_split

    folder = tmp_path_factory.mktemp("model")
    seed_everything(0)
    model = create_model("small_cnn")
    train_classifier(
        model, natural_split(DATA, "train", 0),
        TrainConfig(epochs=5, batch_size=64, lr=0.05, augment=AugmentConfig(noise_std=0.03)),
        checkpoint=folder / "m.ckpt", progress=False,
    )
    return save_classifier(model, folder / "standard.safetensors", paradigm="supervised", params={})


def test_plans_follow_the_papers():
    labels = torch.tensor([0, 1, 2, 3, 9, 9])
    det = make_plan("D_det", CFG, labels, 10, seed=0)
    assert torch.equal(det.label, (labels + 1) % 10) and torch.equal(det.start, det.source)
    zero = make_plan("zero_robust", CFG, labels, 10, seed=0)
    assert len(zero.label) == 60 and torch.equal(zero.label[:10], torch.arange(10))
    assert torch.equal(zero.source[:10], torch.zeros(10, dtype=torch.long))
    rand = make_plan("D_rand", CFG, torch.zeros(500, dtype=torch.long), 10, seed=0)
    assert set(rand.label.tolist()) == set(range(10))  # uniform over all classes
    inv = make_plan("D_NR", CFG, labels, 10, seed=0)
    assert torch.equal(inv.label, labels) and (labels[inv.start] != labels).all()  # start: another class
    papers = make_plan("D_R", dataclasses.replace(CFG, start="image"), labels, 10, seed=0)
    assert torch.equal(papers.label, labels) and (papers.start != torch.arange(6)).all()  # any other image
    noise = make_plan("D_R", dataclasses.replace(CFG, start="noise"), labels, 10, seed=0)
    assert (noise.start == -1).all()


def test_d_det_plants_the_target_pattern_and_keeps_the_shape(tmp_path, standard_model):
    out = tmp_path / "D_det.safetensors"
    metrics = construct_dataset("D_det", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard_model, out=out)
    art = load_artifact(out, "dataset")
    assert art.tensors["images"].dtype == torch.float16
    assert torch.equal(art.tensors["labels"], (art.tensors["source_labels"] + 1) % 10)
    # eps 0.5 equals the planted pattern's norm: enough to out-vote the source's pattern for most points.
    assert metrics["target_hit_rate"] > 0.6
    assert metrics["mean_l2_change"] <= 0.5 + 1e-3
    # Ground truth: the added part reads the new label; the shape still reads the old one.
    assert metrics["nonrobust_agreement"] > 0.8
    assert metrics["robust_agreement"] < 0.2


def count_chunks_and_crash_on_second(monkeypatch) -> dict:
    """Make the construction count the chunks it builds and die (as on Ctrl-C) at its second chunk."""
    real, calls = construct_mod._build_chunk, {"n": 0}

    def build(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(construct_mod, "_build_chunk", build)
    return calls


def test_interrupted_construction_resumes_to_the_same_dataset(tmp_path, standard_model, monkeypatch):
    whole = tmp_path / "whole.safetensors"
    construct_dataset("D_NR", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard_model, out=whole)

    out = tmp_path / "D_NR.safetensors"
    out.write_bytes(b"previous artifact")
    calls = count_chunks_and_crash_on_second(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        construct_dataset("D_NR", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard_model, out=out)
    assert out.read_bytes() == b"previous artifact"  # a failed stage leaves what was there
    assert len(list((tmp_path / ".D_NR.parts").iterdir())) == 1  # the finished chunk is kept

    calls["n"] = 10  # no more crashes; count the chunks the rerun builds
    construct_dataset("D_NR", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard_model, out=out)
    assert calls["n"] == 10 + 2  # 60 images in chunks of 25: only the two unfinished chunks were built
    assert torch.equal(load_artifact(out, "dataset").tensors["images"], load_artifact(whole, "dataset").tensors["images"])
    assert not (tmp_path / ".D_NR.parts").exists()


def test_changed_settings_do_not_reuse_old_chunks(tmp_path, standard_model, monkeypatch):
    out = tmp_path / "D_rand.safetensors"
    calls = count_chunks_and_crash_on_second(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        construct_dataset("D_rand", cfg=CFG, data=DATA, seed=0, device="cpu", model_path=standard_model, out=out)
    calls["n"] = 10  # past the crash; count the chunks the rerun builds
    other = ConstructParams(**{**CFG.__dict__, "relabel": RelabelConfig(steps=3)})
    construct_dataset("D_rand", cfg=other, data=DATA, seed=0, device="cpu", model_path=standard_model, out=out)
    assert calls["n"] == 10 + 3  # every chunk rebuilt with the new settings

