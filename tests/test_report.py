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
    assert list(rows) == ["natural", "natural_nopattern", "D_R", "D_NR", "D_rand", "D_det", "zero_robust", "neg_robust"]
    det = rows["D_det"]
    assert det["missing"] is False and det["clean_acc"] == 0.75 and det["robust_acc"] == 0.0
    assert det["nonrobust_agreement"] == 0.97 and det["published_clean_acc"] == 44.0
    assert det["attack_l2"]["eps"] == 0.25 and det["attack_linf"]["norm"] == "linf"
    assert rows["D_R"]["missing"] is True and "clean_acc" not in rows["D_R"]
    assert rows["D_R"]["published_robust_acc"] == 48.0
    assert {row["model"]: row["missing"] for row in report["E1"]} == {"standard": False, "robust_l2": True, "robust_linf": True}
    text = markdown(report)
    assert "| D_det | 75.0 | 0.0 | 0.0 | 44/0 | 2.0 | — | 97.0 |" in text and "not run" in text


def test_optional_columns_show_only_what_some_row_measured(tmp_path):
    _fake_metrics(tmp_path)
    text = markdown(collect(tmp_path))
    # D_det's target hit rate is measured, no set's mean L2 change is: hit % shows, ΔL2 does not
    assert "| set | clean | L2 | Linf | paper | shape | colour | pattern | hit % |" in text


def test_li_table_1_natural_row_shows_u_and_the_others_ru_beside_the_paper(tmp_path):
    """E5 as Li et al. print it: U on the natural row, RU = U(set)/U(natural) elsewhere, minima over paradigms."""
    usefulness = {"MIM": (0.5, 0.45), "CL": (0.8, 0.4), "DM": (0.4, 0.4), "SL": (0.9, 0.81)}
    for paradigm, (natural, robust) in usefulness.items():
        write_json(tmp_path / f"metrics/E5/{paradigm}-natural.json", {"clean_acc": natural, "n_test": 1000})
        write_json(tmp_path / f"metrics/E5/{paradigm}-D_R.json", {"clean_acc": robust, "n_test": 1000})
    text = markdown(collect(tmp_path))
    assert "| set | MIM | CL | DM | SL | CRU | Ilyas |" in text
    assert "| natural (U) | 0.500 | 0.800 | 0.400 | 0.900 | 0.400 | — |" in text  # CU on the natural row
    assert "| D_R (robust) | 0.900 (0.896) | 0.500 (0.791) | 1.000 (0.831) | 0.900 (0.880) | 0.500 (0.791) | 0.854 |" in text
    assert "| D_NR (non-robust) | — (0.307) | — (0.433) | — (0.512) | — (0.914) | — (0.307) | 0.823 |" in text


