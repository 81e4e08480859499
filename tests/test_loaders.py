"""ImageSet and the data sources: synthetic, imagefolder (tmp trees), cifar10 (offline and fake batches), constructed."""

from __future__ import annotations

import pickle
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

import advtui.data.loaders as sources
from advtui.data.imageset import ImageSet
from advtui.data.loaders import load_source
from advtui.data.store import save_artifact
from advtui.data.synthetic import make_synthetic
from advtui.catalog.data import SyntheticConfig


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ADVTUI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _set(labels: list[int], classes: int = 3) -> ImageSet:
    n = len(labels)
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    return ImageSet(images, torch.tensor(labels), [f"c{i}" for i in range(classes)], extras={"id": torch.arange(n)})


def test_imageset_float_subset_loader():
    data = _set([0, 1, 2, 0, 1, 2, 0])
    assert data.num_classes == 3 and len(data) == 7
    x = data.float_images()
    assert x.dtype == torch.float32 and torch.allclose(x[3], torch.full((3, 2, 2), 3 / 255))
    sub = data.subset(torch.tensor([4, 1]))
    assert sub.labels.tolist() == [1, 1] and sub.extras["id"].tolist() == [4, 1]
    batches = list(data.loader(batch_size=3))
    assert [len(y) for _, y in batches] == [3, 3, 1]
    assert torch.equal(torch.cat([x for x, _ in batches]), data.float_images())
    a = [y for _, y in data.loader(3, shuffle=True, generator=torch.Generator().manual_seed(5))]
    b = [y for _, y in data.loader(3, shuffle=True, generator=torch.Generator().manual_seed(5))]
    assert all(torch.equal(p, q) for p, q in zip(a, b)) and sorted(torch.cat(a).tolist()) == sorted(data.labels.tolist())
    with pytest.raises(ValueError, match="^labels: "):
        ImageSet(data.images, torch.tensor([0, 1, 2, 0, 1, 2, 3]), data.classes)
    with pytest.raises(ValueError, match=r"^extras\['bad'\]: "):
        ImageSet(data.images, data.labels, data.classes, extras={"bad": torch.zeros(2)})


def test_select_is_deterministic_balanced_and_nested():
    data = make_synthetic(SyntheticConfig(), 600, seed=0)
    a, b = data.select(100, seed=1), data.select(100, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.extras["shape_class"], b.extras["shape_class"])
    assert torch.equal(a.labels.bincount(), torch.full((10,), 10))
    assert not torch.equal(a.images, data.select(100, seed=2).images)
    ids = lambda s: {tuple(v) for v in s.extras["center"].tolist()}  # noqa: E731
    assert ids(data.select(50, seed=1)) <= ids(a)
    assert data.select(None, seed=1) is data
    with pytest.raises(ValueError, match="^size: "):
        data.select(601, seed=0)


def test_select_gives_a_short_class_all_it_has():
    data = _set([0] * 3 + [1] * 40 + [2] * 40)
    counts = data.select(30, seed=0).labels.bincount(minlength=3).tolist()
    assert counts[0] == 3 and abs(counts[1] - counts[2]) <= 1 and sum(counts) == 30


def test_synthetic_source():
    cfg = SyntheticConfig(robust_amplitude=0.2)
    data = load_source("synthetic", "test", size=50, seed=4, synthetic=cfg)
    assert torch.equal(data.images, make_synthetic(cfg, 50, 4, "test").images)
    assert not torch.equal(data.images, load_source("synthetic", "train", size=50, seed=4, synthetic=cfg).images)
    with pytest.raises(ValueError, match="^size: "):
        load_source("synthetic", "train")
    with pytest.raises(ValueError, match="^split: "):
        load_source("synthetic", "val", size=5)


def _write_tree(root, split: str, classes: dict[str, int], size=(8, 6), fmt="png", seed=0) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    written: dict[str, list[np.ndarray]] = {}
    for name, count in classes.items():
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        written[name] = []
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.{fmt}")
            written[name].append(pixels)
    return written


