"""Byte-identical reruns and checked contents (issue 11, items 2 and 3).

A deterministic stage rerun writes the same bytes (models, datasets, metrics files), so DVC never rebuilds
what follows it; and no stage runs on an artifact that is damaged, diverged (NaN weights) or not the one it
expects: each refuses with one line naming the stage to rerun. The stages run for real on tiny params.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advtui.catalog import paths
from advtui.catalog.params import parse_params, profile_path
from advtui.cli.main import app
from advtui.data.store import load_artifact, read_header, save_artifact
from advtui.experiments import construct as construct_mod
from advtui.experiments.common import load_classifier
from advtui.paradigms.base import load_encoder
from advtui.pipeline.runners import run_stage

runner = CliRunner()
SIZE = 40  # natural images each constructed set starts from


def tiny_raw() -> dict:
    """The smoke profile shrunk so that each stage runs in seconds: 120 natural images, one epoch, 2-step attacks."""
    raw = yaml.safe_load(profile_path("smoke").read_text())
    raw["device"] = "cpu"
    raw["data"].update(train_size=120, test_size=20)
    raw["sources"]["train"].update(epochs=1, batch_size=40)
    for threat in ("l2", "linf"):
        raw["attack"][threat]["steps"] = 2
    raw["construct"].update(size=SIZE, chunk=SIZE // 2)
    raw["construct"]["relabel"]["steps"] = 2
    raw["retrain"]["train"].update(epochs=1, batch_size=40)
    raw["paradigms"]["SL"]["train"].update(epochs=1, warmup_epochs=0, batch_size=40)
    return raw


def run_all(params) -> None:
    """E1 standard model, D_det from it, the E4 model on D_det, and SL pretrained on natural images."""
    run_stage("source", params, "standard")
    run_stage("construct", params, "D_det")
    run_stage("retrain", params, "D_det")
    run_stage("pretrain", params, "SL-natural")


#: Every artifact and metrics file :func:`run_all` writes: what DVC hashes.
OUTPUTS = (
    paths.model_path("standard"), paths.metrics_path("E1", "standard"),
    paths.dataset_path("D_det"), paths.metrics_path("construct", "D_det"),
    *(paths.retrained_path("D_det", k) for k in range(parse_params(tiny_raw()).retrain.seeds)),
    paths.metrics_path("E4", "D_det"),
    paths.encoder_path("SL-natural"), paths.metrics_path("pretrain", "SL-natural"),
)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict[Path, bytes]]:
    """A project folder after one run of every stage, and the bytes each output had then."""
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_raw()))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        run_all(parse_params(tiny_raw()))
    return root, {out: (root / out).read_bytes() for out in OUTPUTS}


@pytest.fixture
def copy(project, tmp_path, monkeypatch) -> Path:
    """A private copy of the project (tests below damage files), as the working directory."""
    root = tmp_path / "copy"
    shutil.copytree(project[0], root)
    monkeypatch.chdir(root)
    return root


def rewrite(path: Path, change) -> None:
    """Store ``change(tensors)`` in place of ``path``'s tensors under the same header, as a writer would."""
    art = load_artifact(path, read_header(path)["kind"])
    tensors = dict(art.tensors)
    change(tensors)
    save_artifact(path, tensors, kind=art.kind, arch=art.arch, paradigm=art.paradigm, sources=art.sources,
                  params=art.params, extra=art.extra)


