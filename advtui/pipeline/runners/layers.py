"""E17 (Nakano): the robustness ratio of every block of each ``e17.models`` E1 source."""

from __future__ import annotations

from advtui.catalog.params import Params
from advtui.catalog.paths import curve_tsv, metrics_path, model_path
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.layer_robustness import layer_robustness
from advtui.files import write_json, write_text
from advtui.pipeline.inputs import require
from advtui.runtime import pick_device, seed_everything


def run(params: Params, name: str) -> dict:
    """Measure every block's ratio of each source; write the E17 metrics."""
    device = pick_device(params.device)
    seed_everything(params.seed)
    models = {m: load_classifier(require(model_path(m)), device) for m in params.e17.models}
    result = layer_robustness(models, natural_split(params.data, "test", params.seed), params.e17, seed=params.seed,
                              device=device)
    for model, rows in result["models"].items():  # `dvc plots`: the ratio against the block's index (L2 ball)
        lines = ["block\tname\tratio"] + [f"{k}\t{row['block']}\t{row['ratio']:.6g}" for k, row in enumerate(rows)]
        write_text(curve_tsv("E17", model, "l2"), "\n".join(lines) + "\n")
    write_json(metrics_path("E17", name), result)
    return result
