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

from advtui.report.usefulness import PARADIGMS, summarise

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


LI_SOURCE = "Li et al. 2023"
#: Li et al. Table 1 (CIFAR-10): relative usefulness RU per paradigm, cross-paradigm CRU, and the SL
#: usefulness Ilyas et al. reported, for the robust (D_R) and non-robust (D_NR) sets.
E5_PUBLISHED: dict[str, dict[str, Any]] = {
    "natural": {"feature": "natural", "RU": {}, "CRU": None, "ilyas": None},
    "D_R": {"feature": "robust", "RU": {"MIM": 0.896, "CL": 0.791, "DM": 0.831, "SL": 0.880}, "CRU": 0.791,
            "ilyas": 0.854},
    "D_NR": {"feature": "non-robust", "RU": {"MIM": 0.307, "CL": 0.433, "DM": 0.512, "SL": 0.914}, "CRU": 0.307,
             "ilyas": 0.823},
}
#: Li et al. Table 2a: SL trained on the robust sets of an L2- and an Linf-robust classifier, robust
#: accuracy under PGD-1000 and AutoAttack at L2 0.5 and Linf 4/255.
E6A_PUBLISHED: dict[str, dict[str, Any]] = {
    "D_R": {"source": "L2-robust classifier", "pgd_l2": 0.152, "autoattack_l2": 0.034, "pgd_linf": 0.075,
            "autoattack_linf": 0.001},
    "D_R_linf": {"source": "Linf-robust classifier", "pgd_l2": 0.139, "autoattack_l2": 0.044, "pgd_linf": 0.179,
                 "autoattack_linf": 0.004},
}
#: Li et al. Table 2b: AutoAttack (Linf 4/255) robustness per paradigm, its minimum (cross-paradigm CR),
#: and a last column whose header is lost in our copy of the paper; its Linf-robust-SL entry equals Table
#: 2a's SL PGD-1000 figure (0.179), so we read it as SL under Linf PGD-1000.
E6B_PUBLISHED: dict[str, dict[str, Any]] = {
    "natural": {"source": "natural", "R": {"MIM": 0.008, "CL": 0.012, "DM": 0.047, "SL": 0.000}, "CR": 0.000,
                "sl_pgd_linf": 0.002},
    "D_R_linf": {"source": "robust w/ SL model", "R": {"MIM": 0.027, "CL": 0.007, "DM": 0.043, "SL": 0.004},
                 "CR": 0.004, "sl_pgd_linf": 0.179},
    "D_R_CL": {"source": "robust w/ CL model", "R": {"MIM": 0.008, "CL": 0.002, "DM": 0.041, "SL": 0.014},
               "CR": 0.002, "sl_pgd_linf": 0.109},
}
_THREATS = ("pgd_l2", "autoattack_l2", "pgd_linf", "autoattack_linf")


def _run(metrics: Path, experiment: str, paradigm: str, dataset: str) -> dict[str, Any] | None:
    return _read(metrics / experiment / f"{paradigm}-{dataset}.json")


def e5_rows(metrics: Path) -> list[dict[str, Any]]:
    """One E5 row per training set (natural, D_R, D_NR): U, RU, CU, CRU beside Li Table 1."""
    results = {p: {d: _run(metrics, "E5", p, d) for d in E5_PUBLISHED} for p in PARADIGMS}
    usefulness = {p: {d: (r or {}).get("clean_acc") for d, r in by_set.items()} for p, by_set in results.items()}
    rows = []
    for dataset, pub in E5_PUBLISHED.items():
        summary = summarise(usefulness, dataset)
        rows.append({
            "dataset": dataset, "feature": pub["feature"],
            "missing": [p for p in PARADIGMS if results[p][dataset] is None],
            "U": summary["absolute"], "RU": summary["relative"], "CU": summary["cross"], "CRU": summary["cross_relative"],
            "n_test": next((r["n_test"] for r in (results[p][dataset] for p in PARADIGMS) if r), None),
            "published_RU": pub["RU"], "published_CRU": pub["CRU"], "published_ilyas": pub["ilyas"],
            "published_source": f"{LI_SOURCE}, Table 1 (CIFAR-10)" if pub["RU"] else "",
        })
    return rows


def _robust(result: dict[str, Any] | None, threat: str) -> float | None:
    return None if result is None else result.get(f"robust_acc_{threat}")


