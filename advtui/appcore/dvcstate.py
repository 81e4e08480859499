"""The pipeline as the app shows it: every stage of ``dvc.yaml`` (foreach/matrix expanded), its state and
the params that differ from the committed ones.

States: ``up to date`` (in ``dvc.lock`` and not reported by ``dvc status``), ``changed`` (reported),
``never run`` (no lock entry), from the run records ``running`` and ``failed`` / ``stopped``, and from the
stages' progress files ``running`` (a stage run outside the app, e.g. by hand) and ``died`` (its file says
running but its process is gone: killed, crashed or interrupted).
``dvc status`` takes a second or two, so callers run ``dvc_status`` in a worker thread.
No textual import: this is plain data, testable alone.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from advtui.catalog.paths import progress_path
from advtui.catalog.stages import EXPERIMENTS, group_of
from advtui.appcore.live import read_progress
from advtui.appcore.runs import StageHistory, dvc_executable
from advtui.pipeline import progress as stage_progress
from advtui.yamltext import load_yaml

UP_TO_DATE, CHANGED, NEVER_RUN, RUNNING, FAILED, STOPPED, DIED, UNKNOWN = (
    "up to date", "changed", "never run", "running", "failed", "stopped", "died", "…")
_VAR = re.compile(r"\$\{\s*([^}]+?)\s*\}")


@dataclass(frozen=True)
class Stage:
    """One (expanded) stage of dvc.yaml."""

    name: str
    family: str
    cmd: str
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()  # every out, its metrics and plots included
    params: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()  # the metrics files among ``outs`` (the Results screen's rows come from them)

    @property
    def group(self) -> str:
        """The experiment group it belongs to (the catalogue's, or its family's name for a family it lacks)."""
        return group_of(self.family)

    @property
    def progress_file(self) -> str:
        """Its live progress file."""
        return str(progress_path(self.name))

    @property
    def live_dir(self) -> str | None:
        """Its DVCLive folder: the out under ``data/live/``, if it has one."""
        return next((out for out in self.outs if out.startswith("data/live/")), None)


def _lookup(scope: dict[str, Any], expr: str) -> Any:
    value: Any = scope
    for part in expr.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"dvc.yaml: cannot resolve ${{{expr}}}; define it in vars, foreach or matrix")
        value = value[part]
    return value


def _interpolate(obj: Any, scope: dict[str, Any]) -> Any:
    if isinstance(obj, str):
        whole = _VAR.fullmatch(obj)
        if whole:
            return _lookup(scope, whole.group(1))
        return _VAR.sub(lambda m: str(_lookup(scope, m.group(1))), obj)
    if isinstance(obj, list):
        return [_interpolate(v, scope) for v in obj]
    if isinstance(obj, dict):
        return {_interpolate(k, scope): _interpolate(v, scope) for k, v in obj.items()}
    return obj


def _paths(entries: Any) -> tuple[str, ...]:
    """Paths (or params keys) of a deps/outs/params list, whose items are strings or one-key mappings."""
    found: list[str] = []
    for entry in entries or []:
        if isinstance(entry, dict):
            for key, value in entry.items():
                # params: {file.yaml: [keys]} names keys of another file; deps/outs: {path: {options}}
                found.extend(str(v) for v in value) if isinstance(value, list) else found.append(str(key))
        else:
            found.append(str(entry))
    return tuple(found)


def _stage(name: str, family: str, body: dict[str, Any]) -> Stage:
    cmd = body.get("cmd", "")
    cmd = " && ".join(cmd) if isinstance(cmd, list) else str(cmd)
    metrics = _paths(body.get("metrics"))
    outs = _paths(body.get("outs")) + metrics + _paths(body.get("plots"))
    return Stage(name, family, cmd, _paths(body.get("deps")), outs, _paths(body.get("params")), metrics)


def _expand(family: str, spec: dict[str, Any], scope: dict[str, Any]) -> list[Stage]:
    if "foreach" in spec:
        items = spec["foreach"]
        pairs = items.items() if isinstance(items, dict) else ((str(v), v) for v in items)
        return [_stage(f"{family}@{key}", family, _interpolate(spec["do"], {**scope, "key": key, "item": item}))
                for key, item in pairs]
    if "matrix" in spec:
        matrix = spec["matrix"]
        body = {k: v for k, v in spec.items() if k != "matrix"}
        stages = []
        for combo in itertools.product(*(matrix[k] for k in matrix)):
            item = dict(zip(matrix, combo))
            suffix = "-".join(str(v) for v in combo)
            stages.append(_stage(f"{family}@{suffix}", family, _interpolate(body, {**scope, "item": item})))
        return stages
    return [_stage(family, family, _interpolate(spec, scope))]


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise ValueError(f"{path}: not valid YAML{at}; fix the file (dvc cannot read it either)") from None


def load_stages(root: Path) -> list[Stage]:
    """Every stage of ``root/dvc.yaml`` in file order, vars/foreach/matrix expanded (as ``dvc stage list``).

    The app's one reader of dvc.yaml: the Pipeline and Monitor screens and the Results screen's "which stage
    writes this metrics file" all expand it here. FileNotFoundError without dvc.yaml; ValueError (one line
    naming the file) when it, or a params file it reads, is not valid YAML or names an undefined variable.
    """
    path = root / "dvc.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no dvc.yaml here; start advtui in the project folder (or pass its path)")
    doc = _read_yaml(path)
    scope: dict[str, Any] = {}
    for entry in doc.get("vars", []) or []:
        if isinstance(entry, dict):
            scope.update(entry)
        elif (root / str(entry)).exists():  # a params file named in vars
            scope.update(_read_yaml(root / str(entry)))
    params_file = root / "params.yaml"
    if params_file.exists():
        scope = {**_read_yaml(params_file), **scope}
    stages: list[Stage] = []
    for family, spec in (doc.get("stages") or {}).items():
        stages.extend(_expand(family, spec or {}, scope))
    return stages


def grouped(stages: list[Stage]) -> list[tuple[str, list[Stage]]]:
    """Stages by experiment group: the catalogue's groups in their order, then unknown families as they appear."""
    groups: dict[str, list[Stage]] = {label: [] for label in EXPERIMENTS.values()}
    for stage in stages:
        groups.setdefault(stage.group, []).append(stage)
    return [(label, members) for label, members in groups.items() if members]


