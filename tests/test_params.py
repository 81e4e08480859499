"""params.yaml: every profile validates; bad values fail with one line naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advtui.catalog.names import PROFILES
from advtui.catalog.params import load_params, parse_params, profile_path, use_profile
from advtui.schema import ParamsError


def smoke() -> dict:
    return yaml.safe_load(profile_path("smoke").read_text())


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_is_valid_and_names_itself(name):
    params = load_params(profile_path(name))
    assert params.profile == name


def test_smoke_profile_matches_design_prototype():
    params = load_params(profile_path("smoke"))
    assert params.data.source == "synthetic"
    # DESIGN 7: robust model trained clearly above the planted pattern's norm.
    assert params.sources.robust_l2.adversarial.eps > params.data.synthetic.nonrobust_norm


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["sources"]["train"].update(lrr=0.1), r"sources\.train\.lrr: unknown key; did you mean 'lr'\?"),
        (lambda p: p["sources"]["train"].update(epochs="ten"), r"sources\.train\.epochs: expected an integer, got 'ten'"),
        (lambda p: p["sources"]["train"].update(epochs=0), r"sources\.train\.epochs: must be >= 1"),
        (lambda p: p["attack"]["l2"].update(eps=-0.5), r"attack\.l2\.eps: must be a finite number >= 0"),
        (lambda p: p["attack"]["linf"].update(steps=0), r"attack\.linf\.steps: must be >= 1"),
        (lambda p: p["sources"]["robust_l2"]["adversarial"].update(norm="l3"), r"norm: must be one of 'l2', 'linf'"),
        (lambda p: p.update(profile="huge"), r"profile: unknown profile 'huge'; use one of smoke, cifar-mini, cpu, paper"),
        (lambda p: p["data"].update(source="imagefolder", root=None), r"data\.root: source 'imagefolder' needs root"),
        (lambda p: p.update(data=[1, 2]), r"data: expected a mapping"),
        # `channels_last: on` unquoted: YAML's boolean, so the error says to quote it
        (lambda p: p["attack"]["speed"].update(channels_last=True), r"attack\.speed\.channels_last: .*got True; quote it"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(tmp_path, edit, message):
    data = smoke()
    edit(data)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParamsError, match=message) as err:
        load_params(path)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(str(path))


def test_missing_and_unparsable_files(tmp_path):
    with pytest.raises(ParamsError, match="advtui profile use smoke"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ParamsError, match=r"not valid YAML \(line \d+\)"):
        load_params(bad)


def test_floats_written_as_ints_or_exponents_are_accepted():
    data = smoke()
    data["sources"]["train"]["lr"] = 1
    data["sources"]["train"]["weight_decay"] = "5e-4"
    params = parse_params(data)
    assert params.sources.train.lr == 1.0 and params.sources.train.weight_decay == 5e-4


def test_use_profile_switches_params_yaml(tmp_path):
    target = tmp_path / "params.yaml"
    use_profile("paper", target)
    assert load_params(target).profile == "paper"
    assert "Li et al." in target.read_text()  # the paper profile keeps its source comments
    use_profile("smoke", target)
    assert load_params(target).profile == "smoke"
    with pytest.raises(ParamsError, match="unknown profile"):
        use_profile("gpu", target)
    assert load_params(target).profile == "smoke"  # a failed switch leaves the file as it was


def _has_key(tree: object, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_holds_every_params_key_a_stage_reads(name):
    # DVC refuses a stage whose params key is missing from params.yaml ("Parameters ... are missing"), so a
    # profile without one stops `dvc repro` after `advtui profile use`, although load_params fills in defaults.
    stages = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]
    keys = {k for stage in stages.values() for k in stage.get("do", stage).get("params", []) if "${" not in k}
    profile = yaml.safe_load(profile_path(name).read_text())
    assert keys and not sorted(k for k in keys if not _has_key(profile, k))
