"""E18, second half: E4's natural, D_rand and D_det classifiers tested in "World 1", where the planted pattern is an
artefact of the training images only (synthetic data only)."""

from __future__ import annotations

from advtui.catalog.names import SYNTHETIC_ONLY, NATURAL_NOPATTERN
from advtui.catalog.params import Params
from advtui.catalog.paths import metrics_path, retrained_path
from advtui.experiments.world1 import WORLD1_SETS, world1_control
from advtui.files import write_json
from advtui.pipeline.inputs import require


def run(params: Params, name: str) -> dict:
    """Test every seed's E4 classifier of ``WORLD1_SETS`` with and without the planted pattern; write the metrics.
    Off synthetic data the row says it does not apply (dvc.yaml is the same for every data source)."""
    if params.data.source != "synthetic":
        result = {"not_applicable": SYNTHETIC_ONLY[NATURAL_NOPATTERN]}
    else:
        classifiers = {s: [require(retrained_path(s, k)) for k in range(params.retrain.seeds)] for s in WORLD1_SETS}
        result = world1_control(classifiers=classifiers, data=params.data, seed=params.seed, device=params.device)
    write_json(metrics_path("E18", name), result)
    return result
