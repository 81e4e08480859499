"""Inputs that used to give a traceback or silence now give one line naming the file or key and the fix.

One test per input of the README's "inputs tried" table (Reliability section); every CLI case checks the
exit code and that the message is a single line.
"""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from advtui.appcore.resultsdata import load_tables
from advtui.catalog.params import DEVICE_FORMS, parse_params, profile_path
from advtui.cli.main import app
from advtui.files import write_json
from advtui.schema import ParamsError

runner = CliRunner()


def smoke() -> dict:
    return yaml.safe_load(profile_path("smoke").read_text())


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder holding the smoke params.yaml, as the working directory, with a private image cache."""
    (tmp_path / "params.yaml").write_text(profile_path("smoke").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADVTUI_CACHE", str(tmp_path / "cache"))
    return tmp_path


def error_line(args: list[str], code: int = 2) -> str:
    """Run the CLI, check it exited with ``code`` after printing exactly one line, and return that line."""
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def write_params(root, params: dict) -> None:
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def image_tree(root, per_class: int = 3) -> None:
    """A tiny ImageFolder tree: train/ and test/, two classes of ``per_class`` 8x8 JPEGs each."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.jpg")


def imagefolder_params(root, train_size: int | None = None) -> dict:
    params = smoke()
    params["data"].update(source="imagefolder", root=str(root), train_size=train_size, test_size=None)
    return params


# --- params.yaml ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, what", [("", "is empty"), ("# only a comment\n", "is empty"),
                                        ("- seed\n- device\n", "holds a list, not a mapping")])
def test_an_empty_params_file_is_refused_not_run_on_defaults(project, text, what):
    (project / "params.yaml").write_text(text)
    line = error_line(["train", "standard"])
    assert f"params.yaml: {what}" in line and "advtui profile use smoke" in line
    assert not (project / "data").exists()  # nothing trained on the built-in defaults, no model replaced


def test_a_repeated_yaml_key_is_refused_naming_the_key_and_both_lines(project):
    lines = profile_path("smoke").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("  train_size:"))
    lines.insert(first + 1, "  train_size: 50")  # a second data.train_size, which YAML would silently keep
    (project / "params.yaml").write_text("\n".join(lines) + "\n")
    line = error_line(["train", "standard"])
    assert f"key 'data.train_size' appears twice (lines {first + 1} and {first + 2}); delete one of them" in line


def test_an_unknown_device_names_device_and_the_allowed_forms(project):
    params = smoke()
    params["device"] = "tpu"
    write_params(project, params)
    line = error_line(["train", "standard"])
    assert "params.yaml: device: unknown device 'tpu'; use one of auto, cpu, cuda, cuda:N, mps" in line
    for device in ("auto", "cpu", "cuda", "cuda:1", "mps"):  # every allowed form passes the schema
        assert parse_params({**smoke(), "device": device}).device == device
    assert DEVICE_FORMS == ("auto", "cpu", "cuda", "cuda:N", "mps")


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from _leaves(value, dotted)
        else:
            yield dotted


def test_every_params_range_or_choice_error_names_its_full_dotted_key():
    """Each leaf of the smoke profile, set to values out of every range and choice, fails (if it fails) with
    one line that starts with the full dotted key of a setting in the same section, never a bare field name."""
    base = smoke()
    leaves = list(_leaves(base))
    sections = {leaf.rsplit(".", 1)[0] for leaf in leaves if "." in leaf}
    failures = []
    for leaf in leaves:
        section = leaf.rsplit(".", 1)[0] if "." in leaf else ""
        for bad in (-1, 0, -0.5, 10**9, 0.999, "nope", None, True):
            params = copy.deepcopy(base)
            *parents, last = leaf.split(".")
            node = params
            for part in parents:
                node = node[part]
            node[last] = bad
            try:
                parse_params(params)
            except ParamsError as err:
                message = str(err)
                named = re.sub(r"\[\d+\]", "", message.split(":", 1)[0])  # list items: their list's key
                in_section = not section or named.startswith(section + ".")
                if "\n" in message or not in_section or (named not in leaves and named not in sections):
                    failures.append(f"{leaf}={bad!r}: {message}")
    assert not failures, "\n".join(failures[:10])


