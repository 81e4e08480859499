"""E13: Ilyas et al.'s Gaussian model, the closed-form robust MLE against a simulated one (no images, no network)."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import curve_tsv, metrics_path
from advtui.experiments.gaussian import gaussian_experiment
from advtui.files import write_json, write_text

#: The two curves of ``dvc plots`` (closed form, simulation) and the columns each TSV holds against eps.
CURVE_COLUMNS = ("condition", "isotropy", "alignment")
SOURCES = ("analytic", "simulated")


def run(params: Params, name: str) -> dict:
    """Fit the standard and robust MLE at every ``e13.eps``; write the metrics and one TSV per source (the adversary
    is L2, hence the ``l2`` in the file names)."""
    result = gaussian_experiment(params.e13, params.seed)
    for source in SOURCES:
        lines = ["\t".join(("eps", *CURVE_COLUMNS))]
        lines += ["\t".join(f"{v:.6g}" for v in (row["eps"], *(row[f"{c}_{source}"] for c in CURVE_COLUMNS)))
                  for row in result["curve"]]
        write_text(curve_tsv("E13", source, "l2"), "\n".join(lines) + "\n")
    write_json(metrics_path("E13", name), result)
    return result
