"""The report: experiment tables built from the stages' metrics files only (no torch, no models).

``collect`` reads ``data/metrics/<experiment>/<name>.json`` and returns one JSON-able object whose keys
are experiment ids, each a list of rows (the schema is documented in the README). ``markdown`` and
``rich_tables`` render it beside the papers' published figures, laid out by :mod:`advtui.report.layout` (as
the app's Results screen is); a row whose stage has not run yet is kept with ``missing: true`` so that every
reader can mark the gap.

A metrics file the report cannot use (not JSON, not an object, a string where a number belongs) is skipped,
never a crash: its row reads as not run and carries ``invalid`` (file -> problem), which
:func:`invalid_metrics` turns into one line per file naming the stage that rewrites it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rich.table import Table

from advtui.catalog import paths
from advtui.catalog.names import PARADIGMS
from advtui.catalog.stages import stage_of
from advtui.report.layout import report_tables, row_name
from advtui.report.usefulness import NATURAL, summarise

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


def metrics_file(experiment: str, name: str) -> str:
    """Where the metrics of run ``name`` of ``experiment`` are, relative to the metrics folder (``E4/D_R.json``)."""
    return f"{experiment}/{name}.json"


def paradigm_run(paradigm: str, dataset: str) -> str:
    """The name of an E5/E6 run: a paradigm's encoder pretrained on a training set (``MIM-D_R``)."""
    return f"{paradigm}-{dataset}"


