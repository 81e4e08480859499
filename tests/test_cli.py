"""The command line as a user meets it: help, version, a tiny train -> attack -> invert -> preview, and errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from typer.testing import CliRunner

from advtui.attacks.robust_accuracy import robust_accuracy
from advtui.cli.main import app
from advtui.catalog.params import load_params, profile_path
from advtui.experiments.common import load_classifier, natural_split

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A project folder with a tiny smoke params.yaml (small data, one epoch, cheap PGD)."""
    params = yaml.safe_load(profile_path("smoke").read_text())
    params["data"].update(train_size=400, test_size=100)
    params["sources"]["train"].update(epochs=1, batch_size=64)
    params["sources"]["robust_l2"]["adversarial"].update(steps=2, step_size=0.5)
    params["attack"]["l2"].update(steps=5)
    params["attack"]["linf"].update(steps=5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_help_lists_the_commands_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "attack", "invert", "dataset", "profile", "stage", "report", "models"):
        assert command in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("advtui ")


def test_train_attack_invert_preview_round_trip(workdir):
    result = runner.invoke(app, ["train", "standard"])
    assert result.exit_code == 0, result.output
    weights = workdir / "data/models/standard.safetensors"
    assert weights.exists() and not weights.with_suffix(".ckpt").exists()
    assert (workdir / "data/live/E1/standard/metrics.json").exists()  

    result = runner.invoke(app, ["attack", str(weights), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 100
    assert report["attacks"]["l2"][0]["eps"] == 0.25
    # the numbers are those of the stored weights on the params' natural test set under the params' attack
    params = load_params(workdir / "params.yaml")
    test = natural_split(params.data, "test", params.seed)
    expected = robust_accuracy(load_classifier(weights), test.float_images(), test.labels, [params.attack.l2],
                               batch_size=params.attack.batch_size, generator=torch.Generator().manual_seed(params.seed))
    assert (report["clean_acc"], report["robust_acc_l2"]) == (expected.clean_acc, expected.robust_acc)

    result = runner.invoke(app, ["attack", str(weights), "--norm", "l2", "--eps", "0"])
    assert result.exit_code == 0, result.output
    assert "robust acc" in result.output

    out = workdir / "inv.safetensors"
    result = runner.invoke(app, ["invert", str(weights), "--n", "3", "--steps", "5", "--eps", "0.5", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "relative representation error" in result.output and out.exists()

    result = runner.invoke(app, ["dataset", "preview", str(out), "--n", "3"])
    assert result.exit_code == 0, result.output
    assert "3 images" in result.output
    result = runner.invoke(app, ["dataset", "preview", "--n", "4"])
    assert result.exit_code == 0 and "robust probe" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["attack", "data/models/none.safetensors"], "no such artifact; run the stage"),
        (["train", "robust_l3"], "unknown name 'robust_l3'"),
        (["attack", "params.yaml"], "not a valid safetensors artifact"),
        (["profile", "use", "gpu"], "unknown profile 'gpu'"),
        (["stage", "construct", "D_R"], "missing upstream artifact; run `dvc repro source@robust_l2`"),
        (["stage", "retrain", "D_det"], "run `dvc repro construct@D_det`"),
        (["stage", "construct", "D_X"], "unknown name 'D_X'"),
    ],
)
def test_user_errors_are_one_line(workdir, args, message):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_params_name_the_key(workdir):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["sources"]["train"]["epochs"] = -1
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 2
    assert "sources.train.epochs: must be >= 1" in result.output


def test_profile_use_and_list(workdir):
    result = runner.invoke(app, ["profile", "use", "cpu"])
    assert result.exit_code == 0, result.output
    assert "profile: cpu" in (workdir / "params.yaml").read_text()
    listing = runner.invoke(app, ["profile", "list"])
    assert "* cpu" in listing.output