def test_cli_json_and_write(tmp_path, monkeypatch):
    _fake_metrics(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--json", "--write"])
    assert result.exit_code == 0, result.output
    parsed = json.loads(result.output)
    assert set(parsed) == {"E1", "E4", "curves", "E5", "E6", "E7", "E8", "E13", "E14", "E16", "E18", "E9", "E10", "E11",
                           "E12", "E15", "E17"}
    assert (tmp_path / "data/report/report.md").exists()
    assert json.loads((tmp_path / "data/report/report.json").read_text()) == parsed


def test_report_module_imports_no_torch():
    import subprocess

    code = "import sys, advtui.report.tables; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_e6b_caption_says_which_autoattack_version_ran(tmp_path):
    """Li A.4 names 'rand' for MIM and DM; the table says what ours ran, per paradigm."""
    from advtui.report.layout import E6B, lay_out

    def table_2b() -> list[dict]:
        return [row for row in collect(tmp_path)["E6"] if row["table"] == "2b"]

    assert "shown once a Table 2b attack stage has run" in lay_out(E6B, table_2b()).caption
    for paradigm, version in (("MIM", "rand"), ("CL", "standard"), ("DM", "rand")):
        write_json(tmp_path / f"metrics/E6/{paradigm}-natural.json",
                   {"clean_acc": 0.9, "robust_acc_autoattack_linf": 0.1, "n": 10, "autoattack_version": version})
    caption = lay_out(E6B, table_2b()).caption
    assert caption.startswith("AutoAttack ran as MIM 'rand', CL 'standard', DM 'rand' (Li A.4: 'rand' for MIM and DM).")


def test_e6b_caption_says_when_autoattack_ran_only_in_part(tmp_path):
    """A smoke run that skips FAB-T and Square must not read as AutoAttack whole."""
    from advtui.report.layout import E6B, lay_out

    aa = {"kind": "autoattack", "norm": "linf", "eps": 4 / 255, "version": "standard", "parts": ["apgd-ce", "apgd-t"]}
    write_json(tmp_path / "metrics/E6/CL-natural.json",
               {"clean_acc": 0.9, "robust_acc_autoattack_linf": 0.1, "n": 10, "autoattack_version": "standard",
                "attacks": {"autoattack_linf": [aa]}})
    rows = [row for row in collect(tmp_path)["E6"] if row["table"] == "2b"]
    assert "only apgd-ce+apgd-t of it (e6 autoattack_skip)" in lay_out(E6B, rows).caption


def test_e6a_caption_survives_a_row_without_both_pgd_threats(tmp_path):
    """An SL row written by another version (no pgd_linf settings) must not crash the report or the app."""
    from advtui.report.layout import E6A, lay_out

    spec = {"kind": "pgd", "norm": "l2", "eps": 0.5, "steps": 20, "step_size": 0.1, "restarts": 1, "name": "pgd20-l2-eps0.5"}
    write_json(tmp_path / "metrics/E6/SL-D_R.json",
               {"clean_acc": 0.8, "robust_acc_pgd_l2": 0.2, "n": 50, "attacks": {"pgd_l2": [spec]}})
    rows = [row for row in collect(tmp_path)["E6"] if row["table"] == "2a"]
    assert "shown once a Table 2a stage" in lay_out(E6A, rows).caption


def test_cli_format_prints_or_writes_every_table_as_csv_markdown_or_latex(tmp_path, monkeypatch):
    """`advtui report --format` gives a reader the tables in the format their paper or notebook takes."""
    import csv

    _fake_metrics(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    printed = CliRunner().invoke(app, ["report", "--format", "csv"])
    assert printed.exit_code == 0, printed.output
    blocks = printed.output.split("\n\n")
    assert blocks[0].startswith("# E1 source models")
    e4 = next(b for b in blocks if b.startswith("# E4 "))
    rows = list(csv.reader(e4.splitlines()[1:]))
    assert rows[0][:4] == ["set", "clean", "L2", "Linf"] and all(len(r) == len(rows[0]) for r in rows)
    written = CliRunner().invoke(app, ["report", "--format", "tex", "--out", "tables"])
    assert written.exit_code == 0, written.output
    tex = (tmp_path / "tables/E5.tex").read_text()
    assert "\\label{tab:E5}" in tex and "\\begin{tabular}{lrrrrrr}" in tex
    assert "D\\_R (robust) & --- (0.896) & --- (0.791)" in tex  # specials escaped; not run (paper) kept
    bad = CliRunner().invoke(app, ["report", "--format", "xlsx"])
    assert bad.exit_code == 2 and "use one of csv, md, tex" in bad.output


def test_latex_and_markdown_escape_what_would_break_them():
    from advtui.report.export import Grid, render

    grid = Grid(id="t 1", title="A_b", caption="50% ±2", headers=["set", "a|b"], align=["l", "r"],
                rows=[["D_R & co", "1.0 ±0.5 —"]])
    assert "D\\_R \\& co & 1.0 \\ensuremath{\\pm}0.5 --- \\\\" in render(grid, "tex")
    assert "\\caption{A\\_b. 50\\% \\ensuremath{\\pm}2}" in render(grid, "tex")
    assert "| set | a\\|b |" in render(grid, "md")
    assert render(grid, "csv") == "set,a|b\nD_R & co,1.0 ±0.5 —\n"
