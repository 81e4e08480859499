"""E5/E6 stage functions end to end on tiny params (no DVC): pretrain, probe, attack, the robust CL source
and the set constructed from it, and the report rows built from their metrics."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from advtui.experiments import paradigm_runs
from advtui.catalog.params import load_params, profile_path
from advtui.catalog.paths import encoder_path, metrics_path, model_path, probe_path
from advtui.catalog.params import paradigm_run
from advtui.paradigms.base import get_paradigm, load_encoder
from advtui.pipeline.runners import run_stage
from advtui.runtime import seed_everything
from advtui.report.tables import collect, markdown


def _tiny_params(tmp_path):
    data = yaml.safe_load(profile_path("smoke").read_text())
    data["data"].update(train_size=200, test_size=60)
    data["construct"].update(size=100, chunk=100, robust={"steps": 5, "step_size": 1.0, "eps": None})
    for run in data["paradigms"].values():
        run["train"].update(epochs=1, warmup_epochs=0, batch_size=50)
    data["paradigms"]["robust_cl"]["config"]["adversarial"]["steps"] = 1
    data["probe"]["train"].update(epochs=3, batch_size=50)
    data["e6"].update(test_size=20, rand_test_size=2, batch_size=20)
    for threat in ("l2", "linf"):
        data["e6"][threat]["pgd"]["steps"] = 3
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_params(path)


@pytest.mark.slow
def test_e5_e6_stages_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = _tiny_params(tmp_path)

    pre = run_stage("pretrain", params, "SL-natural")
    assert encoder_path("SL-natural").exists() and pre["n_train"] == 100
    assert (tmp_path / "data/live/E5/SL-natural/plots/metrics/train/loss.tsv").exists()
    # the throughput is logged with the curves, not in the metrics file (reruns must write the same bytes)
    rate = (tmp_path / "data/live/E5/SL-natural/plots/metrics/epoch/images_per_s.tsv").read_text().splitlines()[-1]
    assert float(rate.split("\t")[-1]) > 0 and "images_per_s" not in pre
    # the untrained floor probes the encoder at exactly the weights its pretraining started from
    seed_everything(params.seed)
    start = get_paradigm("SL").build(paradigm_run(params.paradigms, "SL").config, num_classes=10, image_size=32)
    initial, _, _ = load_encoder(encoder_path("SL-natural"), initial_seed=params.seed)
    trained, _, _ = load_encoder(encoder_path("SL-natural"))
    same = [torch.equal(a, b.cpu()) for a, b in zip(start.state_dict().values(), initial.state_dict().values())]
    assert all(same) and not all(torch.equal(a, b) for a, b in zip(initial.state_dict().values(),
                                                                    trained.state_dict().values()))
    u = run_stage("probe", params, "SL-natural")
    assert probe_path("SL-natural").exists()
    assert u["cached_features"] is True and u["randomised"] is False
    assert u["untrained_clean_acc"] != u["clean_acc"]
    r = run_stage("attack", params, "SL-natural")
    assert r["autoattack_version"] == "standard" and r["n"] == 20
    # each threat's PGD and AutoAttack columns, and their per point worst case (test_evaluation checks its value)
    threats = ("pgd_l2", "autoattack_l2", "pgd_linf", "autoattack_linf", "worst_l2", "worst_linf")
    assert {f"robust_acc_{t}" for t in threats} <= set(r)

    # Table 2b's CL source: adversarial SimCLR, stored beside the E1 sources, inverted into D_R_CL
    run_stage("pretrain", params, "robust_cl")
    assert model_path("robust_cl").exists()
    built = run_stage("construct", params, "D_R_CL")
    assert built["n"] == 100 and built["method"] == "invert"

    # DDPM's encoder is randomised: its probe trains on probe.noise_draws draws of its features, its AutoAttack is 'rand'
    seen = []
    real = paradigm_runs.evaluate_classifier

    def spy(model, test, threats, **kwargs):
        seen.append(threats)
        return real(model, test, threats, **kwargs)

    monkeypatch.setattr(paradigm_runs, "evaluate_classifier", spy)
    run_stage("pretrain", params, "DM-D_R_CL")
    dm = run_stage("probe", params, "DM-D_R_CL")
    assert dm["randomised"] is True and dm["cached_features"] is True and dm["noise_draws"] == params.probe.noise_draws
    assert "untrained_clean_acc" not in dm  # the floor is measured once, on natural images
    dm_attack = run_stage("attack", params, "DM-D_R_CL")
    assert set(seen[0]) == {"pgd_linf", "autoattack_linf"} and seen[0]["autoattack_linf"][0].version == "rand"
    assert dm_attack["autoattack_version"] == "rand" and dm_attack["n"] == 2

    report = collect(tmp_path / "data")
    natural = next(row for row in report["E5"] if row["dataset"] == "natural")
    assert natural["U"]["SL"] == u["clean_acc"] and natural["missing"] == ["MIM", "CL", "DM"]
    assert natural["CU"] is None  # not every paradigm ran: no cross-paradigm value
    floor = next(row for row in report["E5"] if row["dataset"] == "untrained")
    assert floor["U"]["SL"] == u["untrained_clean_acc"] and floor["missing"] == ["MIM", "CL", "DM"]
    assert "| untrained (U) |" in markdown(report)
    robust_cl = next(row for row in report["E6"] if row["table"] == "2b" and row["dataset"] == "D_R_CL")
    assert robust_cl["R"]["DM"] == dm_attack["robust_acc_autoattack_linf"]
    assert robust_cl["autoattack_version"] == {"DM": "rand"} and robust_cl["published_R"]["DM"] == 0.041
    assert json.loads(metrics_path("E6", "DM-D_R_CL").read_text())["paradigm"] == "DM"
    assert "| D_R_CL (robust w/ CL model) |" in markdown(report)
