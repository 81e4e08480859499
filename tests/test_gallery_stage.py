"""The gallery stage on a tiny synthetic setup: each shown constructed image is the one built from the
shown natural image (the datasets' recorded source and start indices), with its true perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from advtui.data.store import load_artifact
from advtui.experiments.common import load_classifier, save_classifier
from advtui.experiments.construct import construct_dataset, source_images
from advtui.experiments.gallery import pick_sources
from advtui.catalog import paths
from advtui.catalog.names import GALLERY_SETS, recipe
from advtui.models.registry import create_model
from advtui.pipeline.runners import run_stage
from advtui.catalog.params import parse_params, profile_path
from advtui.runtime import seed_everything
from advtui.appcore.galleryfile import GALLERY_FILE, read_gallery

N_SHOWN = 4


def tiny_params(seed: int = 0, start: str = "other"):
    """The smoke profile shrunk to 200 natural images, constructions on 30 of them in 2 steps."""
    raw = yaml.safe_load(profile_path("smoke").read_text())
    raw["seed"] = seed
    raw["construct"]["start"] = start
    raw["data"].update(train_size=200, test_size=20)
    raw["construct"].update(size=30, chunk=30)
    for key in ("robust", "nonrobust", "relabel"):
        raw["construct"][key]["steps"] = 2
    raw["gallery"] = {"n": N_SHOWN}
    return parse_params(raw)


def make_project(root, params) -> None:
    """Tiny (untrained) models and tiny constructed sets at the pipeline's paths under ``root``."""
    seed_everything(0)
    for name, path in {"standard": paths.model_path("standard"), "robust_l2": paths.model_path("robust_l2"),
                       "natural": paths.retrained_path("natural", 0)}.items():  # the first seed's
        save_classifier(create_model("small_cnn"), root / path, paradigm="supervised", params={"name": name})
    for name in GALLERY_SETS:
        model = paths.model_path(recipe(name).model)
        construct_dataset(name, cfg=params.construct, data=params.data, seed=0, device="cpu",
                          model_path=root / model, out=root / paths.dataset_path(name))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder holding the gallery stage's deps."""
    root, params = tmp_path_factory.mktemp("project"), tiny_params()
    make_project(root, params)
    return root, params


def test_round_robin_pick_shows_every_class_first():
    labels = torch.tensor([2, 0, 0, 1, 2, 1, 0])
    assert pick_sources(labels, torch.arange(7), 4).tolist() == [1, 3, 0, 2]  # class 0, 1, 2, then class 0 again
    assert pick_sources(labels, torch.tensor([0, 2, 6]), 5).tolist() == [2, 0, 6]  # only candidates, as many as there are


def test_gallery_pairs_match_the_recorded_sources_and_starts(project, monkeypatch):
    root, params = project
    monkeypatch.chdir(root)
    metrics = run_stage("gallery", params, "main")
    assert metrics["n"] == N_SHOWN
    gallery = read_gallery(root / GALLERY_FILE)  # the TUI's NumPy reader
    natural = source_images(params.construct.size, params.data, params.seed)
    index = torch.from_numpy(gallery.index)
    assert gallery.sets == ["natural", *GALLERY_SETS] and gallery.classes == natural.classes
    assert len(set(natural.labels[index].tolist())) == N_SHOWN  # one image per class before any repeats
    np.testing.assert_allclose(gallery.tensors["images/natural"], natural.float_images(index).numpy(), atol=1e-3)
    for name in GALLERY_SETS:
        data = load_artifact(paths.dataset_path(name), "dataset").tensors
        rows = [int(torch.nonzero(data["sources"] == i)[0]) for i in index.tolist()]
        assert np.array_equal(gallery.tensors[f"images/{name}"], data["images"][rows].numpy())
        assert np.array_equal(gallery.tensors[f"starts/{name}"], data["starts"][rows].numpy())
        assert np.array_equal(gallery.tensors[f"labels/{name}"], data["labels"][rows].numpy())
        start = natural.float_images(data["starts"][rows])
        np.testing.assert_allclose(gallery.tensors[f"delta/{name}"], (data["images"][rows].float() - start).numpy(), atol=2e-3)
    assert (gallery.tensors["starts/D_det"] == gallery.index).all()  # relabelled sets start at the source itself
    assert (natural.labels[gallery.tensors["starts/D_R"]] != natural.labels[index]).all()  # inversions: another class
    assert np.array_equal(gallery.tensors["labels/D_det"], (gallery.tensors["labels/natural"] + 1) % natural.num_classes)
    net = load_classifier(paths.model_path("standard"))
    with torch.no_grad():
        expected = net(torch.from_numpy(gallery.tensors["images/D_NR"]).float()).argmax(1).numpy()
    assert np.array_equal(gallery.tensors["preds/standard/D_NR"], expected)
    tiles = gallery.row(0)
    assert [t.set for t in tiles] == gallery.sets and set(tiles[1].preds) == {"natural", "standard", "robust_l2"}


def test_gallery_refuses_datasets_built_from_other_images(project, monkeypatch):
    root, params = project
    monkeypatch.chdir(root)
    with pytest.raises(ValueError, match="rerun `dvc repro construct@"):
        run_stage("gallery", tiny_params(seed=1), "main")  # another seed draws other natural images


def test_inversions_from_noise_keep_their_noise_start_as_the_perturbation_base(tmp_path, monkeypatch):
    params = tiny_params(start="noise")
    make_project(tmp_path, params)
    monkeypatch.chdir(tmp_path)
    run_stage("gallery", params, "main")
    gallery = read_gallery(tmp_path / GALLERY_FILE)
    for name in ("D_R", "D_NR"):
        data = load_artifact(paths.dataset_path(name), "dataset").tensors
        rows = [int(torch.nonzero(data["sources"] == i)[0]) for i in gallery.index.tolist()]
        assert (gallery.tensors[f"starts/{name}"] == -1).all()
        expected = (data["images"][rows].float() - data["start_images"][rows].float()).numpy()
        np.testing.assert_allclose(gallery.tensors[f"delta/{name}"], expected, atol=2e-3)


def test_missing_inputs_name_the_stage_to_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"run `dvc repro construct@D_R`"):
        run_stage("gallery", tiny_params(), "main")
    with pytest.raises(ValueError, match="use main"):
        run_stage("gallery", tiny_params(), "other")


def test_gallery_path_is_where_the_app_reads():
    assert paths.GALLERY == GALLERY_FILE
