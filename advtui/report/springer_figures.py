"""Figure files of Springer et al.'s experiments (E10: Figs. 3, 4; E11: Figs. 5, 6) from their metrics files (no
torch), drawn by the ``figures`` stage beside the others, as PNG and SVG, byte-reproducibly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from advtui.catalog.published import E9_PUBLISHED
from advtui.report.figures import _save

#: The x axis of every eps curve: symmetric-log, linear below 1/512, so eps 0 and Springer's 1/256 ... 1 all show.
_LINTHRESH = 1 / 512


def _eps_axis(ax: plt.Axes) -> None:
    ax.set_xscale("symlog", linthresh=_LINTHRESH)
    ax.set_xlim(left=0)
    ax.set_xlabel("source eps (L2)")


def _band(ax: plt.Axes, xs: list[float], bounds: list[Any], color: str) -> None:
    if bounds and all(b for b in bounds):
        ax.fill_between(xs, [100 * lo for lo, _ in bounds], [100 * hi for _, hi in bounds], color=color, alpha=0.15,
                        linewidth=0)


def e10_figure(result: dict[str, Any]) -> plt.Figure:
    """Springer's Figs. 3 and 4 from E9's metrics: left, the standard classifiers' accuracy on R_eps (mean, 95%
    interval over seeds) beside Table 5's standard row; right, each source's clean accuracy (Wilson interval)."""
    names, eps = result["names"], result["sweep_eps"]
    cells = result["cells"]["standard"]["R"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
    (line,) = left.plot(eps, [100 * cells[n]["acc"] for n in names], marker="o", label="ours")
    _band(left, eps, [cells[n]["ci95"]["acc"] for n in names], line.get_color())
    published = E9_PUBLISHED["standard"]["R"]
    left.plot(list(published), list(published.values()), marker="s", color="grey", linestyle=":",
              label="Springer Table 5 (CIFAR-10)")
    left.axhline(100 * result["chance"], color="black", linewidth=0.8, linestyle="--", label="chance")
    seeds = result["classifiers"]["standard"]["n_seeds"]
    left.set(ylabel="accuracy on R_eps (%)", ylim=(0, 100),
             title=f"standard classifier on R_eps ({seeds} seeds, {result['n_test']} images)")
    sources = result["sources"]
    (line,) = right.plot(eps, [100 * sources[n]["clean_acc"] for n in names], marker="o", color="tab:green")
    _band(right, eps, [sources[n]["ci95"]["clean_acc"] for n in names], line.get_color())
    right.set(ylabel="clean test accuracy (%)", ylim=(0, 100), title="eps-robust source, clean test set")
    for ax in (left, right):
        _eps_axis(ax)
        ax.title.set_fontsize(8)
    left.legend(fontsize=6)
    fig.suptitle("E10 universality (Springer Figs. 3, 4)", fontsize=9)
    return fig


def e11_figure(result: dict[str, Any]) -> plt.Figure:
    """Springer's Figs. 5 and 6 from E11's metrics: per victim (the source itself dashed), the untargeted error rate
    and the targeted hit rate against the source's eps, with Wilson intervals over the images."""
    names, eps = result["names"], result["sweep_eps"]
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2), layout="constrained")
    for ax, mode, label in zip(axes, ("untargeted", "targeted"), ("untargeted error rate (%)", "targeted hit rate (%)")):
        for victim in ("white_box", *result["victims"]):
            cells = [result["sources"][n][mode][victim] for n in names]
            (line,) = ax.plot(eps, [100 * c["rate"] for c in cells], marker="o", markersize=3,
                              linestyle="--" if victim == "white_box" else "-",
                              label="source (white box)" if victim == "white_box" else victim)
            _band(ax, eps, [c["ci95"]["rate"] for c in cells], line.get_color())
        _eps_axis(ax)
        ax.set(ylabel=label, ylim=(0, 100))
    axes[0].legend(fontsize=6)
    fig.suptitle(f"E11 transfer from eps-robust sources: L2 PGD eps {result['attack_eps']:g}, {result['steps']} steps, "
                 f"{result['n']} images (Springer Figs. 5, 6)", fontsize=8)
    return fig


def write_springer_figures(metrics: Path, out: Path) -> list[Path]:
    """``E10_universality`` and ``E11_transfer`` (``.png``, ``.svg``) under ``out`` from the metrics under ``metrics``
    (``data/metrics``), each once its stage has run; the files."""
    written = []
    e9 = metrics / "E9" / "robustified.json"
    if e9.exists():
        written += _save(e10_figure(json.loads(e9.read_text())), out, "E10_universality")
    e11 = metrics / "E11" / "slight_transfer.json"
    if e11.exists():
        written += _save(e11_figure(json.loads(e11.read_text())), out, "E11_transfer")
    return written