def e6_rows(metrics: Path) -> list[dict[str, Any]]:
    """E6 rows: Table 2a (SL on robust sets, PGD vs AutoAttack) then 2b (AutoAttack per paradigm)."""
    rows: list[dict[str, Any]] = []
    for dataset, pub in E6A_PUBLISHED.items():
        result = _run(metrics, "E6", "SL", dataset)
        row: dict[str, Any] = {"table": "2a", "dataset": dataset, "source": pub["source"], "missing": result is None,
                               "published": {t: pub[t] for t in _THREATS},
                               "published_source": f"{LI_SOURCE}, Table 2a (CIFAR-10)"}
        if result is not None:
            row.update({t: _robust(result, t) for t in _THREATS})
            row.update(clean_acc=result.get("clean_acc"), n_test=result.get("n"), attacks=result.get("attacks"))
        rows.append(row)
    results = {p: {d: _run(metrics, "E6", p, d) for d in E6B_PUBLISHED} for p in PARADIGMS}
    robustness = {p: {d: _robust(r, "autoattack_linf") for d, r in by_set.items()} for p, by_set in results.items()}
    for dataset, pub in E6B_PUBLISHED.items():
        summary = summarise(robustness, dataset)
        found = {p: results[p][dataset] for p in PARADIGMS if results[p][dataset] is not None}
        rows.append({
            "table": "2b", "dataset": dataset, "source": pub["source"],
            "missing": [p for p in PARADIGMS if p not in found],
            "clean_acc": {p: (results[p][dataset] or {}).get("clean_acc") for p in PARADIGMS},
            "R": summary["absolute"], "RR": summary["relative"], "CR": summary["cross"], "CRR": summary["cross_relative"],
            "sl_pgd_linf": _robust(results["SL"][dataset], "pgd_linf"),
            "autoattack_version": {p: r.get("autoattack_version") for p, r in found.items()},
            "n_test": {p: r.get("n") for p, r in found.items()},
            "published_R": pub["R"], "published_CR": pub["CR"], "published_sl_pgd_linf": pub["sl_pgd_linf"],
            "published_source": f"{LI_SOURCE}, Table 2b (CIFAR-10, AutoAttack Linf 4/255)",
        })
    return rows


def collect(data_dir: Path = Path("data")) -> dict[str, list[dict[str, Any]]]:
    """The whole report from the metrics under ``data_dir``."""
    metrics = data_dir / "metrics"
    return {"E1": e1_rows(metrics), "E4": e4_rows(metrics), "E5": e5_rows(metrics), "E6": e6_rows(metrics)}


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


def ratio(value: Any) -> str:
    """A ratio or fraction with three decimals (Li et al.'s tables), or '—' when missing."""
    return "—" if value is None else f"{value:.3f}"


def _beside(ours: Any, paper: Any) -> str:
    """Our value with the paper's in brackets (when there is one)."""
    return ratio(ours) if paper is None else f"{ratio(ours)} ({paper:.3f})"


E5_COLUMNS = ("set", *PARADIGMS, "CRU", "Ilyas")
E5_LEGEND = ("ours (paper: Li et al. Table 1, CIFAR-10); cells: relative usefulness RU = U(set)/U(natural) of a "
             "linear probe on each paradigm's encoder, natural row: U itself (probe accuracy); CRU = min over "
             "paradigms; Ilyas: the SL usefulness Ilyas et al. reported; — = stage not run")
E6A_COLUMNS = ("SL trained on", "L2 PGD", "L2 AA", "Linf PGD", "Linf AA")
E6B_COLUMNS = ("set", *PARADIGMS, "CR", "SL PGD")
E6_LEGEND = ("ours (paper: Li et al. Table 2, CIFAR-10): robust accuracy of encoder + linear probe on natural "
             "test images; AA = AutoAttack, 'rand' (EOT) for randomised encoders; CR = min over paradigms; "
             "SL PGD: SL under Linf PGD; — = stage not run")


def _e5_cells(row: dict[str, Any]) -> list[str]:
    if row["dataset"] == "natural":
        cells = [ratio(row["U"][p]) for p in PARADIGMS] + [ratio(row["CU"]), "—"]
    else:
        cells = [_beside(row["RU"][p], row["published_RU"].get(p)) for p in PARADIGMS]
        cells += [_beside(row["CRU"], row["published_CRU"]), ratio(row["published_ilyas"])]
    label = "natural (U)" if row["dataset"] == "natural" else f"{row['dataset']} ({row['feature']})"
    return [label, *cells]


