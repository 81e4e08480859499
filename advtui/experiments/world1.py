"""E18, second half: the "World 1" control (Ilyas et al.'s Takeaway 1; Distill discussion).

Ilyas et al.'s claim is that non-robust features are *features of the data distribution*: D_det, whose only
link to its labels is the non-robust pattern the attack planted, generalises to natural test data because
the same pattern is there. If the pattern were an artefact of the training set alone ("World 1"), D_det must
not generalise. The synthetic data lets us build that world exactly: the test images drawn again without the
planted pattern (every other draw unchanged), while the training set, hence the source model, D_det and its E4
classifiers, stays as it is. Ground truth: on the World-1 test set a D_det classifier can use only the robust
features, which in D_det say y where the label says y+1, so it scores at or below chance; on the natural test set
(World 2, the pattern a real feature) it scores high. D_rand likewise: chance in World 1. The E4 natural
classifier, for reference, keeps what its shape and colour features give.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from advtui.catalog.data import DataParams
from advtui.data.synthetic import without_pattern
from advtui.experiments.common import load_classifier, natural_split
from advtui.paradigms.supervised import accuracy
from advtui.runtime import pick_device
from advtui.stats import interval95

#: The E4 training sets whose classifiers are tested in World 1, with what the planted truth expects there.
WORLD1_SETS: dict[str, str] = {
    "natural": "above chance (shape and colour are real features)",
    "D_rand": "~chance (its labels carry only the pattern)",
    "D_det": "at or below chance (its robust features say y, its labels y+1)",
}


def world1_control(*, classifiers: dict[str, list[Path]], data: DataParams, seed: int, device: str) -> dict:
    """Per training set of ``classifiers`` (name -> its E4 classifiers' weights, one per seed): their mean accuracy
    and 95% interval on the natural test set (World 2) and on the same images drawn without the planted pattern
    (World 1), with each seed's values."""
    if data.source != "synthetic":
        raise ValueError(f"World 1 needs the synthetic data's planted pattern, data.source is {data.source!r}")
    dev = pick_device(device)
    worlds = {"world2": natural_split(data, "test", seed),
              "world1": natural_split(replace(data, synthetic=without_pattern(data.synthetic)), "test", seed)}
    sets = {}
    for name, paths in classifiers.items():
        models = [load_classifier(path, dev) for path in paths]
        row: dict = {"set": name, "expected": WORLD1_SETS[name], "per_seed": {}, "ci95": {}}
        for world, test in worlds.items():
            values = [accuracy(model, test, device=dev) for model in models]
            row[f"{world}_acc"] = sum(values) / len(values)
            row["per_seed"][f"{world}_acc"], row["ci95"][f"{world}_acc"] = values, interval95(values)
        sets[name] = row
    return {"n_test": len(worlds["world1"]), "chance": 1 / worlds["world1"].num_classes, "n_seeds": len(
        next(iter(classifiers.values()))), "sets": sets}
