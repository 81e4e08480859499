"""The report: experiment tables built from the stages' metrics files only (no torch, no models).

``collect`` reads ``data/metrics/<experiment>/<name>.json`` and returns one JSON-able object whose keys
are experiment ids, each a list of rows (the schema is documented in the README). ``markdown`` and
``rich_tables`` render it beside the papers' published figures; a row whose stage has not run yet is
kept with ``missing: true`` so that every reader can mark the gap.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

#: E4 rows in order, with the published clean / L2-0.25-robust accuracies (%) they are compared with.
#: Ilyas et al.'s constructed-dataset release (D_R, D_NR, D_rand, D_det, CIFAR-10, ResNet-50);
#: Springer et al. Table 5 "Test" column (zero-/negative-robust, CIFAR-10, clean accuracy only).
E4_PUBLISHED: dict[str, tuple[float | None, float | None, str]] = {
    "natural": (None, None, ""),
    "D_R": (84.0, 48.0, "Ilyas et al. 2019 (release)"),
    "D_NR": (88.0, 0.0, "Ilyas et al. 2019 (release)"),
    "D_rand": (63.0, 0.0, "Ilyas et al. 2019 (release)"),
    "D_det": (44.0, 0.0, "Ilyas et al. 2019 (release)"),
    "zero_robust": (46.8, None, "Springer et al. 2021, Table 5"),
    "neg_robust": (21.9, None, "Springer et al. 2021, Table 5"),
}
E1_MODELS = ("standard", "robust_l2", "robust_linf")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _threat(attacks: dict, name: str) -> dict | None:
    specs = attacks.get(name) or []
    return specs[0] if specs else None


def e4_rows(metrics: Path) -> list[dict[str, Any]]:
    """One E4 row per training set: results, attack settings, probe agreement, published figures."""
    rows = []
    for dataset, (pub_clean, pub_robust, pub_source) in E4_PUBLISHED.items():
        row: dict[str, Any] = {"dataset": dataset, "published_clean_acc": pub_clean, "published_robust_acc": pub_robust,
                               "published_source": pub_source}
        result = _read(metrics / "E4" / f"{dataset}.json")
        built = _read(metrics / "construct" / f"{dataset}.json") if dataset != "natural" else result
        if result is None:
            row["missing"] = True
        else:
            attacks = result.get("attacks", {})
            row.update(
                missing=False, clean_acc=result.get("clean_acc"), robust_acc=result.get("robust_acc_l2"),
                robust_acc_linf=result.get("robust_acc_linf"), attack_l2=_threat(attacks, "l2"),
                attack_linf=_threat(attacks, "linf"), n_train=result.get("n_train"), n_test=result.get("n"),
            )
        if built is not None:
            for key in ("robust_agreement", "colour_agreement", "nonrobust_agreement"):
                if key in built:
                    row[key] = built[key]
            for key in ("target_hit_rate", "mean_l2_change", "mean_repr_error"):
                if key in built:
                    row[key] = built[key]
        rows.append(row)
    return rows


def e1_rows(metrics: Path) -> list[dict[str, Any]]:
    """One E1 row per source model: clean and robust accuracy on the natural test set."""
    rows = []
    for model in E1_MODELS:
        result = _read(metrics / "E1" / f"{model}.json")
        row: dict[str, Any] = {"model": model, "missing": result is None}
        if result is not None:
            row.update(
                adversarial=result.get("adversarial"), clean_acc=result.get("clean_acc"),
                robust_acc=result.get("robust_acc_l2"), robust_acc_linf=result.get("robust_acc_linf"),
                n_test=result.get("n"),
            )
        rows.append(row)
    return rows


def collect(data_dir: Path = Path("data")) -> dict[str, list[dict[str, Any]]]:
    """The whole report from the metrics under ``data_dir``."""
    metrics = data_dir / "metrics"
    return {"E1": e1_rows(metrics), "E4": e4_rows(metrics)}


def pct(value: Any) -> str:
    """A fraction as a percentage with one decimal, or '—' when missing."""
    return "—" if value is None else f"{100 * value:.1f}"


def _pub(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _e4_settings(rows: list[dict[str, Any]]) -> str:
    for row in rows:
        if row.get("attack_l2"):
            l2, linf = row["attack_l2"], row.get("attack_linf") or {}
            return (f"robust = L2 PGD-{l2['steps']} eps {l2['eps']:g} (step {l2['step_size']:g}); "
                    f"Linf = PGD-{linf.get('steps')} eps {linf.get('eps', 0) * 255:.3g}/255; "
                    f"{row.get('n_test')} test images")
    return "no E4 stage has run yet"


#: Short headers so the table fits an 80-column terminal; the caption and README spell them out.
E4_COLUMNS = ("set", "clean", "L2", "Linf", "paper", "shape", "colour", "pattern")
E4_LEGEND = ("clean / L2 / Linf: accuracy (%) on natural test data, clean and under PGD; paper: published "
             "clean/L2 robust; shape, colour, pattern: ground-truth probe agreement (%) with the set's labels")


def _e4_cells(row: dict[str, Any]) -> list[str]:
    if row.get("missing"):
        cells = ["not run", "—", "—"]
    else:
        cells = [pct(row.get("clean_acc")), pct(row.get("robust_acc")), pct(row.get("robust_acc_linf"))]
    paper = _pub(row["published_clean_acc"])
    if row["published_robust_acc"] is not None:
        paper += f"/{_pub(row['published_robust_acc'])}"
    return [row["dataset"], *cells, paper, pct(row.get("robust_agreement")), pct(row.get("colour_agreement")),
            pct(row.get("nonrobust_agreement"))]


def rich_tables(report: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """The report as rich tables (E1 sources, then E4 beside the published figures)."""
    e1 = Table(title="E1 source models (natural test set)")
    for col in ("model", "adversarial training", "clean %", "robust L2 %", "robust Linf %"):
        e1.add_column(col)
    for row in report["E1"]:
        adv = row.get("adversarial") or {}
        how = "none" if not adv or not adv.get("eps") else f"{adv['norm']} eps {adv['eps']:g}"
        if row["missing"]:
            e1.add_row(row["model"], "not run", "—", "—", "—")
        else:
            e1.add_row(row["model"], how, pct(row["clean_acc"]), pct(row["robust_acc"]), pct(row["robust_acc_linf"]))
    e4 = Table(title="E4 train on constructed sets, test on natural data",
               caption=f"{_e4_settings(report['E4'])}. {E4_LEGEND}")
    for col in E4_COLUMNS:
        e4.add_column(col, justify="left" if col == "set" else "right")
    for row in report["E4"]:
        e4.add_row(*_e4_cells(row))
    return [e1, e4]


def markdown(report: dict[str, list[dict[str, Any]]]) -> str:
    """The E4 table (and E1) as markdown."""
    lines = ["# advtui report", "", "## E4: train on constructed sets, test on natural data", "",
             f"{_e4_settings(report['E4'])}. {E4_LEGEND}.", "",
             "| " + " | ".join(E4_COLUMNS) + " |", "|" + "---|" * len(E4_COLUMNS)]
    lines += ["| " + " | ".join(_e4_cells(row)) + " |" for row in report["E4"]]
    lines += ["", "## E1: source models", "", "| model | clean % | robust L2 % | robust Linf % |", "|---|---|---|---|"]
    for row in report["E1"]:
        cells = ["not run"] * 3 if row["missing"] else [pct(row["clean_acc"]), pct(row["robust_acc"]), pct(row["robust_acc_linf"])]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
