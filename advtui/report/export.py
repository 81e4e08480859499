"""Any table as a file: CSV, Markdown or LaTeX, from one description of what a reader sees.

A :class:`Grid` is a table reduced to its printed cells (title, caption, headers, rows of strings, each column's
alignment), so every table the report or the app shows (the report's experiments, `dvc exp show`, a filtered or
sorted view) exports through the same three writers. ``advtui report --format`` and the app's export key both
end here. No torch, no textual, no matplotlib.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from advtui.files import write_text
from advtui.report.layout import LaidOut

#: File format -> its name as offered to a reader (the suffix is the key).
FORMATS = {"csv": "CSV", "md": "Markdown", "tex": "LaTeX"}


@dataclass(frozen=True)
class Grid:
    """A table as printed: ``rows`` of cell strings under ``headers``; ``align`` is "l" or "r" per column."""

    id: str
    title: str
    caption: str
    headers: list[str]
    align: list[str]
    rows: list[list[str]]


def laid_out_grid(laid: LaidOut) -> Grid:
    """The report table ``laid`` as a grid (names left, numbers right, as the report prints them)."""
    return Grid(id=laid.spec.id, title=laid.spec.title, caption=laid.caption,
                headers=[c.header for c in laid.columns],
                align=["l" if c.kind == "text" else "r" for c in laid.columns],
                rows=[laid.cells(row) for row in laid.rows])


def _md_cell(text: str) -> str:
    return text.replace("|", r"\|")


def markdown_table(grid: Grid) -> list[str]:
    """The grid's header, separator and rows as Markdown table lines."""
    lines = ["| " + " | ".join(map(_md_cell, grid.headers)) + " |", "|" + "---|" * len(grid.headers)]
    return lines + ["| " + " | ".join(map(_md_cell, row)) + " |" for row in grid.rows]


def to_markdown(grid: Grid) -> str:
    """The grid under its title, after its caption (as ``data/report/report.md`` holds every table)."""
    head = [f"## {grid.title}", ""] + ([grid.caption, ""] if grid.caption else [])
    return "\n".join(head + markdown_table(grid)) + "\n"


def to_csv(grid: Grid) -> str:
    """The grid as CSV: the headers, then one line per row (the cells as printed, e.g. ``70.0 ±2.1 (75.3)``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(grid.headers)
    writer.writerows(grid.rows)
    return out.getvalue()


# LaTeX's special characters, and the few non-ASCII signs the tables print, as pdflatex reads them.
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"\ensuremath{\pm}",
        "—": "---", "Δ": r"\ensuremath{\Delta}", "½": r"\ensuremath{\tfrac{1}{2}}", "└": "", "▲": "", "▼": ""}
_TEX_RE = re.compile("|".join(map(re.escape, _TEX)))


def tex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped and the tables' signs (±, —, Δ, ½) spelled for pdflatex."""
    return _TEX_RE.sub(lambda m: _TEX[m.group()], text).strip()


def to_latex(grid: Grid) -> str:
    """The grid as a LaTeX ``table`` (booktabs rules), its title and caption as the caption, ``tab:<id>`` label."""
    caption = tex_escape(f"{grid.title}. {grid.caption}" if grid.caption else grid.title)
    lines = [r"\begin{table}", r"  \centering", f"  \\caption{{{caption}}}",
             f"  \\label{{tab:{re.sub(r'[^A-Za-z0-9:-]', '-', grid.id)}}}",
             f"  \\begin{{tabular}}{{{''.join(grid.align)}}}", r"    \toprule",
             "    " + " & ".join(tex_escape(h) for h in grid.headers) + r" \\", r"    \midrule"]
    lines += ["    " + " & ".join(tex_escape(c) for c in row) + r" \\" for row in grid.rows]
    lines += [r"    \bottomrule", r"  \end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


_WRITERS = {"csv": to_csv, "md": to_markdown, "tex": to_latex}


def check_format(fmt: str) -> str:
    """``fmt`` if it is an export format; else ValueError naming the ones there are."""
    if fmt not in FORMATS:
        raise ValueError(f"format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return fmt


def render(grid: Grid, fmt: str) -> str:
    """The grid as the text of a ``fmt`` file (csv, md, tex)."""
    return _WRITERS[check_format(fmt)](grid)


def render_all(grids: Iterable[Grid], fmt: str) -> str:
    """Several grids as one text: Markdown and LaTeX one after another; CSV with each table's title as a
    ``#`` comment line before it (``pandas.read_csv(comment="#")`` reads past them) and a blank line between."""
    parts = [(f"# {g.title}\n" if fmt == "csv" else "") + render(g, fmt) for g in grids]
    return "\n".join(parts)


def slug(name: str) -> str:
    """``name`` as a file name: runs of anything but letters, digits, ``_ . -`` become one ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "table"


def series_grid(id: str, title: str, plots: list[tuple[str, list[tuple[str, list[float], list[float]]]]]) -> Grid:
    """Plotted lines as one long table, a row per point (plot, line, x, y): the data of a plot view, to export
    beside its figure."""
    rows = [[plot, label, f"{x:g}", f"{y:.6g}"] for plot, series in plots for label, xs, ys in series
            for x, y in zip(xs, ys)]
    return Grid(id=id, title=title, caption="", headers=["plot", "line", "x", "y"], align=["l", "l", "r", "r"],
                rows=rows)


def export_file(grid: Grid, fmt: str, folder: Path) -> Path:
    """Write the grid to ``folder/<id>.<fmt>`` (atomically); the path written."""
    return write_text(Path(folder) / f"{slug(grid.id)}.{check_format(fmt)}", render(grid, fmt))
