"""The code a stage runs, as files: the transitive closure of advtui's imports from the stage's modules.

DVC reruns a stage when one of its deps changes, so each stage must list every source file whose change
can change its outputs: the PGD loop for every stage that attacks, the synthetic generator for every stage
that reads synthetic data. The closure is computed from the source text (``ast``, no import, no torch):
every ``import``/``from ... import`` of an ``advtui`` module anywhere in a file, inside functions too (lazy
imports run as well), plus the ``__init__`` of every package on the way, since importing a module runs it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "advtui"
#: Modules that declare the pipeline rather than compute in it: ``dvc.yaml`` is generated from them, so DVC
#: already sees every change of theirs that matters to a stage (its cmd, deps, params, outs); as deps they
#: would rerun every stage whenever a stage is added. Stages import them for names and error messages only.
DECLARATIONS = frozenset({"advtui.catalog.stages", "advtui.catalog.codedeps"})
#: The folder holding the ``advtui`` package (the project root in a checkout).
ROOT = Path(__file__).resolve().parents[2]


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The source file of ``module`` (a package's ``__init__.py``), or None when it is not an advtui module."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


@cache
def _direct_imports(module: str, root: Path) -> frozenset[str]:
    """The advtui modules ``module`` imports anywhere in its file (names that are modules count as modules)."""
    path = module_file(module, root)
    if path is None:
        return frozenset()
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                package = _package_of(module, path).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(m for m in found if (m == PACKAGE or m.startswith(PACKAGE + ".")) and module_file(m, root))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def import_closure(modules: list[str] | tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Every advtui module that importing ``modules`` (and running their functions) can import, sorted."""
    seen: set[str] = set()
    todo = [p for m in modules for p in _with_parents(m)]
    while todo:
        module = todo.pop()
        if module in seen or module in DECLARATIONS or module_file(module, root) is None:
            continue
        seen.add(module)
        todo.extend(p for m in _direct_imports(module, root) for p in _with_parents(m))
    return sorted(seen)


def code_files(modules: list[str] | tuple[str, ...], root: Path = ROOT) -> list[str]:
    """The source files (relative to ``root``, POSIX) of :func:`import_closure`, sorted: a stage's code deps."""
    files = {module_file(m, root).relative_to(root).as_posix() for m in import_closure(modules, root)}  # type: ignore[union-attr]
    return sorted(files)
