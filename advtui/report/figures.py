"""Figure files for papers from the metrics files (no torch): robust accuracy against eps, one figure per
experiment and norm, as PNG (300 dpi) and SVG.

The files are byte-reproducible (no dates, fixed SVG ids), so a rerun on the same metrics changes nothing
downstream. Later experiments add their figures here, reading their metrics as the report does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a GPU box reached over SSH
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

import numpy as np  # noqa: E402

from advtui.catalog.names import curve_runs  # noqa: E402
from advtui.files import write_atomic  # noqa: E402
from advtui.report.halfblock import magnify, to_uint8_hwc  # noqa: E402

#: The radius of the published comparison point: Ilyas et al.'s E4 table, L2 eps 0.25; Li's Linf 4/255.
PUBLISHED_EPS = {"l2": 0.25, "linf": 4 / 255}
_LABEL = {"l2": "L2 radius eps", "linf": "Linf radius eps (x 1/255)"}
_FORMATS = {"png": {"dpi": 300, "metadata": {"Software": None}}, "svg": {"metadata": {"Date": None}}}


def read_curves(folder: Path) -> list[dict[str, Any]]:
    """Every model's curves from the metrics files under ``folder`` (``data/metrics/curves``, one per experiment),
    in the catalogue's order (E1's source models, then E4's training sets); a set the data cannot have (marked
    ``not_applicable``) has no curve and is left out."""
    rows = [row for path in sorted(folder.glob("*.json")) for row in json.loads(path.read_text()).values()
            if not row.get("not_applicable")]
    order = curve_runs()
    return sorted(rows, key=lambda row: order.index(f"{row['experiment']}-{row['model']}"))


def _axes_eps(norm: str, eps: float) -> float:
    return eps * 255 if norm == "linf" else eps


def curve_figure(rows: list[dict[str, Any]], experiment: str, norm: str) -> plt.Figure:
    """One experiment's curves under ``norm``: a line per model (E4: the mean over its seeds, in a band of the
    95% interval at each radius), the published radius and, on synthetic data, the radius that flips the planted
    pattern (the ground truth a pattern-reading model breaks at)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
    for row in rows:
        points = row[norm]
        radii = [_axes_eps(norm, e) for e, _ in points]
        (line,) = ax.plot(radii, [100 * a for _, a in points], marker="o", markersize=3, label=row["model"])
        bounds = (row.get("ci95") or {}).get(norm)
        if bounds and all(b is not None for b in bounds):
            ax.fill_between(radii, [100 * lo for lo, _ in bounds], [100 * hi for _, hi in bounds],
                            color=line.get_color(), alpha=0.15, linewidth=0)
    ax.axvline(_axes_eps(norm, PUBLISHED_EPS[norm]), color="grey", linestyle=":", linewidth=1, label="published eps")
    flips = {row["pattern_flip"][norm] for row in rows if row.get("pattern_flip")}
    if flips:
        ax.axvline(_axes_eps(norm, min(flips)), color="black", linestyle="--", linewidth=1, label="pattern flips")
    seeds = {len(row["seeds"]) for row in rows if row.get("seeds")}
    over = f" (mean of {'/'.join(map(str, sorted(seeds)))} seeds)" if seeds - {1} else ""
    ax.set(xlabel=_LABEL[norm], ylabel="robust accuracy (%)", ylim=(0, 100), title=f"{experiment}: PGD, {norm}{over}")
    ax.legend(fontsize=6, ncols=2)
    return fig


def _write(fig: plt.Figure, path: Path, fmt: str) -> Path:
    """Write ``fig`` to ``path`` as ``fmt`` (png, svg) atomically, byte-reproducibly (fixed SVG ids, no dates)."""
    with plt.rc_context({"svg.hashsalt": "advtui"}):  # fixed element ids: same metrics, same bytes
        return write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt, **_FORMATS[fmt]))