def locked_stages(root: Path) -> set[str]:
    """Stages with an entry in ``dvc.lock`` (they have run at least once)."""
    lock = root / "dvc.lock"
    if not lock.exists():
        return set()
    doc = load_yaml(lock.read_text()) or {}
    return set((doc.get("stages") or {}).keys())


def dvc_status(root: Path, timeout: float = 60.0) -> dict[str, Any]:
    """``dvc status --json``: the stages whose deps, params or outs changed. Blocks ~1-2 s: use a worker.

    Raises RuntimeError with DVC's message when it fails (e.g. not a DVC repository).
    """
    proc = subprocess.run([dvc_executable(), "status", "--json"], cwd=root, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["dvc status failed"])[-1]
        raise RuntimeError(f"dvc status: {last}")
    out = proc.stdout.strip()
    return json.loads(out) if out.startswith("{") else {}


def stage_state(name: str, status: dict[str, Any] | None, locked: set[str], history: dict[str, StageHistory],
                live: Collection[str] = (), progress: str | None = None) -> str:
    """One stage's state from DVC's view, the run records (``live``: the stages the app's run is running now)
    and ``progress``, the liveness of its progress file (``advtui.pipeline.progress.liveness``: running, died,
    done, or None); ``status`` None means not known yet."""
    if name in live or progress == stage_progress.RUNNING:
        return RUNNING
    last = history.get(name)
    if last is not None and last.state in ("failed", "stopped", "lost"):
        # A failed stage stays failed until a later run finishes it (which DVC then locks).
        return STOPPED if last.state == "stopped" else FAILED
    if progress == stage_progress.DIED:
        return DIED
    if name not in locked:
        return NEVER_RUN
    if status is None:
        return UNKNOWN
    return CHANGED if name in status else UP_TO_DATE


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        flat: dict[str, Any] = {}
        for key, value in obj.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: obj}


@dataclass(frozen=True)
class ParamChange:
    """One params.yaml value that differs from the committed file."""

    key: str
    old: Any
    new: Any


def params_diff(root: Path) -> list[ParamChange]:
    """Values of ``params.yaml`` that differ from ``git show HEAD:params.yaml`` (nothing outside git)."""
    current = root / "params.yaml"
    if not current.exists():
        return []
    proc = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=root, capture_output=True, text=True, timeout=10)
    if proc.returncode != 0:
        return []
    old = _flatten(load_yaml(proc.stdout) or {})
    new = _flatten(load_yaml(current.read_text()) or {})
    return [ParamChange(key, old.get(key), new.get(key)) for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def stage_param_changes(stage: Stage, changes: list[ParamChange]) -> list[ParamChange]:
    """The changes among the params keys ``stage`` reads (a key covers everything under it)."""
    return [c for c in changes if any(c.key == k or c.key.startswith(f"{k}.") for k in stage.params)]


def progress_records(root: Path, stages: list[Stage]) -> dict[str, dict[str, Any]]:
    """The progress record of every stage that has one (see ``live.read_progress``), by stage name."""
    records = {stage.name: read_progress(root / stage.progress_file) for stage in stages}
    return {name: record for name, record in records.items() if record is not None}


def progress_liveness(record: dict[str, Any] | None) -> str | None:
    """:func:`stage_state`'s ``progress`` argument for a stage's record (None: no record), judged now."""
    return stage_progress.liveness(record) if record is not None else None


@dataclass
class PipelineState:
    """A snapshot of everything the pipeline screen shows, gathered off the UI thread."""

    stages: list[Stage] = field(default_factory=list)
    status: dict[str, Any] | None = None
    status_error: str | None = None
    locked: set[str] = field(default_factory=set)
    changes: list[ParamChange] = field(default_factory=list)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage name -> its progress record
