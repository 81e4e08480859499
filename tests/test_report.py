"""The report reads metrics files only, marks stages that have not run, and keeps its JSON schema."""

from __future__ import annotations

import json
import sys

from typer.testing import CliRunner

from advtui.cli.main import app
from advtui.files import write_json
from advtui.report.tables import collect, markdown


def _fake_metrics(data):
    spec = {"kind": "pgd", "norm": "l2", "eps": 0.25, "steps": 20, "step_size": 0.05, "restarts": 1, "name": "pgd20-l2-eps0.25"}
    write_json(data / "metrics/E4/D_det.json", {
        "dataset": "D_det", "clean_acc": 0.75, "robust_acc_l2": 0.0, "robust_acc_linf": 0.0, "n": 1000, "n_train": 1000,
        "attacks": {"l2": [spec], "linf": [{**spec, "norm": "linf", "eps": 4 / 255}]},
    })
    write_json(data / "metrics/construct/D_det.json", {"robust_agreement": 0.02, "nonrobust_agreement": 0.97, "target_hit_rate": 0.9})
    write_json(data / "metrics/E1/standard.json", {"clean_acc": 1.0, "robust_acc_l2": 0.01, "robust_acc_linf": 0.0, "n": 1000,
                                                   "adversarial": {"norm": "l2", "eps": 0.0}})


def test_rows_join_results_probes_and_published_figures(tmp_path):
    _fake_metrics(tmp_path)
    report = collect(tmp_path)
    rows = {row["dataset"]: row for row in report["E4"]}
    assert list(rows) == ["natural", "D_R", "D_NR", "D_rand", "D_det", "zero_robust", "neg_robust"]
    det = rows["D_det"]
    assert det["missing"] is False and det["clean_acc"] == 0.75 and det["robust_acc"] == 0.0
    assert det["nonrobust_agreement"] == 0.97 and det["published_clean_acc"] == 44.0
    assert det["attack_l2"]["eps"] == 0.25 and det["attack_linf"]["norm"] == "linf"
    assert rows["D_R"]["missing"] is True and "clean_acc" not in rows["D_R"]
    assert rows["D_R"]["published_robust_acc"] == 48.0
    assert {row["model"]: row["missing"] for row in report["E1"]} == {"standard": False, "robust_l2": True, "robust_linf": True}
    text = markdown(report)
    assert "| D_det | 75.0 | 0.0 | 0.0 | 44/0 | 2.0 | — | 97.0 |" in text and "not run" in text


def test_cli_json_and_write(tmp_path, monkeypatch):
    _fake_metrics(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--json", "--write"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output)
    assert set(parsed) == {"E1", "E4", "E5", "E6"}
    assert (tmp_path / "data/report/report.md").exists()
    assert json.loads((tmp_path / "data/report/report.json").read_text()) == parsed


def test_report_module_imports_no_torch():
    import subprocess

    code = "import sys, advtui.report.tables; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