def test_imagefolder_reads_caches_and_resizes(tmp_path, tmp_cache, monkeypatch):
    root = tmp_path / "tree"
    train = _write_tree(root, "train", {"cat": 3, "dog": 2})
    _write_tree(root, "test", {"cat": 1, "dog": 1}, seed=1)
    data = load_source("imagefolder", "train", root=str(root))
    assert data.classes == ["cat", "dog"] and data.labels.tolist() == [0, 0, 0, 1, 1]
    assert data.images.dtype == torch.uint8 and data.images.shape == (5, 3, 6, 8)
    assert torch.equal(data.images[3], torch.from_numpy(train["dog"][0]).permute(2, 0, 1))
    assert len(list(tmp_cache.glob("imagefolder/*.safetensors"))) == 1
    assert len(load_source("imagefolder", "test", root=str(root))) == 2

    # a second load comes from the cache, without decoding
    def no_decode(path):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(sources, "_decode", no_decode)
    assert torch.equal(load_source("imagefolder", "train", root=str(root)).images, data.images)
    monkeypatch.undo()
    monkeypatch.setenv("ADVTUI_CACHE", str(tmp_cache))

    # a new image of another size invalidates the cache and is resized to the common size
    Image.fromarray(np.full((12, 16, 3), 200, dtype=np.uint8)).save(root / "train" / "dog" / "big.jpg")
    grown = load_source("imagefolder", "train", root=str(root), size=4, seed=0)
    assert grown.images.shape == (4, 3, 6, 8) and grown.labels.bincount().tolist() == [2, 2]
    full = load_source("imagefolder", "train", root=str(root))
    assert len(full) == 6 and (full.images[5].int() - 200).abs().max() <= 2


def test_imagefolder_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="root=.*tar -xzf"):
        load_source("imagefolder", "train")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_source("imagefolder", "train", root=str(tmp_path / "missing"))
    (tmp_path / "tree" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images under"):
        load_source("imagefolder", "train", root=str(tmp_path / "tree"))
    with pytest.raises(FileNotFoundError, match="test/<class>/"):
        load_source("imagefolder", "test", root=str(tmp_path / "tree"))


def test_imagefolder_tiny_imagenet_layout(tmp_path):
    root = tmp_path / "tiny"
    for wnid in ("n01", "n02"):
        folder = root / "train" / wnid / "images"
        folder.mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(folder / f"{wnid}_{i}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    (root / "test" / "images").mkdir(parents=True)  # Tiny-ImageNet's unlabelled test folder
    Image.fromarray(np.full((4, 4, 3), 255, dtype=np.uint8)).save(root / "val" / "images" / "val_0.JPEG")
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(root / "val" / "images" / "val_1.JPEG")
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t4\t4\nval_1.JPEG\tn01\t0\t0\t4\t4\n")
    train = load_source("imagefolder", "train", root=str(root))
    assert train.classes == ["n01", "n02"] and train.labels.tolist() == [0, 0, 1, 1]
    test = load_source("imagefolder", "test", root=str(root))
    assert test.labels.tolist() == [1, 0] and test.images[0].min() > 250


def test_cifar10_offline_error_names_the_imagefolder_fix(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    # simulate the network failure, so the test never downloads 170 MB where a network exists
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", offline)
    with pytest.raises(ValueError, match=r"^cifar10: .*source imagefolder.*tar -xzf cifar10-jpeg\.tar\.gz") as info:
        load_source("cifar10", "train", root=str(tmp_path))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="^cifar10: .*Dataset not found"):
        load_source("cifar10", "test", root=str(tmp_path), download=False)


def test_cifar10_reads_pickled_batches(tmp_path, monkeypatch):
    # torchvision checks the real files' md5 sums, which no fake can match: the check is switched off here
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *args, **kwargs: True)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, 4).tolist()}
        batches[name] = batch
        (folder / name).write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    train = load_source("cifar10", "train", root=str(tmp_path), download=False)
    assert train.classes == names and train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    expected = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(expected))
    assert train.labels.tolist() == sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    test = load_source("cifar10", "test", root=str(tmp_path), download=False)
    assert torch.equal(test.images, torch.from_numpy(batches["test_batch"]["data"].reshape(-1, 3, 32, 32)))


def test_constructed_dataset_artifact(tmp_path):
    path = tmp_path / "d_rand.safetensors"
    images = torch.rand(12, 3, 32, 32).half()
    labels = torch.arange(12) % 4
    starts = torch.arange(12).flip(0)
    save_artifact(path, {"images": images, "labels": labels, "starts": starts}, kind="dataset", arch="d_rand",
                  extra={"classes": ["a", "b", "c", "d"]})
    data = load_source("constructed", "train", root=str(path))
    assert data.images.dtype == torch.float16 and torch.equal(data.images, images)
    assert data.classes == ["a", "b", "c", "d"] and torch.equal(data.extras["starts"], starts)
    assert data.meta["arch"] == "d_rand" and data.meta["source"] == "constructed"
    picked = load_source("constructed", "train", root=str(path), size=8, seed=0)
    assert picked.labels.bincount().tolist() == [2, 2, 2, 2]
    assert torch.equal(picked.images, images[11 - picked.extras["starts"]])
    model = tmp_path / "model.safetensors"
    save_artifact(model, {"w": torch.zeros(1)}, kind="model")
    with pytest.raises(ValueError, match="expected a dataset"):
        load_source("constructed", "train", root=str(model))
    with pytest.raises(FileNotFoundError):
        load_source("constructed", "train", root=str(tmp_path / "none.safetensors"))