def test_a_size_beyond_the_image_folder_names_the_data_key(project):
    image_tree(project / "tree")
    write_params(project, imagefolder_params(project / "tree", train_size=100))
    line = error_line(["dataset", "preview"])
    assert "data.train_size: must lie in 1..6 (the images this source holds), got 100" in line
    assert "lower data.train_size or set it to null" in line


# --- data -------------------------------------------------------------------------------------------------


def test_a_corrupt_image_in_an_image_folder_names_the_file_to_remove(project):
    image_tree(project / "tree")
    bad = project / "tree" / "train" / "dog" / "1.jpg"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated mid-header, as an interrupted copy leaves it
    write_params(project, imagefolder_params(project / "tree"))
    line = error_line(["dataset", "preview"])
    assert f"{bad}: cannot decode this image" in line and "remove or replace it" in line
    bad.unlink()  # the fix the line names
    result = runner.invoke(app, ["dataset", "preview"])
    assert result.exit_code == 0 and "5 images" in result.output


# --- advtui attack ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["data/models", "data/metrics/E1/standard.json"])
def test_attack_on_a_folder_or_a_metrics_file_says_to_pass_a_classifier(project, target):
    write_json(project / "data/metrics/E1/standard.json", {"clean_acc": 0.9, "n": 100})  # a valid metrics file
    (project / "data/models").mkdir(parents=True)
    line = error_line(["attack", target])
    assert f"{target}: is a" in line and "not a classifier's weights; pass its .safetensors file" in line
    assert "data/models/standard.safetensors" in line
    assert "delete" not in line and "remove" not in line
    assert (project / "data/metrics/E1/standard.json").exists()


# --- advtui report and the app's Results screen -------------------------------------------------------------


def test_report_on_a_missing_data_dir_is_an_error(project):
    line = error_line(["report", "--data-dir", str(project / "nonexistent")])
    assert f"{project / 'nonexistent'}: no such folder" in line and "--data-dir <project>/data" in line


def test_report_on_a_data_dir_without_metrics_warns(project):
    (project / "data").mkdir()
    result = runner.invoke(app, ["report", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["E4"][0]["missing"] is True
    assert result.stderr.strip().splitlines() == [
        "warning: data/metrics: no metrics files yet, every row is 'not run'; run `dvc repro` to make them"]


def test_metrics_of_the_wrong_type_are_skipped_and_named(project):
    metrics = project / "data/metrics"
    write_json(metrics / "E4/D_R.json", [0.8, 0.5])
    write_json(metrics / "E5/SL-natural.json", {"clean_acc": "0.9", "n_test": 100})
    write_json(metrics / "E4/D_det.json", {"clean_acc": 0.75, "robust_acc_l2": 0.0, "n": 100})
    result = runner.invoke(app, ["report", "--json"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "warning: data/metrics/E4/D_R.json: holds a JSON list, not an object of metrics; the report skips it: "
        "rerun `dvc repro retrain@D_R` to rewrite it",
        "warning: data/metrics/E5/SL-natural.json: clean_acc is '0.9', not a number; the report skips it: "
        "rerun `dvc repro probe@SL-natural` to rewrite it",
    ]
    rows = {row["dataset"]: row for row in json.loads(result.stdout)["E4"]}
    assert rows["D_det"]["clean_acc"] == 0.75  # the good files still make their rows
    assert rows["D_R"]["missing"] is True and rows["D_R"]["invalid"] == {"E4/D_R.json": "holds a JSON list, not an object of metrics"}
    # the app's Results screen reads the same files: the row's mark names the file and why
    marks = {table.id: table.marks for table in load_tables(project)}
    assert marks["E4"]["D_R"].startswith("unusable data/metrics/E4/D_R.json (holds a JSON list")
    assert marks["E5"]["natural"].startswith("unusable data/metrics/E5/SL-natural.json (clean_acc is '0.9'")
