"""Where every artifact lives, relative to the project folder: weights, datasets, metrics, logs, progress.

Stages write here, ``dvc.yaml`` (generated from :mod:`advtui.catalog.stages`) declares these paths as
outs, and the report and the app read them, so a path is spelled once.
"""

from __future__ import annotations

from pathlib import Path

#: The active profile's parameters, which every stage reads (``advtui profile use`` writes it).
PARAMS_FILE = Path("params.yaml")
DATA = Path("data")
#: Metrics JSON of each experiment family, one file per stage item: data/metrics/<experiment>/<name>.json.
METRICS = DATA / "metrics"
#: Live progress of running stages (one small JSON file each), read by the app.
PROGRESS = DATA / "progress"
#: The report stage's outputs.
REPORT_MD = DATA / "report" / "report.md"
REPORT_JSON = DATA / "report" / "report.json"
#: Robust accuracy against eps of each curve run, one TSV per norm, for ``dvc plots``.
CURVES = DATA / "curves"
#: Figure files (PNG and SVG) for papers: the eps curves of E1 and E4.
FIGURES = DATA / "figures"
#: The gallery the app's Gallery screen draws.
GALLERY = DATA / "gallery" / "gallery.safetensors"


def model_path(name: str) -> Path:
    """Weights of an E1 source model (or of the robust CL source ``robust_cl``)."""
    return DATA / "models" / f"{name}.safetensors"


def dataset_path(name: str) -> Path:
    """A constructed dataset (E2, E3)."""
    return DATA / "datasets" / f"{name}.safetensors"


def retrained_dir(name: str) -> Path:
    """The E4 classifiers trained on training set ``name``: one weights file per seed (``retrain.seeds``)."""
    return DATA / "retrained" / name


def retrained_path(name: str, index: int) -> Path:
    """Weights of the ``index``-th E4 classifier trained on ``name``, the one trained with seed ``seed + index``
    (named by index, not seed, so that dvc.yaml and the stages reading the first one name a fixed file)."""
    return retrained_dir(name) / f"{index}.safetensors"


def encoder_path(name: str) -> Path:
    """A pretrained paradigm module of E5/E6 (``name``: paradigm-set, e.g. 'CL-D_R')."""
    return DATA / "encoders" / f"{name}.safetensors"


def probe_path(name: str) -> Path:
    """The linear head of E5/E6 run ``name`` (it names its encoder)."""
    return DATA / "probes" / f"{name}.safetensors"


def metrics_path(experiment: str, name: str) -> Path:
    """Metrics JSON of one stage (``experiment``: E1, construct, E4, pretrain, E5, E6)."""
    return METRICS / experiment / f"{name}.json"


def curve_tsv(experiment: str, model: str, norm: str) -> Path:
    """The ``dvc plots`` file of one model's curve under one norm (columns eps, robust_acc)."""
    return CURVES / experiment / f"{model}-{norm}.tsv"


def model_of(experiment: str, name: str) -> Path:
    """What holds the classifier(s) a row of ``experiment`` measures: an E1 source model's weights, or the folder
    of an E4 training set's per-seed weights."""
    if experiment not in ("E1", "E4"):
        raise ValueError(f"experiment {experiment!r}: has no classifier of its own; use E1 or E4")
    return model_path(name) if experiment == "E1" else retrained_dir(name)


def live_dir(experiment: str, name: str) -> Path:
    """DVCLive folder of a training stage (E4: one sub-folder per seed, :func:`seed_dir`)."""
    return DATA / "live" / experiment / name


def seed_dir(folder: Path, index: int) -> Path:
    """The sub-folder of the ``index``-th seed's files in a folder shared by several seeds (E4's DVCLive logs
    and resume state)."""
    return folder / str(index)


def progress_path(stage: str, folder: Path = PROGRESS) -> Path:
    """The progress file of ``stage`` (e.g. ``construct@D_R`` -> ``data/progress/construct-D_R.json``)."""
    return folder / f"{stage.replace('@', '-')}.json"


#: E8's extra supervised backbones (``e8.backbones``): each one's encoder and linear probe, in one folder.
BACKBONES = DATA / "backbones"


def backbone_encoder_path(name: str) -> Path:
    """The pretrained SL module of E8 backbone ``name`` (``SL-resnet50``)."""
    return BACKBONES / f"{name}.safetensors"


def backbone_probe_path(name: str) -> Path:
    """The linear probe on E8 backbone ``name``'s encoder."""
    return BACKBONES / f"{name}.probe.safetensors"


#: E9-E11 (Springer et al.): the eps-robust sources the ``robustified`` stage trains (the sweep's radii that E1 has
#: no source for), one weights file each.
SWEEP = DATA / "sweep"


def sweep_model_path(name: str) -> Path:
    """Weights of the eps-robust source ``name`` (``eps_0.25``, :func:`advtui.catalog.names.sweep_name`)."""
    return SWEEP / f"{name}.safetensors"