class MetricsError(ValueError):
    """A metrics file the report cannot use; ``problem`` says what is wrong with it."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.problem = problem


#: Keys whose values the tables compute with or format as numbers, wherever they sit in a metrics file
#: (accuracies, counts, agreements, rates, mean changes, and the settings of each attack).
_NUMBER_KEYS = re.compile(r"clean_acc|robust_acc\w*|n|n_\w+|\w+_agreement|target_hit_rate|mean_\w+|eps|steps|step_size|restarts")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shape_problem(value: Any, where: str = "") -> str | None:
    """What makes ``value`` (a metrics object or a part of it) unusable by the tables, or None."""
    if isinstance(value, list):
        return next((p for i, item in enumerate(value) if (p := _shape_problem(item, f"{where}[{i}]"))), None)
    if not isinstance(value, dict):
        return None
    for key, item in value.items():
        dotted = f"{where}.{key}" if where else str(key)
        if _NUMBER_KEYS.fullmatch(str(key)) and item is not None and not _is_number(item):
            return f"{dotted} is {item!r}, not a number"
        if key == "attacks" and not (isinstance(item, dict) and all(
                isinstance(specs, list) and all(isinstance(s, dict) for s in specs) for specs in item.values())):
            return f"{dotted} is not a mapping of threat models to lists of attack settings"
        if key == "adversarial" and item is not None and not isinstance(item, dict):
            return f"{dotted} is {item!r}, not a mapping of training settings"
        problem = _shape_problem(item, dotted)
        if problem:
            return problem
    return None


def read_metrics(path: Path) -> dict[str, Any] | None:
    """The metrics object in ``path``, or None when there is no such file (its stage has not run).

    Raises :class:`MetricsError` when the file cannot be read, is not JSON, is not a JSON object, or holds a
    value of the wrong type where the tables read a number (or attack settings).
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise MetricsError(path, f"cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise MetricsError(path, f"is not valid JSON (line {err.lineno})") from None
    if not isinstance(data, dict):
        raise MetricsError(path, f"holds a JSON {type(data).__name__}, not an object of metrics")
    problem = _shape_problem(data)
    if problem:
        raise MetricsError(path, problem)
    return data


class _Metrics:
    """The metrics folder as :func:`collect` reads it: a file that cannot be used reads as absent, and its
    problem is kept (by file, relative to the folder) for the rows that read it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problems: dict[str, str] = {}

    def read(self, experiment: str, name: str) -> dict[str, Any] | None:
        relative = metrics_file(experiment, name)
        try:
            return read_metrics(self.folder / relative)
        except MetricsError as err:
            self.problems[relative] = err.problem
            return None


def _threat(attacks: dict, name: str) -> dict | None:
    specs = attacks.get(name) or []
    return specs[0] if specs else None


def e4_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """One E4 row per training set: results, attack settings, probe agreement, published figures."""
    rows = []
    for dataset, (pub_clean, pub_robust, pub_source) in E4_PUBLISHED.items():
        row: dict[str, Any] = {"dataset": dataset, "published_clean_acc": pub_clean, "published_robust_acc": pub_robust,
                               "published_source": pub_source}
        result = metrics.read("E4", dataset)
        built = metrics.read("construct", dataset) if dataset != NATURAL else result
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


def e1_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """One E1 row per source model: clean and robust accuracy on the natural test set."""
    rows = []
    for model in E1_MODELS:
        result = metrics.read("E1", model)
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


def _run(metrics: _Metrics, experiment: str, paradigm: str, dataset: str) -> dict[str, Any] | None:
    return metrics.read(experiment, paradigm_run(paradigm, dataset))


def e5_rows(metrics: _Metrics) -> list[dict[str, Any]]:
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


def e6_rows(metrics: _Metrics) -> list[dict[str, Any]]:
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
    """The whole report from the metrics under ``data_dir``; a row that read an unusable file has ``invalid``."""
    metrics = _Metrics(data_dir / "metrics")
    report = {"E1": e1_rows(metrics), "E4": e4_rows(metrics), "E5": e5_rows(metrics), "E6": e6_rows(metrics)}
    for experiment, rows in report.items():
        for row in rows:
            # an unusable file reads as absent, so it is among the files that leave its row not run; an E4
            # row also reads its set's construct metrics (the probe agreements)
            read = missing_metrics(experiment, row)
            if experiment == "E4" and row["dataset"] != NATURAL:
                read.append(metrics_file("construct", row["dataset"]))
            invalid = {f: metrics.problems[f] for f in read if f in metrics.problems}
            if invalid:
                row["invalid"] = invalid
    return report


def invalid_metrics(report: dict[str, list[dict[str, Any]]], data_dir: Path = Path("data")) -> list[str]:
    """One line per metrics file that ``report`` skipped: the file, what is wrong, and the stage that rewrites it."""
    lines: list[str] = []
    for rows in report.values():
        for row in rows:
            for relative, problem in row.get("invalid", {}).items():
                stage = stage_of(paths.METRICS / relative)
                fix = f"rerun `dvc repro {stage}` to rewrite it" if stage else "rerun the stage that wrote it"
                line = f"{data_dir / 'metrics' / relative}: {problem}; the report skips it: {fix}"
                if line not in lines:
                    lines.append(line)
    return lines


def missing_metrics(experiment: str, row: dict[str, Any]) -> list[str]:
    """The metrics files (relative to the metrics folder) whose absence leaves ``row`` of ``experiment`` not run,
    or partly not run: the app names the stages that write them."""
    missing = row.get("missing")
    if isinstance(missing, list):  # E5 and Table 2b rows list the paradigms not run on their set
        names = [paradigm_run(p, row["dataset"]) for p in missing]
    elif missing is not True:
        names = []
    elif row.get("table") == "2a":  # Table 2a's rows are SL runs
        names = [paradigm_run("SL", row["dataset"])]
    else:
        names = [row_name(row)]
    return [metrics_file(experiment, name) for name in names]


def rich_tables(report: dict[str, list[dict[str, Any]]]) -> list[Table]:
    """The report as rich tables (E1 sources, E4, E5 and E6, each beside the published figures)."""
    tables = []
    for laid in report_tables(report):
        table = Table(title=laid.spec.title, caption=laid.caption)
        for column in laid.columns:
            table.add_column(column.header, justify="left" if column.kind == "text" else "right")
        for row in laid.rows:
            table.add_row(*laid.cells(row))
        tables.append(table)
    return tables


def markdown(report: dict[str, list[dict[str, Any]]]) -> str:
    """The report as markdown: each table under its title, after its caption."""
    lines = ["# advtui report"]
    for laid in report_tables(report):
        lines += ["", f"## {laid.spec.title}", "", laid.caption, "",
                  "| " + " | ".join(c.header for c in laid.columns) + " |", "|" + "---|" * len(laid.columns)]
        lines += ["| " + " | ".join(laid.cells(row)) + " |" for row in laid.rows]
    return "\n".join(lines) + "\n"