def one_line_error(args: list[str]) -> str:
    """Run the CLI, check it failed with one error line (no traceback), and return that line."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "delete" not in result.output
    return " ".join(result.output.split())  # rich wraps long lines on narrow terminals


# --- byte-identical reruns -------------------------------------------------------------------------------


def test_a_rerun_stage_writes_byte_identical_models_datasets_and_metrics(copy, project):
    run_all(parse_params(tiny_raw()))
    for out, before in project[1].items():
        assert (copy / out).read_bytes() == before, f"{out} changed on a rerun"
    for out in OUTPUTS:
        text = json.dumps(read_header(out)) if out.suffix == ".safetensors" else out.read_text()
        assert "seconds" not in text and "images_per_s" not in text, out  # timings live in the DVCLive logs
    epoch_rates = (copy / paths.live_dir("E5", "SL-natural") / "plots/metrics/epoch/images_per_s.tsv").read_text()
    assert float(epoch_rates.splitlines()[-1].split("\t")[-1]) > 0


def test_an_interrupted_construction_resumes_to_the_same_bytes(copy, project, monkeypatch):
    real, calls = construct_mod._build_chunk, {"n": 0}

    def build(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as on Ctrl-C, with the first chunk done
        return real(*args, **kwargs)

    monkeypatch.setattr(construct_mod, "_build_chunk", build)
    with pytest.raises(KeyboardInterrupt):
        run_stage("construct", parse_params(tiny_raw()), "D_det")
    run_stage("construct", parse_params(tiny_raw()), "D_det")
    assert calls["n"] == 3  # the rerun built only the unfinished chunk
    for out in (paths.dataset_path("D_det"), paths.metrics_path("construct", "D_det")):
        assert (copy / out).read_bytes() == project[1][out]


# --- checked contents ------------------------------------------------------------------------------------


def test_garbage_under_an_intact_header_is_refused(copy):
    model = paths.model_path("standard")
    blob = bytearray(model.read_bytes())
    blob[-64:] = bytes(64)  # the last weights' bytes zeroed; the header still says what it was
    model.write_bytes(bytes(blob))
    line = one_line_error(["attack", str(model)])
    assert "do not match the checksum" in line and "dvc repro source@standard" in line


def test_nan_weights_never_load(copy):
    def poison(tensors):
        name = next(k for k, t in tensors.items() if t.is_floating_point())
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = float("nan")

    model = paths.model_path("standard")
    rewrite(model, poison)
    line = one_line_error(["attack", str(model)])  # it printed "clean acc 0.050" with rc 0 before
    assert "NaN or infinite" in line and "dvc repro source@standard" in line
    encoder = paths.encoder_path("SL-natural")
    rewrite(encoder, poison)
    with pytest.raises(ValueError, match=r"NaN or infinite.*dvc repro pretrain@SL-natural"):
        load_encoder(encoder)


def test_an_invert_output_copied_over_a_constructed_set_is_refused(copy):
    inverted = copy / "inverted.safetensors"
    result = runner.invoke(app, ["invert", str(paths.model_path("standard")), "--n", "8", "--steps", "2",
                                 "-o", str(inverted)])
    assert result.exit_code == 0, result.output
    shutil.copyfile(inverted, paths.dataset_path("D_det"))
    line = one_line_error(["stage", "retrain", "D_det"])  # it trained on 8 images with rc 0 before
    assert "not the constructed set D_det" in line and "dvc repro construct@D_det" in line


def test_a_constructed_set_must_come_from_the_current_source_model(copy):
    rewrite(paths.model_path("standard"), lambda t: t.update({k: v * 1.01 for k, v in t.items() if v.is_floating_point()}))
    load_classifier(paths.model_path("standard"))  # a valid model, only another one
    with pytest.raises(ValueError, match=r"built from another standard model.*dvc repro construct@D_det"):
        run_stage("retrain", parse_params(tiny_raw()), "D_det")


def test_a_constructed_set_must_have_the_size_the_params_give(copy):
    raw = tiny_raw()
    raw["construct"]["size"] = SIZE - 10
    with pytest.raises(ValueError, match=rf"holds {SIZE} images, the params make {SIZE - 10} \(construct.size"):
        run_stage("retrain", parse_params(raw), "D_det")


def test_attack_names_the_weights_to_pass(copy):
    line = one_line_error(["attack", "data/models"])
    assert "is a folder" in line and "data/models/standard.safetensors" in line
    line = one_line_error(["attack", str(paths.metrics_path("E1", "standard"))])
    assert "is a metrics file" in line and "data/models/standard.safetensors" in line
    line = one_line_error(["attack", str(paths.encoder_path("SL-natural"))])
    assert "is a paradigm encoder (SL), not a classifier" in line and "data/models/standard.safetensors" in line
