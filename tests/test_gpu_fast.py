"""bench/gpu_fast.py, the GPU run of Ilyas et al.'s headline, end to end at toy size on a CPU: a tiny ImageFolder
archive, the gpu-fast profile with CPU-sized recipes, and the packages the GPU machine lacks made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from advtui.catalog.data import SyntheticConfig
from advtui.catalog.params import load_params
from advtui.catalog.paths import dataset_path, model_path, retrained_path
from advtui.data.store import load_artifact
from advtui.data.synthetic import make_synthetic
from advtui.experiments.common import load_classifier, natural_split
from advtui.paradigms.supervised import accuracy

ROOT = Path(__file__).resolve().parents[1]
#: What the GPU machine lacks of advtui's dependencies (its packages: /work/.library/device/KINDS.md; the
#: wheels bench/README.md "GPU run" carries are for other versions): the headline's stages must run without them.
ABSENT_ON_THE_GPU_MACHINE = ("dvc", "dvclive", "kornia", "diffusers", "pyautoattack", "textual", "textual_plotext")
CLASSES = 4


def _tiny_archive(folder: Path) -> Path:
    """A CIFAR-like ImageFolder archive (train/<class>/, test/<class>/ PNGs) of synthetic images."""
    tree = folder / "tree"
    for split, n in (("train", 48), ("test", 24)):
        images = make_synthetic(SyntheticConfig(num_classes=CLASSES), n, seed=1, split=split)
        pixels = (images.float_images() * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
        for i, (x, y) in enumerate(zip(pixels, images.labels)):
            target = tree / split / f"class{int(y)}" / f"{i:03d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x.numpy()).save(target)
    archive = folder / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=split)
    return archive


def _blocker(folder: Path) -> Path:
    """A folder whose modules shadow ``ABSENT_ON_THE_GPU_MACHINE``: importing one fails as on that machine."""
    folder.mkdir()
    for name in ABSENT_ON_THE_GPU_MACHINE:
        (folder / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on the GPU machine')\n")
    return folder


@pytest.mark.slow
def test_toy_gpu_run_prints_the_headline_beside_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tiny_archive(tmp_path)
    work, out, cache = tmp_path / "work", tmp_path / "out", tmp_path / "cache"
    work.mkdir()
    env = dict(os.environ, ADVTUI_CACHE=str(cache), OUT=str(out), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(_blocker(tmp_path / "absent")), str(ROOT)]))
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_fast.py"), "--toy", "--workdir", str(work),
                           "--archive", str(archive)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads((out / "gpu_fast.json").read_text())
    assert [stage["stage"] for stage in result["stages"]] == [
        "source@standard", "construct@D_rand", "construct@D_det", "retrain@D_rand", "retrain@D_det"]
    rows = {row["set"]: row for row in result["rows"]}
    assert list(rows) == ["D_rand", "D_det"]
    assert (rows["D_rand"]["published"], rows["D_det"]["published"]) == (0.63, 0.44)
    for row in rows.values():
        assert 0.0 <= row["clean_acc"] <= 1.0 and 0.0 <= row["target_hit_rate"] <= 1.0
        assert (row["n_train"], row["n_test"], row["seeds"]) == (48, 24, 1)  # every image of the archive, one seed
    table = (out / "gpu_fast.md").read_text()
    assert table == proc.stdout[proc.stdout.index("# Ilyas et al. headline"):].rstrip("\n") + "\n"
    assert f"| D_rand | {rows['D_rand']['clean_acc']:.1%} | 63% |" in table
    assert f"| D_det | {rows['D_det']['clean_acc']:.1%} | 44% |" in table
    assert "dvclive unavailable" in (out / "gpu_fast.log").read_text()  # it ran without DVC, as on the GPU machine

    # The D_det row is the accuracy of the classifier trained on D_det (labels y+1), measured against the
    # *natural* test labels: recomputed here from the stored weights and the archive's test split.
    monkeypatch.chdir(work)
    monkeypatch.setenv("ADVTUI_CACHE", str(cache))
    params = load_params("params.yaml")
    assert params.profile == "gpu-fast" and params.model.arch == "small_cnn"
    d_det = load_artifact(dataset_path("D_det"), "dataset").tensors
    assert torch.equal(d_det["labels"], (d_det["source_labels"] + 1) % CLASSES)
    test = natural_split(params.data, "test", params.seed)
    for name, row in rows.items():
        model = load_classifier(retrained_path(name, 0))
        assert accuracy(model, test) == pytest.approx(row["clean_acc"])
    assert model_path("standard").is_file()