def _e6a_cells(row: dict[str, Any]) -> list[str]:
    if row["missing"]:
        return [f"{row['dataset']} ({row['source']})", "not run", "—", "—", "—"]
    return [f"{row['dataset']} ({row['source']})", *(_beside(row.get(t), row["published"][t]) for t in _THREATS)]


def _e6b_cells(row: dict[str, Any]) -> list[str]:
    cells = [_beside(row["R"][p], row["published_R"][p]) for p in PARADIGMS]
    cells += [_beside(row["CR"], row["published_CR"]), _beside(row["sl_pgd_linf"], row["published_sl_pgd_linf"])]
    label = row["dataset"] if row["source"] == row["dataset"] else f"{row['dataset']} ({row['source']})"
    return [label, *cells]


def _e6_settings(rows: list[dict[str, Any]]) -> str:
    for row in rows:
        if row["table"] == "2a" and row.get("attacks"):
            l2, linf = row["attacks"]["pgd_l2"][0], row["attacks"]["pgd_linf"][0]
            return (f"L2 eps {l2['eps']:g} (PGD-{l2['steps']}), Linf eps {linf['eps'] * 255:.3g}/255 "
                    f"(PGD-{linf['steps']}); {row.get('n_test')} test images for SL")
    return "attack settings: shown once a Table 2a stage (attack_sl@SL-D_R, SL-D_R_linf) has run"


def _paradigm_tables(report: dict[str, list[dict[str, Any]]]) -> list[Table]:
    e5 = Table(title="E5 cross-paradigm relative usefulness, ours (paper)", caption=E5_LEGEND)
    for col in E5_COLUMNS:
        e5.add_column(col, justify="left" if col == "set" else "right")
    for row in report["E5"]:
        e5.add_row(*_e5_cells(row))
    e6a = Table(title="E6 (2a) SL on robust sets: PGD vs AutoAttack, ours (paper)",
                caption=f"{_e6_settings(report['E6'])}. {E6_LEGEND}")
    for col in E6A_COLUMNS:
        e6a.add_column(col, justify="left" if col == E6A_COLUMNS[0] else "right")
    e6b = Table(title="E6 (2b) AutoAttack Linf robustness per paradigm, ours (paper)")
    for col in E6B_COLUMNS:
        e6b.add_column(col, justify="left" if col == "set" else "right")
    for row in report["E6"]:
        if row["table"] == "2a":
            e6a.add_row(*_e6a_cells(row))
        else:
            e6b.add_row(*_e6b_cells(row))
    return [e5, e6a, e6b]


def _markdown_table(columns: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *("| " + " | ".join(r) + " |" for r in rows)]


def rich_tables(report: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """The report as rich tables (E1 sources, E4, E5 and E6, each beside the published figures)."""
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
    return [e1, e4, *_paradigm_tables(report)]


def markdown(report: dict[str, list[dict[str, Any]]]) -> str:
    """The E4 table (and E1), then E5 and E6, as markdown."""
    lines = ["# advtui report", "", "## E4: train on constructed sets, test on natural data", "",
             f"{_e4_settings(report['E4'])}. {E4_LEGEND}.", "",
             "| " + " | ".join(E4_COLUMNS) + " |", "|" + "---|" * len(E4_COLUMNS)]
    lines += ["| " + " | ".join(_e4_cells(row)) + " |" for row in report["E4"]]
    lines += ["", "## E1: source models", "", "| model | clean % | robust L2 % | robust Linf % |", "|---|---|---|---|"]
    for row in report["E1"]:
        cells = ["not run"] * 3 if row["missing"] else [pct(row["clean_acc"]), pct(row["robust_acc"]), pct(row["robust_acc_linf"])]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    lines += ["", "## E5: cross-paradigm relative usefulness (Li et al. Table 1)", "", f"{E5_LEGEND}.", ""]
    lines += _markdown_table(E5_COLUMNS, [_e5_cells(row) for row in report["E5"]])
    lines += ["", "## E6: robustness of robust features (Li et al. Table 2)", "",
              f"{_e6_settings(report['E6'])}. {E6_LEGEND}.", "", "(a) SL on robust sets, PGD vs AutoAttack", ""]
    lines += _markdown_table(E6A_COLUMNS, [_e6a_cells(r) for r in report["E6"] if r["table"] == "2a"])
    lines += ["", "(b) AutoAttack Linf robustness per paradigm", ""]
    lines += _markdown_table(E6B_COLUMNS, [_e6b_cells(r) for r in report["E6"] if r["table"] == "2b"])
    return "\n".join(lines) + "\n"
