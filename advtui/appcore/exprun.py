"""Starting and queueing DVC experiments (`dvc exp run -S key=value`), with the values checked first.

A value the stages would reject is named in one line before DVC starts (the params schema's own message, as
the CLI prints it), instead of in the first stage's log minutes later. Running now goes through
:func:`advtui.appcore.runs.start_run` (detached, re-attachable, followed by the Monitor like any run);
queueing only stashes the experiment (a second or two), and ``dvc queue start`` runs the queue.
No textual import.
"""

from __future__ import annotations

import copy
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from advtui.appcore import runs
from advtui.catalog.params import parse_params
from advtui.catalog.paths import PARAMS_FILE
from advtui.schema import ParamsError
from advtui.yamltext import load_yaml

#: The example the new-experiment dialog shows.
EXAMPLE = "construct.relabel.steps=200 seed=1"


def parse_sets(text: str) -> list[tuple[str, str]]:
    """``key=value`` pairs separated by spaces (quote a value with spaces), as ``dvc exp run -S`` takes them."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise ParamsError(f"-S {text}: {err}; close the quote") from None
    if not words:
        raise ParamsError(f"-S: no value to change; type key=value, e.g. {EXAMPLE}")
    pairs = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ParamsError(f"-S {word}: expected key=value, e.g. {EXAMPLE}")
        pairs.append((key, value))
    return pairs


def _set(mapping: dict[str, Any], key: str, value: Any) -> bool:
    """Put ``value`` at dotted ``key`` of ``mapping`` (making the sections on the way); whether the key was
    there already (DVC's ``-S`` changes only keys the params file has)."""
    node = mapping
    *sections, leaf = key.split(".")
    existed = True
    for part in sections:
        if not isinstance(node.get(part), dict):
            existed = False
            node[part] = {}
        node = node[part]
    existed = existed and leaf in node
    node[leaf] = value
    return existed


def _value(key: str, text: str) -> Any:
    """``text`` read as DVC reads a ``-S`` value (YAML: ``200`` a number, ``true`` a bool, ``abc`` a string)."""
    try:
        return load_yaml(text) if text else text
    except yaml.YAMLError:
        raise ParamsError(f"-S {key}={text}: not a YAML value; quote it ('{key}=\"{text}\"')") from None


def check_sets(root: Path, pairs: list[tuple[str, str]]) -> None:
    """Raise :class:`ParamsError` (one line naming the key and the fix) unless ``params.yaml`` with ``pairs``
    applied is valid for every stage and each key is one the file has. Values are read as YAML, as DVC does."""
    problem = runs.cannot_run(root)  # no project, or a params.yaml broken already
    if problem is not None:
        raise ParamsError(problem)
    changed = copy.deepcopy(load_yaml((root / PARAMS_FILE).read_text()))
    absent = [key for key, value in pairs if not _set(changed, key, _value(key, value))]
    try:
        parse_params(changed)
    except ParamsError as err:
        given = " ".join(f"{k}={v}" for k, v in pairs)
        raise ParamsError(f"-S {given}: {str(err).replace('fix the value in params.yaml', 'fix the -S value')}") from None
    if absent:
        raise ParamsError(f"-S {absent[0]}: not in params.yaml, so DVC cannot change it; add it to params.yaml first")


def exp_run_args(pairs: list[tuple[str, str]], queue: bool = False, name: str = "") -> list[str]:
    """The arguments after ``dvc``: ``exp run [--queue] [-n NAME] -S key=value ...``."""
    args = ["exp", "run", *(["--queue"] if queue else []), *(["-n", name] if name else [])]
    for key, value in pairs:
        args += ["-S", f"{key}={value}"]
    return args


def _dvc(root: Path, args: list[str], timeout: float = 300.0) -> str:
    """Run ``dvc ARGS`` in ``root``; its last output line, or RuntimeError with DVC's last error line."""
    try:
        # install_env: `dvc queue start` spawns its workers as `dvc`, found on PATH
        proc = subprocess.run([runs.dvc_executable(), *args], cwd=root, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env=runs.install_env())
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeError(f"dvc {' '.join(args[:2])} did not finish ({err}); check that DVC is installed") from None
    lines = (proc.stdout + proc.stderr).strip().splitlines() or ["(no output)"]
    if proc.returncode != 0:
        errors = [line for line in lines if line.startswith("ERROR")] or lines
        raise RuntimeError(f"dvc {' '.join(args[:2])} failed: {errors[-1]}")
    return lines[-1]


def queue_experiment(root: Path, pairs: list[tuple[str, str]], name: str = "") -> str:
    """Check ``pairs`` and queue ``dvc exp run --queue -S ...`` (nothing runs yet); DVC's confirmation line."""
    check_sets(root, pairs)
    return _dvc(root, exp_run_args(pairs, queue=True, name=name))


def start_experiment(root: Path, pairs: list[tuple[str, str]], name: str = "") -> runs.RunRecord:
    """Check ``pairs`` and start ``dvc exp run -S ...`` now, detached like every run of the app."""
    check_sets(root, pairs)
    return runs.start_run(root, command=exp_run_args(pairs, name=name))


def start_queue(root: Path, jobs: int = 1) -> str:
    """``dvc queue start -j JOBS``: run the queued experiments in the background, ``jobs`` at once (each in
    its own copy of the workspace); DVC's line."""
    if jobs < 1:
        raise ValueError(f"jobs: {jobs} workers; start the queue with 1 or more")
    return _dvc(root, ["queue", "start", "-j", str(jobs)])
