"""The catalogue is the one home of the pipeline's names: dvc.yaml is generated from it, the stage runners
accept exactly its names, it imports no torch, and every stage depends on all the code it runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from advtui.catalog import stages as catalog
from advtui.catalog.codedeps import code_files, import_closure, module_file
from advtui.catalog.params import load_params
from advtui.catalog.paths import PARAMS_FILE
from advtui.appcore.dvcstate import load_stages

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).parent / "dvc"


def test_committed_dvc_yaml_is_the_generated_one():
    assert (ROOT / "dvc.yaml").read_text() == catalog.render_dvc_yaml(), "run `advtui dvc-yaml` and commit dvc.yaml"


def test_dvc_yaml_stage_by_stage_matches_the_catalogue():
    expanded = {s.name: s for s in load_stages(ROOT)}
    names = [n for fam in catalog.FAMILIES for n in fam.stage_names()]
    assert list(expanded) == names
    params = load_params(ROOT / PARAMS_FILE)
    for fam in catalog.FAMILIES:
        code = fam.code_deps()
        for key in fam.keys() or [None]:
            stage = expanded[f"{fam.name}@{key}" if key is not None else fam.name]
            expect = lambda templates: tuple(catalog._expand(t.replace(catalog.ITEM, catalog.KEY), key, fam)
                                             for t in templates)
            assert stage.deps == (*code, *expect(fam.deps))
            assert stage.outs == expect(fam.outs) + expect(fam.metrics)
            assert stage.params == expect(fam.params)
            for dotted in stage.params:  # every params key exists in the schema
                value = params
                for part in dotted.split("."):
                    value = getattr(value, part)
            for out in stage.outs:
                assert catalog.stage_of(out) == stage.name


def test_every_family_belongs_to_a_catalogued_experiment():
    assert {fam.experiment for fam in catalog.FAMILIES} == set(catalog.EXPERIMENTS)
    assert catalog.group_of("pretrain") == catalog.group_of("attack_sl") == catalog.EXPERIMENTS["E5/E6"]
    assert catalog.group_of("not_a_family") == "not_a_family"


def test_every_stage_command_has_a_runner():
    runners = {fam.runner for fam in catalog.FAMILIES if fam.runner}
    for runner in runners:  # each names a runner module with run(params, name), found without importing it
        source = module_file(catalog.runner_module(runner))
        assert source is not None and "\ndef run(params: Params, name: str) -> dict:" in source.read_text()
    for fam in catalog.FAMILIES:
        names = fam.keys() or [fam.single]
        assert fam.runner is None or set(names) <= set(catalog.runner_names(fam.runner))


def test_a_missing_upstream_artifact_names_the_stage_that_makes_it():
    from advtui.catalog.paths import dataset_path, model_path

    assert catalog.stage_of(model_path("robust_cl")) == "source_cl"  # not "source@robust_cl"
    assert catalog.stage_of(model_path("robust_l2")) == "source@robust_l2"
    assert catalog.stage_of(dataset_path("D_det")) == "construct@D_det"
    assert catalog.stage_of("data/nowhere.json") is None


def test_catalogue_and_app_import_no_torch():
    code = ("import sys, advtui.catalog.stages, advtui.catalog.params, advtui.catalog.paths; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'textual'))))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_import_closure_follows_lazy_imports_and_packages(tmp_path):
    pkg = tmp_path / "advtui"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from advtui.sub import helper\n")
    (pkg / "sub" / "helper.py").write_text("")
    (pkg / "entry.py").write_text("def run():\n    from advtui.sub import leaf\n    from . import rel\n")
    (pkg / "sub" / "leaf.py").write_text("import os\n")
    (pkg / "rel.py").write_text("")
    (pkg / "unused.py").write_text("")
    assert import_closure(["advtui.entry"], root=tmp_path) == [
        "advtui", "advtui.entry", "advtui.rel", "advtui.sub", "advtui.sub.helper", "advtui.sub.leaf"]


def test_every_stage_runs_the_code_it_lists():
    # The paradigms load through their registry: each paradigm's module must be a dep of every stage
    # that pretrains, else editing MAE would not rerun MIM pretraining.
    for name in ("pretrain", "probe", "attack", "source_cl"):
        deps = catalog.family(name).code_deps()
        for module in ("mae", "simclr", "ddpm", "supervised", "trainer"):
            assert f"advtui/paradigms/{module}.py" in deps, (name, module)
    assert "advtui/attacks/pgd.py" not in code_files(catalog.family("report").code)


def test_each_stage_depends_on_its_own_runner_only():
    # `advtui stage` imports only the runner it runs: an edit to one experiment's code reruns that experiment
    # (and what reads its outputs, through DVC's data deps), not every stage.
    deps = {fam.name: set(fam.code_deps()) for fam in catalog.FAMILIES}
    for fam in catalog.FAMILIES:
        if fam.runner:
            own = f"advtui/pipeline/runners/{fam.runner}.py"
            assert {name for name, files in deps.items() if own in files} == {
                f.name for f in catalog.FAMILIES if f.runner == fam.runner}
    assert {name for name, files in deps.items() if "advtui/experiments/gallery.py" in files} == {"gallery"}
    # E1's source models train and evaluate classifiers: no self-supervised paradigm, no construction
    for other in ("paradigms/simclr.py", "paradigms/mae.py", "paradigms/ddpm.py", "experiments/construct.py"):
        assert f"advtui/{other}" not in deps["source"]
    assert "advtui/attacks/autoattack.py" not in deps["gallery"]


def _one_stage_per_family(text: str) -> str:
    """dvc.yaml with each foreach cut to its first item (and CL-natural, the adversarial SimCLR pretraining):
    the same deps per stage, at a tenth of the stages (DVC checks ~50 code deps per stage)."""
    doc = yaml.safe_load(text)
    for name, spec in doc["stages"].items():
        items = spec.get("foreach")
        if isinstance(items, dict):
            keep = [k for k in items if k == "CL-natural"] or list(items)[:1]
            spec["foreach"] = {k: items[k] for k in keep}
        elif isinstance(items, list):
            spec["foreach"] = items[:1]
    return yaml.safe_dump(doc, sort_keys=False)


def _dummy_outputs(project: Path) -> None:
    """Stand-ins for every out, and for the data deps whose stages were cut away."""
    for stage in load_stages(project):
        for out in (*stage.outs, *(d for d in stage.deps if d.startswith("data/"))):
            if (project / out).exists():
                continue
            path = project / out
            if Path(out).suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{stage.name}\n")
            else:  # a DVCLive folder
                path.mkdir(parents=True, exist_ok=True)
                (path / "metrics.json").write_text("{}\n")


def _changed_stages(project: Path, env: dict) -> set[str]:
    out = subprocess.run([str(DVC), "status", "--json"], cwd=project, env=env, capture_output=True, text=True,
                         check=True).stdout
    return set(json.loads(out))


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed beside this python")
def test_editing_code_marks_exactly_the_stages_that_run_it_as_changed(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(ROOT / "advtui", project / "advtui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    (project / "dvc.yaml").write_text(_one_stage_per_family((ROOT / "dvc.yaml").read_text()))
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=project, env=env, check=True)
    _dummy_outputs(project)
    commit = [str(DVC), "commit", "-f", "-q"]
    subprocess.run(commit, cwd=project, env=env, check=True, capture_output=True)
    assert _changed_stages(project, env) == set()
    stages = {s.name for s in load_stages(project)}
    assert len(stages) == len(catalog.FAMILIES)

    pgd = project / "advtui" / "attacks" / "pgd.py"
    pgd.write_text(pgd.read_text() + "\n# edited\n")
    changed = _changed_stages(project, env)
    # every stage that attacks, constructs or trains adversarially (E1's robust sources, adversarial SimCLR)
    attacking = {n for n in stages if n.split("@")[0] in ("source", "construct", "retrain", "curve", "attack", "attack_sl")}
    attacking |= {"source_cl", "pretrain@CL-natural"}
    assert attacking <= changed
    assert not {"report", "figures"} & changed  # they read metrics files only

    subprocess.run(commit, cwd=project, env=env, check=True, capture_output=True)
    synthetic = project / "advtui" / "data" / "synthetic.py"
    synthetic.write_text(synthetic.read_text() + "\n# edited\n")
    # all but those reading metrics only, and E13's Gaussian model, which reads no images
    assert _changed_stages(project, env) == stages - {"report", "figures"} - {"gaussian"}

    subprocess.run(commit, cwd=project, env=env, check=True, capture_output=True)
    probe = project / "advtui" / "experiments" / "linear_probe.py"
    probe.write_text(probe.read_text() + "\n# edited\n")
    # linear probing is code of the paradigm stages only (experiments/paradigm_runs imports it, and E7/E8 attack
    # the probes; E11 attacks E8's SL backbones' probes, E12 reads E8's backbone through its probe); E1-E4 and the
    # gallery do not run it
    changed = _changed_stages(project, env)
    paradigm_families = ("pretrain", "source_cl", "probe", "attack", "attack_sl", "objectives", "backbones", "transfer",
                         "slight_transfer", "learnability")
    assert changed and all(n.split("@")[0] in paradigm_families for n in changed)
