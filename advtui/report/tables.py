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
from advtui.catalog.names import CURVE_MODELS, PARADIGMS, RECIPES, SOURCE_MODELS, run_name
from advtui.catalog.paths import METRICS, metrics_path
from advtui.catalog.published import E4_PUBLISHED, E5_PUBLISHED, E6A_PUBLISHED, E6B_PUBLISHED, LI_SOURCE
from advtui.catalog.stages import stage_of
from advtui.report.distill import distill_rows
from advtui.report.springer import springer_rows
from advtui.report.export import laid_out_grid, to_markdown
from advtui.report.layout import CURVE_COLUMNS, curve_key, report_tables, row_name
from advtui.report.transfer import e7_rows, e8_rows
from advtui.report.usefulness import NATURAL, UNTRAINED, summarise



def metrics_file(experiment: str, name: str) -> str:
    """Where the metrics of run ``name`` of ``experiment`` are, relative to the metrics folder (``E4/D_R.json``)."""
    return metrics_path(experiment, name).relative_to(METRICS).as_posix()


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


#: Keys holding a measurement's runs (one per seed) and their 95% intervals (:mod:`advtui.stats`): mappings whose
#: values are numbers, null (one run: no interval) or lists of them, e.g. ``ci95.clean_acc = [lo, hi]``.
_SPREAD_KEYS = ("per_seed", "ci95")


def _numbers_only(value: Any) -> bool:
    """``value`` is a number, null, or a (nested) list of them."""
    if isinstance(value, list):
        return all(_numbers_only(item) for item in value)
    return value is None or _is_number(value)


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
        if key in _SPREAD_KEYS:
            if not (isinstance(item, dict) and all(_numbers_only(v) for v in item.values())):
                return f"{dotted} is not a mapping of measurements to numbers or lists of numbers"
            continue
        if key == "seeds" and not (isinstance(item, list) and all(isinstance(v, int) and _is_number(v) for v in item)):
            return f"{dotted} is {item!r}, not a list of seeds"
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


#: E4 row keys of the measurements made once per seed, and the metrics keys they come from.
_E4_MEASURED = {"clean_acc": "clean_acc", "robust_acc": "robust_acc_l2", "robust_acc_linf": "robust_acc_linf"}


