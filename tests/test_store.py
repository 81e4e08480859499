"""The artifact store: bit-exact round trips, atomic writes, and one-line errors for bad files."""

from __future__ import annotations

import pytest
import torch

from advtui.data.store import load_artifact, params_digest, read_header, save_artifact


def test_weights_and_float16_dataset_round_trip_bit_exact(tmp_path):
    gen = torch.Generator().manual_seed(0)
    weights = {"conv.weight": torch.randn(8, 3, 3, 3, generator=gen), "head.bias": torch.randn(10, generator=gen)}
    images = torch.rand(5, 3, 32, 32, generator=gen).half()
    labels = torch.arange(5)
    save_artifact(tmp_path / "m.safetensors", weights, kind="model", arch="small_cnn", paradigm="supervised",
                  params={"lr": 0.1, "epochs": 2})
    save_artifact(tmp_path / "d.safetensors", {"images": images, "labels": labels}, kind="dataset", arch="D_R",
                  sources=["data/models/robust.safetensors"], extra={"start": "other"})
    model = load_artifact(tmp_path / "m.safetensors", "model", arch="small_cnn")
    data = load_artifact(tmp_path / "d.safetensors", "dataset")
    for name, tensor in weights.items():
        assert torch.equal(model.tensors[name], tensor)
    assert data.tensors["images"].dtype == torch.float16
    assert torch.equal(data.tensors["images"], images) and torch.equal(data.tensors["labels"], labels)
    assert model.params == {"lr": 0.1, "epochs": 2}
    assert model.params_digest == params_digest({"epochs": 2, "lr": 0.1})
    assert data.sources == ["data/models/robust.safetensors"] and data.extra == {"start": "other"}
    assert data.meta["kind"] == "dataset"


def test_missing_truncated_and_foreign_files_fail_with_one_line(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(FileNotFoundError, match="run the stage"):
        load_artifact(path, "model")
    save_artifact(path, {"w": torch.ones(1000)}, kind="model", arch="small_cnn")
    with pytest.raises(ValueError, match="is a model artifact, expected a dataset"):
        load_artifact(path, "dataset")
    with pytest.raises(ValueError, match="expected 'resnet18'"):
        load_artifact(path, "model", arch="resnet18")
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt|cannot be read") as err:
        load_artifact(path, "model")
    assert "\n" not in str(err.value)
    path.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_header(path)


def test_file_without_header_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(ValueError, match="no advtui header"):
        load_artifact(path, "model")


def test_failed_write_keeps_the_previous_artifact(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_artifact(path, {"w": torch.ones(3)}, kind="model")
    import advtui.data.store as store

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "save_file", broken_save)
    with pytest.raises(OSError):
        save_artifact(path, {"w": torch.zeros(3)}, kind="model")
    assert torch.equal(load_artifact(path, "model").tensors["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left behind