def _save(fig: plt.Figure, out: Path, stem: str) -> list[Path]:
    """``fig`` as ``<stem>.png`` and ``<stem>.svg`` under ``out``, then closed; the files."""
    written = [_write(fig, out / f"{stem}.{fmt}", fmt) for fmt in _FORMATS]
    plt.close(fig)
    return written


def write_figures(metrics: Path, out: Path) -> list[Path]:
    """Write ``<experiment>_eps_<norm>.{png,svg}`` under ``out`` for every experiment with curves; the files."""
    rows = read_curves(metrics)
    written = []
    for experiment in sorted({row["experiment"] for row in rows}):
        mine = [row for row in rows if row["experiment"] == experiment]
        for norm in ("l2", "linf"):
            written += _save(curve_figure(mine, experiment, norm), out, f"{experiment}_eps_{norm}")
    return written


def gaussian_figure(result: dict[str, Any]) -> plt.Figure:
    """E13 (Ilyas section 4) against the adversary's L2 budget eps: the condition number of the learned covariance
    (1: a multiple of I) and the cosine of the model's gradient with the inter-class direction, closed form as
    lines, simulation as markers."""
    rows = result["curve"]
    eps = [row["eps"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
    for ax, key, label in ((left, "condition", "condition number of Sigma"), (right, "alignment", "cos(gradient, mu*)")):
        ax.plot(eps, [row[f"{key}_analytic"] for row in rows], color="black", label="closed form")
        ax.plot(eps, [row[f"{key}_simulated"] for row in rows], "o", color="tab:red", markersize=4,
                label=f"simulated ({result['n_samples']} samples)")
        ax.set(xlabel="L2 budget eps (rms ||delta||)", ylabel=label)
    left.set_yscale("log")
    right.set_ylim(0, 1.02)
    left.legend(fontsize=7)
    fig.suptitle(f"E13: robust MLE of a Gaussian (dim {result['dim']}), eps 0 = standard", fontsize=9)
    return fig


def write_theory_figures(metrics: Path, out: Path) -> list[Path]:
    """The figures of Ilyas's theory and the Distill experiments whose metrics are under ``metrics``
    (``data/metrics``): ``E13_gaussian.{png,svg}``; an experiment not run yet has none."""
    written = []
    e13 = metrics / "E13" / "gaussian.json"
    if e13.exists():
        written += _save(gaussian_figure(json.loads(e13.read_text())), out, "E13_gaussian")
    return written


def write_line_figure(path: Path, series: list[tuple[str, list[float], list[float]]], title: str, xlabel: str,
                      ylabel: str = "") -> Path:
    """Any set of lines (label, xs, ys) as one figure file, its format from ``path``'s suffix (.png, .svg): what
    the app's plot views export (curves of several experiments, a metric against a param)."""
    fmt = path.suffix.lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(f"{path}: unknown figure format; use one of {', '.join('.' + f for f in _FORMATS)}")
    fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if series:
        ax.legend(fontsize=6, ncols=2)
    try:
        return _write(fig, path, fmt)
    finally:
        plt.close(fig)


def write_image_grid(path: Path, title: str, tiles: list[tuple[str, np.ndarray, np.ndarray | None]]) -> Path:
    """Images side by side, each captioned, with its perturbation magnified under it (grey = unchanged; a
    natural image has none), as one figure file (format from ``path``'s suffix): the app's Gallery row as a figure
    for a paper. Pixels are drawn as they are (no smoothing), so a pixel-level perturbation stays visible."""
    fmt = path.suffix.lstrip(".")
    if fmt not in _FORMATS:
        raise ValueError(f"{path}: unknown figure format; use one of {', '.join('.' + f for f in _FORMATS)}")
    fig, axes = plt.subplots(2, len(tiles), figsize=(1.3 * len(tiles), 3.0), layout="constrained", squeeze=False)
    for (caption, image, delta), top, bottom in zip(tiles, axes[0], axes[1]):
        top.imshow(to_uint8_hwc(image), interpolation="nearest")
        top.set_title(caption, fontsize=6)
        if delta is not None:
            bottom.imshow(to_uint8_hwc(magnify(delta)), interpolation="nearest")
            bottom.set_title(f"Δ L2 {float(np.linalg.norm(delta)):.2f}", fontsize=6)
        for ax in (top, bottom):
            ax.set_axis_off()
    fig.suptitle(title, fontsize=7)
    try:
        return _write(fig, path, fmt)
    finally:
        plt.close(fig)
#: Fig. 2's panels (Li et al. section 5.1): each encoder attacked with CE and with the default InfoNCE.
E7_PANELS = (("SL", "ce"), ("SL", "infonce_proj_aug"), ("CL", "ce"), ("CL", "infonce_proj_aug"))
_E7_TITLE = {"ce": "CE attack", "infonce_proj_aug": "InfoNCE attack"}


def e7_curves_figure(results: dict[str, dict[str, Any]]) -> plt.Figure:
    """Li's Fig. 2 from E7's metrics (encoder -> its E7 row): per encoder and attack (CE, InfoNCE), the mean CE
    loss of the probe (left axis) and InfoNCE loss (right axis) at each APGD iterate; an encoder not run is left
    blank."""
    fig, axes = plt.subplots(2, 2, figsize=(7, 5), layout="constrained")
    for ax, (paradigm, attack) in zip(axes.flat, E7_PANELS):
        curve = (results.get(paradigm) or {}).get("curves", {}).get(attack)
        ax.set_title(f"{paradigm} encoder, {_E7_TITLE[attack]}", fontsize=9)
        if not curve or not curve.get("ce"):  # not run, or no point to attack (none classified right clean)
            ax.text(0.5, 0.5, "not run" if not curve else "no point attacked", ha="center", va="center",
                    transform=ax.transAxes)
            continue
        ax.plot(curve["ce"], color="tab:blue", label="CE")
        ax.set(xlabel="APGD iteration", ylabel="CE loss")
        ax.yaxis.label.set_color("tab:blue")
        twin = ax.twinx()
        twin.plot(curve["infonce"], color="tab:orange", label="InfoNCE")
        twin.set_ylabel("InfoNCE loss", color="tab:orange")
    n = {r.get("n") for r in results.values()}
    fig.suptitle(f"E7: loss during the attack (mean over the attacked points of {'/'.join(map(str, sorted(n)))} "
                 "test images)", fontsize=9)
    return fig


def e8_heatmap(matrix: dict[str, Any]) -> plt.Figure:
    """Li's Fig. 3 from E8's metrics: the accuracy (%) of each target classifier (column) on each source's
    adversarial images (row), darker for higher accuracy (worse transfer), each cell annotated."""
    models = matrix["models"]
    values = [[100 * matrix["acc"][s][t] for t in models] for s in models]
    fig, ax = plt.subplots(figsize=(1.1 * len(models) + 2, 0.9 * len(models) + 1.5), layout="constrained")
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=100)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 60 else "black")
    clean = matrix.get("clean") or {}
    ax.set_xticks(range(len(models)), [f"{t}\n(clean {100 * clean[t]:.0f})" if t in clean else t for t in models],
                  rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set(xlabel="evaluated on", ylabel="adversarial examples from")
    radius = f"{matrix['eps'] * 255:.3g}/255" if matrix.get("norm") == "linf" else f"{matrix.get('eps')}"
    ax.set_title(f"E8: accuracy (%) on transferred APGD-CE examples, {matrix.get('norm')} {radius}, "
                 f"{matrix.get('n')} images", fontsize=8)
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    return fig


def write_transfer_figures(metrics: Path, out: Path) -> list[Path]:
    """Write ``E7_curves.{png,svg}`` (Fig. 2) and ``E8_transfer.{png,svg}`` (Fig. 3) under ``out`` from the E7 and
    E8 metrics under ``metrics`` (``data/metrics``), each once its stages have written anything; the files."""
    results = {p: json.loads(f.read_text()) for p in ("SL", "CL") if (f := metrics / "E7" / f"{p}.json").exists()}
    written = _save(e7_curves_figure(results), out, "E7_curves") if results else []
    matrix = metrics / "E8" / "matrix.json"
    if matrix.exists():
        written += _save(e8_heatmap(json.loads(matrix.read_text())), out, "E8_transfer")
    return written


def learnability_figure(e12: dict[str, Any] | None, e15: dict[str, Any] | None) -> plt.Figure:
    """Ilyas's Fig. 3 from E12's metrics: per architecture, the natural test accuracy of its D_det classifiers
    against the transfer success of the source's targeted examples to its natural classifiers (error bars: the 95%
    intervals over seeds where there are several), with E15's bugs-only set as its own marker; chance as a line."""
    fig, ax = plt.subplots(figsize=(4.5, 3.4), layout="constrained")
    for arch, row in ((e12 or {}).get("archs") or {}).items():
        # a Student-t interval over 3 seeds can reach past 0 or 1: a rate's bar stops there
        ci = {k: [max(0.0, v[0]), min(1.0, v[1])] for k, v in (row.get("ci95") or {}).items() if v}
        xerr = [[100 * (row["transfer_success"] - ci["transfer_success"][0])],
                [100 * (ci["transfer_success"][1] - row["transfer_success"])]] if ci.get("transfer_success") else None
        yerr = [[100 * (row["det_acc"] - ci["det_acc"][0])], [100 * (ci["det_acc"][1] - row["det_acc"])]] \
            if ci.get("det_acc") else None
        ax.errorbar([100 * row["transfer_success"]], [100 * row["det_acc"]], xerr=xerr, yerr=yerr, fmt="o",
                    markersize=5, capsize=2, label=arch)
    if e15 is not None and e15.get("transfer_success") is not None:
        ax.plot([100 * e15["transfer_success"]], [100 * e15["clean_acc"]], "X", color="black", markersize=8,
                label="E15 bugs-only set")
    chance = (e12 or e15 or {}).get("chance")
    if chance:
        ax.axhline(100 * chance, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="transfer success of the source's examples (%)", ylabel="test accuracy, trained on D_det (%)",
           xlim=(-2, 102), ylim=(-2, 102))
    ax.legend(fontsize=6)
    ax.set_title("E12: learnability vs transferability (Ilyas Fig. 3)", fontsize=9)
    return fig


def layers_figure(e17: dict[str, Any]) -> plt.Figure:
    """Nakano's layer robustness from E17's metrics: the ratio r of every block, one line per model (lower: a more
    robust block)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
    order = e17.get("model_order") or sorted(e17["models"])  # JSON files sort their keys
    for model in order:
        rows = e17["models"][model]
        ax.plot(range(len(rows)), [row["ratio"] for row in rows], marker="o", markersize=4, label=model)
    blocks = [row["block"] for row in e17["models"][order[0]]]
    ax.set_xticks(range(len(blocks)), blocks, rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="ratio r (lower: a more robust block)", ylim=(0, None))
    ax.set_title(f"E17: layer robustness, L2 eps {e17['eps']}, {e17['n']} images", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def write_distill_figures(metrics: Path, out: Path) -> list[Path]:
    """``E12_learnability.{png,svg}`` (with E15's point) and ``E17_layers.{png,svg}`` under ``out`` from the metrics
    under ``metrics`` (``data/metrics``), each once its stage has written anything; the files."""
    read = {e: json.loads(f.read_text()) for e, f in (("E12", metrics / "E12" / "learnability.json"),
                                                       ("E15", metrics / "E15" / "bugs_only.json"),
                                                       ("E17", metrics / "E17" / "layers.json")) if f.exists()}
    written = []
    if "E12" in read or "E15" in read:
        written += _save(learnability_figure(read.get("E12"), read.get("E15")), out, "E12_learnability")
    if "E17" in read:
        written += _save(layers_figure(read["E17"]), out, "E17_layers")
    return written