def _spread(result: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """A row's ``seeds``, ``per_seed`` and ``ci95`` under its own keys (row key -> metrics key in ``keys``); {} for
    a metrics file of one run written before seeds were recorded."""
    if "seeds" not in result:
        return {}
    return {"seeds": result["seeds"],
            **{part: {k: (result.get(part) or {}).get(m) for k, m in keys.items()} for part in _SPREAD_KEYS}}


def e4_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """One E4 row per training set: results (mean and 95% interval over the seeds), attack settings, probe
    agreement, published figures; a set that does not apply to the data (``not_applicable``) says why."""
    rows = []
    for dataset, (pub_clean, pub_robust, pub_source) in E4_PUBLISHED.items():
        row: dict[str, Any] = {"dataset": dataset, "published_clean_acc": pub_clean, "published_robust_acc": pub_robust,
                               "published_source": pub_source}
        result = metrics.read("E4", dataset)
        built = metrics.read("construct", dataset) if dataset in RECIPES else result
        if result is None:
            row["missing"] = True
        elif result.get("not_applicable"):
            row.update(missing=False, not_applicable=result["not_applicable"])
        else:
            attacks = result.get("attacks", {})
            row.update(
                missing=False, clean_acc=result.get("clean_acc"), robust_acc=result.get("robust_acc_l2"),
                robust_acc_linf=result.get("robust_acc_linf"), attack_l2=_threat(attacks, "l2"),
                attack_linf=_threat(attacks, "linf"), n_train=result.get("n_train"), n_test=result.get("n"),
                **_spread(result, _E4_MEASURED),
            )
        if built is not None:
            for key in ("robust_agreement", "colour_agreement", "nonrobust_agreement"):
                if key in built:
                    row[key] = built[key]
            for key in ("target_hit_rate", "mean_l2_change", "mean_repr_error", "start_robust_agreement"):
                if key in built:
                    row[key] = built[key]
        rows.append(row)
    return rows


def e1_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """One E1 row per source model: clean and robust accuracy on the natural test set."""
    rows = []
    for model in SOURCE_MODELS:
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


def _at_eps(points: list[list[Any]], eps: float) -> Any:
    return next((acc for e, acc in points if abs(e - eps) < 1e-6), None)


def half_clean_eps(points: list[list[float]]) -> float | None:
    """The radius at which robust accuracy falls to half the clean accuracy (linear between measured radii),
    None if it stays above half over the whole sweep."""
    half = points[0][1] / 2
    for (e0, a0), (e1, a1) in zip(points, points[1:]):  # a curve never rises: the first pair to reach half
        if a1 <= half:
            return e1 if a0 == a1 else e0 + (e1 - e0) * (a0 - half) / (a0 - a1)
    return None


def curve_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """One row per curve run (E1 source models, then E4 training sets): the whole curve per norm (``l2``,
    ``linf``: [[eps, acc], ...]), its key radii, the half-clean radius and the planted pattern's flip radius
    (synthetic data); an E4 set's curve is the mean over its seeds, with ``seeds`` and ``ci95`` (clean and key
    radii: [lo, hi])."""
    rows = []
    for experiment, models in CURVE_MODELS.items():
        stored = metrics.read("curves", experiment) or {}
        for model in models:
            result = stored.get(model) if isinstance(stored, dict) else None
            row: dict[str, Any] = {"run": f"{experiment}-{model}", "missing": result is None}
            if result is not None and result.get("not_applicable"):
                row["not_applicable"] = result["not_applicable"]
            elif result is not None:
                row.update(clean_acc=result.get("clean_acc"), n_test=result.get("n"), steps=result.get("steps"),
                           pattern_flip=result.get("pattern_flip"))
                ci95 = result.get("ci95") or {}
                if "seeds" in result:  # an E4 set's curves: the mean over its seeds' classifiers
                    row.update(seeds=result["seeds"], ci95={"clean_acc": ci95.get("clean_acc")})
                for norm, radii in CURVE_COLUMNS.items():
                    points = row[norm] = result.get(norm) or []
                    row[f"half_clean_eps_{norm}"] = half_clean_eps(points) if points else None
                    for eps in radii:
                        row[curve_key(norm, eps)] = _at_eps(points, eps)
                        if "seeds" in result:
                            row["ci95"][curve_key(norm, eps)] = _at_eps(
                                [[e, bounds] for (e, _), bounds in zip(points, ci95.get(norm) or [])], eps)
            rows.append(row)
    return rows


_THREATS = ("pgd_l2", "autoattack_l2", "pgd_linf", "autoattack_linf")
#: Per-point worst case of PGD and AutoAttack under one norm (not in Li's tables, which report each alone).
_WORST = ("worst_l2", "worst_linf")


def _run(metrics: _Metrics, experiment: str, paradigm: str, dataset: str) -> dict[str, Any] | None:
    return metrics.read(experiment, run_name(paradigm, dataset))


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
        if dataset == NATURAL:  # the floor: a probe on each encoder at the weights its pretraining started from
            floor = {p: (results[p][dataset] or {}).get("untrained_clean_acc") for p in PARADIGMS}
            rows.append({"dataset": UNTRAINED, "feature": "encoder before pretraining, probed on natural",
                         "missing": [p for p in PARADIGMS if floor[p] is None], "U": floor,
                         "CU": min(floor.values()) if None not in floor.values() else None})
    return rows


def _robust(result: dict[str, Any] | None, threat: str) -> float | None:
    return None if result is None else result.get(f"robust_acc_{threat}")



def _aa_subset(result: dict[str, Any], threat: str) -> list[str]:
    """The AutoAttack attacks a run ran under ``threat`` when params skipped some (``e6.*.autoattack_skip``); [] when whole."""
    settings = (result.get("attacks") or {}).get(threat) or [{}]
    return list(settings[0].get("parts") or [])


def e6_rows(metrics: _Metrics) -> list[dict[str, Any]]:
    """E6 rows: Table 2a (SL on robust sets, PGD vs AutoAttack) then 2b (AutoAttack per paradigm)."""
    rows: list[dict[str, Any]] = []
    for dataset, pub in E6A_PUBLISHED.items():
        result = _run(metrics, "E6", "SL", dataset)
        row: dict[str, Any] = {"table": "2a", "dataset": dataset, "source": pub["source"], "missing": result is None,
                               "published": {t: pub[t] for t in _THREATS},
                               "published_source": f"{LI_SOURCE}, Table 2a (CIFAR-10)"}
        if result is not None:
            row.update({t: _robust(result, t) for t in (*_THREATS, *_WORST)})
            row.update(clean_acc=result.get("clean_acc"), n_test=result.get("n"), attacks=result.get("attacks"),
                       autoattack_subset=_aa_subset(result, "autoattack_l2"))
        rows.append(row)
    results = {p: {d: _run(metrics, "E6", p, d) for d in E6B_PUBLISHED} for p in PARADIGMS}
    robustness = {p: {d: _robust(r, "autoattack_linf") for d, r in by_set.items()} for p, by_set in results.items()}
    worst = {p: {d: _robust(r, "worst_linf") for d, r in by_set.items()} for p, by_set in results.items()}
    for dataset, pub in E6B_PUBLISHED.items():
        summary = summarise(robustness, dataset)
        found = {p: results[p][dataset] for p in PARADIGMS if results[p][dataset] is not None}
        rows.append({
            "table": "2b", "dataset": dataset, "source": pub["source"],
            "missing": [p for p in PARADIGMS if p not in found],
            "clean_acc": {p: (results[p][dataset] or {}).get("clean_acc") for p in PARADIGMS},
            "R": summary["absolute"], "RR": summary["relative"], "CR": summary["cross"], "CRR": summary["cross_relative"],
            "worst": {p: worst[p][dataset] for p in PARADIGMS}, "CR_worst": summarise(worst, dataset)["cross"],
            "sl_pgd_linf": _robust(results["SL"][dataset], "pgd_linf"),
            "autoattack_version": {p: r.get("autoattack_version") for p, r in found.items()},
            "autoattack_subset": {p: _aa_subset(r, "autoattack_linf") for p, r in found.items()},
            "n_test": {p: r.get("n") for p, r in found.items()},
            "published_R": pub["R"], "published_CR": pub["CR"], "published_sl_pgd_linf": pub["sl_pgd_linf"],
            "published_source": f"{LI_SOURCE}, Table 2b (CIFAR-10, AutoAttack Linf 4/255)",
        })
    return rows


def collect(data_dir: Path = Path("data")) -> dict[str, list[dict[str, Any]]]:
    """The whole report from the metrics under ``data_dir``; a row that read an unusable file has ``invalid``."""
    metrics = _Metrics(data_dir / "metrics")
    report = {"E1": e1_rows(metrics), "E4": e4_rows(metrics), "curves": curve_rows(metrics), "E5": e5_rows(metrics),
              "E6": e6_rows(metrics), "E7": e7_rows(metrics.read), "E8": e8_rows(metrics.read)}
    report.update(distill_rows(metrics.read))
    report.update(springer_rows(metrics.read))
    for experiment, rows in report.items():
        for row in rows:
            # an unusable file reads as absent, so it is among the files that leave its row not run; an E4
            # row also reads its set's construct metrics (the probe agreements)
            read = missing_metrics(experiment, row)
            if experiment == "E4" and row["dataset"] in RECIPES:
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
    if isinstance(missing, list) and experiment == "E7":  # E7 rows list the encoders not attacked yet
        names = list(missing)
    elif isinstance(missing, list):  # E5 and Table 2b rows list the paradigms not run on their set
        names = [run_name(p, row["dataset"]) for p in missing]
    elif missing is not True:
        names = []
    elif row.get("table") == "2a":  # Table 2a's rows are SL runs
        names = [run_name("SL", row["dataset"])]
    elif experiment == "curves":  # one file per experiment holds all its models' curves
        names = [row["run"].partition("-")[0]]
    elif experiment == "E8":  # one file holds the whole matrix
        names = ["matrix"]
    elif experiment == "E10":  # E10's rows come from E9's metrics file
        return [metrics_file("E9", row_name(row))]
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
    tables = [to_markdown(laid_out_grid(laid)).rstrip("\n") for laid in report_tables(report)]
    return "\n\n".join(["# advtui report", *tables]) + "\n"
