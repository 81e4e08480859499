"""`dvc exp show --json` as rows to compare: which params each run changed and the metrics it got.

Parsing is separate from running DVC (slow: seconds) so that it is testable on a fixed payload; the
Experiments screen runs :func:`run_exp_show` in a thread worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advtui.appcore.resultsdata import ExperimentTable
from advtui.report.layout import Column

HINT = ("No experiments yet. Run one with a changed value: n here, or `dvc exp run -S construct.relabel.steps=200` "
        "in a shell (u queues one, w runs the queue: `dvc queue start`); each run appears here beside the workspace.")
#: Metric leaves shown by default (all numeric metrics with "all columns").
HEADLINE = ("clean_acc", "robust_acc_l2", "robust_acc_linf", "target_hit_rate", "nonrobust_agreement", "robust_agreement")


@dataclass
class ExpRun:
    """One row of `dvc exp show`: the workspace, a commit, or an experiment based on a commit."""

    name: str
    rev: str
    state: str  # workspace, commit, success, running, queued, failed
    baseline: str | None
    timestamp: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    error: str | None = None


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: obj}


def _metric_name(path: str) -> str:
    name = path.removeprefix("data/metrics/")
    return name.rsplit(".", 1)[0] if name.endswith(".json") else name


def _files(section: dict[str, Any] | None, rename) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, result in (section or {}).items():
        data = (result or {}).get("data")
        if isinstance(data, dict):
            for key, value in _flatten(data).items():
                out[f"{rename(path)}:{key}" if rename(path) else key] = value
    return out


def _run(state: dict[str, Any], kind: str, baseline: str | None) -> ExpRun:
    data = state.get("data") or {}
    error = state.get("error")
    rev = str(state.get("rev") or "")
    name = state.get("name") or (rev if rev == "workspace" else rev[:7])
    return ExpRun(
        name=str(name), rev=rev, state=kind, baseline=baseline,
        timestamp=str(data.get("timestamp") or "")[5:16].replace("T", " "),  # MM-DD HH:MM
        params=_files(data.get("params"), lambda p: "" if p == "params.yaml" else p),
        metrics=_files(data.get("metrics"), _metric_name),
        error=(error or {}).get("msg") if isinstance(error, dict) else None,
    )


def parse_exp_show(payload: list[dict[str, Any]]) -> list[ExpRun]:
    """The runs of a `dvc exp show --json` payload: each baseline (workspace, commits) then its experiments."""
    if not isinstance(payload, list):
        raise ValueError("dvc exp show --json: expected a list of revisions; upgrade DVC to 3.x")
    runs: list[ExpRun] = []
    for entry in payload:
        base = _run(entry, "workspace" if entry.get("rev") == "workspace" else "commit", None)
        runs.append(base)
        for group in entry.get("experiments") or []:
            state = ((group.get("executor") or {}).get("state")) or "success"
            for rev in group.get("revs") or []:
                runs.append(_run(rev, state, base.name))
    return runs


#: The states of an experiment the queue has yet to finish (a failed one shows its error in the legend).
QUEUE_STATES = ("queued", "running")


def queue_summary(runs: list[ExpRun]) -> str | None:
    """How many experiments wait in the queue and how many run (``2 queued, 1 running``); None when none does."""
    counts = [(state, sum(r.state == state for r in runs if r.baseline is not None)) for state in QUEUE_STATES]
    shown = [f"{n} {state}" for state, n in counts if n]
    return ", ".join(shown) if shown else None


def _differs(values: list[Any]) -> bool:
    seen = [json.dumps(v, sort_keys=True, default=str) for v in values]
    return len(set(seen)) > 1


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(key: str) -> str:
    """A column header: the last two parts of a dotted params key (construct.relabel.steps: relabel.steps)."""
    return ".".join(key.split(".")[-2:])


def _delta(value: Any, base: Any, kind: str) -> str | None:
    """``value - base`` signed, in the column's units (percentage points for accuracies); None unless both are
    numbers."""
    if not (_is_number(value) and _is_number(base)):
        return None
    diff = (value - base) * (100 if kind == "pct" else 1)
    return f"{diff:+.1f}" if kind == "pct" else f"{diff:+.4g}"


def comparison(runs: list[ExpRun], all_columns: bool = False, baseline: str | None = None) -> ExperimentTable:
    """The runs as one sortable table: the params that differ between runs (all with ``all_columns``) and
    the headline metrics (all numeric metrics with ``all_columns``). With ``baseline`` (a run's rev), every
    other run's numbers carry their difference to that run's in brackets (``72.5 (+3.1)``)."""
    params: list[str] = []
    metrics: list[str] = []
    for run in runs:
        params += [k for k in run.params if k not in params]
        metrics += [k for k, v in run.metrics.items() if k not in metrics and _is_number(v)]
    if not all_columns:
        read = [r for r in runs if r.params]  # a failed or queued run without params changes nothing
        params = [k for k in params if _differs([r.params.get(k) for r in read])]
        metrics = [k for k in metrics if k.rsplit(":", 1)[-1] in HEADLINE]
    names: dict[str, int] = {}
    rows = []
    base = next((r for r in runs if r.rev == baseline), None)
    for run in runs:
        label = run.name if run.baseline is None else f"└ {run.name}"
        names[label] = names.get(label, 0) + 1
        if names[label] > 1:
            label = f"{label} ({run.rev[:7]})"
        row: dict[str, Any] = {"name": label, "state": run.state, "created": run.timestamp}
        row.update({f"p:{k}": run.params.get(k) for k in params})
        row.update({f"m:{k}": run.metrics.get(k) for k in metrics})
        row["rev"] = run.rev
        rows.append(row)
    base_row = next((r for r in rows if base is not None and r["rev"] == base.rev), None)
    if base_row is not None:
        base_row["name"] += " ◆"

    def beside(key: str, kind: str) -> Callable[[dict[str, Any]], str | None] | None:
        # The bracket after a value (the report's place for the paper's figure) holds the difference to the baseline.
        if base_row is None:
            return None
        return lambda row: None if row is base_row else _delta(row.get(key), base_row.get(key), kind)

    kinds = {f"p:{k}": "text" if any(isinstance(r.params.get(k), str) for r in runs) else "num" for k in params}
    kinds.update({f"m:{k}": "pct" if k.rsplit(":", 1)[-1] in HEADLINE else "num" for k in metrics})
    columns = [Column("name", "experiment", "text"), Column("state", "state", "text"), Column("created", "created", "text")]
    columns += [Column(f"p:{k}", _short(k), kinds[f"p:{k}"], paper=beside(f"p:{k}", kinds[f"p:{k}"])) for k in params]
    columns += [Column(f"m:{k}", _short(k).replace("_acc", "").replace(":", " "), kinds[f"m:{k}"],
                       paper=beside(f"m:{k}", kinds[f"m:{k}"])) for k in metrics]
    n_exps = sum(1 for r in runs if r.baseline is not None)
    legend = (f"{n_exps} experiment(s). Params columns: values that differ between runs; metrics: accuracies (%) "
              "and agreements. a: all params and metrics.")
    if base is not None:
        legend += f" ◆ baseline {base.name}: (±x) = difference to it (accuracies in points)."
    legend += "".join(f" {run.name}: {run.error}." for run in runs if run.error)
    return ExperimentTable(id="exp", title="dvc exp show", legend=legend, columns=columns, rows=rows, marks={})


def run_exp_show(root: Path, timeout: float = 300.0, cancelled: Callable[[], bool] = lambda: False) -> list[ExpRun]:
    """Run `dvc exp show --json` in ``root`` and parse it; a failure raises RuntimeError with DVC's last line.

    ``cancelled`` is polled while DVC runs; when it turns true DVC is killed, so quitting the app never
    waits for it (worker threads are joined at interpreter exit).
    """
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=root, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
    except OSError as err:
        raise RuntimeError(f"dvc exp show could not start ({err}); check that DVC is installed") from None
    deadline = time.monotonic() + timeout
    while True:
        if cancelled() or time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise RuntimeError("dvc exp show was stopped (cancelled or over its time limit)") from None
        try:
            out, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"dvc exp show failed: {last}")
    try:
        return parse_exp_show(json.loads(out or "[]"))
    except json.JSONDecodeError as error:
        raise RuntimeError(f"dvc exp show --json printed no JSON ({error}); check the DVC version") from None
