"""The gallery: ``gallery.n`` natural images beside their constructed versions, with predictions."""

from __future__ import annotations

from advtui.catalog import paths
from advtui.catalog.names import GALLERY_MODELS, GALLERY_SETS
from advtui.catalog.params import Params
from advtui.catalog.paths import dataset_path, model_path, retrained_path
from advtui.experiments.construct import source_images
from advtui.experiments.gallery import build_gallery
from advtui.pipeline.inputs import require


def run(params: Params, name: str) -> dict:
    """Write the app's gallery file from the constructed sets and the models that classify them."""
    datasets = {s: require(dataset_path(s)) for s in GALLERY_SETS}
    # the E4 natural-data model of the first seed: the gallery shows one model's predictions
    models = {m: require(retrained_path(m, 0)) if m == "natural" else require(model_path(m)) for m in GALLERY_MODELS}
    natural = source_images(params.construct.size, params.data, params.seed)
    return build_gallery(n=params.gallery.n, natural=natural, datasets=datasets, models=models, out=paths.GALLERY,
                         device=params.device)
