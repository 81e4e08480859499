"""The artifact store: bit-exact round trips, byte-identical rewrites, atomic writes, checked contents, and
one-line errors for bad files that name the fix."""

from __future__ import annotations

import pytest
import torch

from advtui.data.store import (
    load_artifact, params_digest, read_header, rebuild_hint, save_artifact, stored_version, tensors_checksum,
)


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


def _weights(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(8, 3, 3, 3, generator=gen), "head.bias": torch.randn(10, generator=gen),
            "steps": torch.tensor(7), "half": torch.rand(4, generator=gen).half()}


def test_the_same_contents_give_the_same_bytes(tmp_path):
    """DVC hashes bytes: header order, write time or place must never change them (safetensors alone
    orders the header differently on every write)."""
    header = {"kind": "model", "arch": "small_cnn", "params": {"lr": 0.1, "epochs": 2},
              "extra": {"num_classes": 10, "metrics": {"train_acc": 0.5, "lr": 1e-3}, "note": "x"}}
    blobs = set()
    for i in range(4):
        path = save_artifact(tmp_path / f"m{i}.safetensors", _weights(), **header)
        blobs.add(path.read_bytes())
    assert len(blobs) == 1
    other = save_artifact(tmp_path / "other.safetensors", _weights(seed=1), **header)
    assert other.read_bytes() not in blobs
    art = load_artifact(tmp_path / "m0.safetensors", "model")
    assert art.checksum == tensors_checksum(_weights()) and art.checksum.startswith("sha256:")
    assert stored_version(tmp_path / "m0.safetensors") == {"params_digest": art.params_digest, "checksum": art.checksum}


def test_checksum_covers_names_dtypes_shapes_and_bytes():
    base = tensors_checksum(_weights())
    assert tensors_checksum(dict(reversed(list(_weights().items())))) == base  # insertion order does not matter
    variants = [
        {**_weights(), "head.bias2": _weights()["head.bias"]},  # a renamed tensor
        {**_weights(), "head.bias": _weights()["head.bias"].double()},
        {**_weights(), "conv.weight": _weights()["conv.weight"].reshape(8, 27)},
        {**_weights(), "steps": torch.tensor(8)},
    ]
    del variants[0]["head.bias"]
    assert len({base, *map(tensors_checksum, variants)}) == 1 + len(variants)


def test_altered_tensor_bytes_under_an_intact_header_are_refused(tmp_path):
    path = save_artifact(tmp_path / "m.safetensors", _weights(), kind="model", arch="small_cnn")
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF  # one byte of the last tensor's data
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="tensors do not match the checksum in its header") as err:
        load_artifact(path, "model")
    assert "\n" not in str(err.value) and "rebuild it" in str(err.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tensors_are_refused(tmp_path, bad):
    weights = _weights()
    weights["conv.weight"][0, 0, 0, 0] = bad
    path = save_artifact(tmp_path / "m.safetensors", weights, kind="model", arch="small_cnn")
    with pytest.raises(ValueError, match="tensor 'conv.weight' holds NaN or infinite values"):
        load_artifact(path, "model")


def test_artifacts_from_before_checksums_must_be_rebuilt(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "old.safetensors"
    save_file({"w": torch.ones(2)}, str(path), metadata={"kind": "model", "arch": "small_cnn", "params": "{}"})
    with pytest.raises(ValueError, match="written before advtui checksummed artifacts.*rebuild it"):
        load_artifact(path, "model")


def test_errors_name_the_stage_that_rebuilds_a_pipeline_artifact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data/models/standard.safetensors"
    with pytest.raises(FileNotFoundError, match=r"no such artifact; run the stage that makes it `dvc repro source@standard`"):
        load_artifact(path, "model")
    save_artifact(path, _weights(), kind="model")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"truncated or corrupt\); rebuild it with `dvc repro source@standard` "
                                         r"\(or restore the recorded copy with `dvc checkout data/models/standard.safetensors`\)"):
        load_artifact(path, "model")
    assert rebuild_hint(tmp_path / "elsewhere.safetensors") == "rebuild it with the advtui stage or command that made it"


def test_a_folder_or_another_kind_of_file_gets_a_fix_and_no_advice_to_delete(tmp_path):
    save_artifact(tmp_path / "standard.safetensors", _weights(), kind="model")
    with pytest.raises(ValueError, match=r"is a folder, not an artifact; pass one .safetensors file, e.g. .*standard"):
        load_artifact(tmp_path, "model")
    metrics = tmp_path / "standard.json"
    metrics.write_text('{"clean_acc": 0.9}\n')
    with pytest.raises(ValueError, match=r"not a valid safetensors artifact \(a .json file\); pass a .safetensors file") as err:
        load_artifact(metrics, "model")
    assert "delete" not in str(err.value)
