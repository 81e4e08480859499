"""Figure files for papers (``data/figures``) from the metrics files: the eps curves of E1 and E4, E7's loss curves,
E8's transfer heatmap, E13's model, E9-E11's curves, E12's scatter (with E15's point) and E17's layer ratios."""

from __future__ import annotations

from advtui.catalog import paths
from advtui.catalog.params import Params
from advtui.pipeline.inputs import require
from advtui.report.figures import (
    write_distill_figures, write_figures, write_theory_figures, write_transfer_figures,
)
from advtui.report.springer_figures import write_springer_figures


def run(params: Params, name: str) -> dict:
    """Write every figure; returns how many files it wrote."""
    written = write_figures(require(paths.METRICS / "curves"), paths.FIGURES)
    written += write_theory_figures(paths.METRICS, paths.FIGURES)
    written += write_transfer_figures(paths.METRICS, paths.FIGURES)
    written += write_springer_figures(paths.METRICS, paths.FIGURES)
    written += write_distill_figures(paths.METRICS, paths.FIGURES)
    return {"files": len(written)}
