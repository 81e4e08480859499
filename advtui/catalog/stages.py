"""The pipeline's stages, declared once: ``dvc.yaml`` is generated from this table (``advtui dvc-yaml``).

Each :class:`Family` is one ``foreach`` stage of ``dvc.yaml`` (or a single stage): its command, the
artifacts it reads, the params keys it reads, what it writes, and the modules it runs. Its code deps are
not listed by hand: they are the import closure of those modules (:mod:`advtui.catalog.codedeps`), so an
edit to the PGD loop or the synthetic generator marks exactly the stages that run it as changed.
A test regenerates ``dvc.yaml`` and fails when the committed file differs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from advtui.catalog import paths
from advtui.catalog.codedeps import ROOT, code_files
from advtui.catalog.launch import LAUNCH_PARAMS
from advtui.catalog.names import (
    CURVE_MODELS, NATURAL_NOPATTERN, PARADIGMS, RECIPES, ROBUST_CL, SOURCE_MODELS, SPRINGER_SETS, TRAINING_SETS,
    attacked_runs, matrix_runs, run_name,
)
from advtui.catalog.names import E7_PARADIGMS

DVC_YAML = Path("dvc.yaml")
#: ``dvc.yaml`` templating: the foreach item's key and its fields.
KEY, ITEM = "${key}", "${item}"
#: What a training set's data dep is: a constructed set's file, or for natural images the code that makes them.
NATURAL_DATA = "advtui/data/loaders.py"
#: The command module behind ``advtui stage``; it imports only the runner module it is asked for.
STAGE_COMMAND = "advtui.cli.stage"
#: The package holding one module per ``advtui stage RUNNER`` (each with ``run(params, name)``).
RUNNERS = "advtui.pipeline.runners"


#: Every experiment id a stage family belongs to, in display order, with what the app calls its group.
EXPERIMENTS: dict[str, str] = {
    "E1": "E1 source models",
    "E2/E3": "E2/E3 constructed datasets",
    "E4": "E4 retraining",
    "gallery": "gallery",
    "curves": "robust accuracy against eps (E1, E4)",
    "E5/E6": "E5/E6 paradigms: pretrain, probe, attack",
    "E7/E8": "E7/E8 transfer: objectives, matrix",
    "E13": "E13 Gaussian model (Ilyas section 4)",
    "E14": "E14 robust feature leakage (Goh)",
    "E16": "E16 learning from mislabelled data (Wallace)",
    "E18": "E18 frequency control (Hendrycks and Gilmer)",
    "E9-E11": "E9-E11 entanglement (Springer)",
    "E12": "E12 learnability vs transfer (Ilyas Fig. 3)",  # <= 44 characters: the app's stage column
    "E15": "E15 bugs-only examples (Nakkiran)",
    "E17": "E17 layer robustness (Nakano)",
    "report": "report",
}


def runner_module(runner: str) -> str:
    """The module ``advtui stage RUNNER`` runs (its ``run(params, name)``)."""
    return f"{RUNNERS}.{runner}"


def item(field_name: str) -> str:
    """The ``dvc.yaml`` reference to a field of the foreach item, e.g. ``${item.model}``."""
    return f"${{item.{field_name}}}"


def training_data(dataset: str) -> str:
    """The data dep of a stage that trains on ``dataset``: a constructed set's file, else (natural images and the
    E4 control made from them) the code that makes the images."""
    return str(paths.dataset_path(dataset)) if dataset in RECIPES else NATURAL_DATA


@dataclass(frozen=True)
class Family:
    """One stage family of ``dvc.yaml``: a ``foreach`` over ``items`` (or one stage when ``items`` is None).

    ``deps``, ``params``, ``outs`` and ``metrics`` may use ``${key}`` and ``${item...}``; ``code`` names
    the modules the stage runs when it is not ``advtui stage RUNNER`` (its code deps are the import closure
    of those modules, by default the command and its runner's module); ``runner`` is the
    ``advtui stage RUNNER NAME`` family, NAME the foreach key or, for a single stage, ``name`` (None:
    ``cmd`` is given whole).
    """

    name: str
    experiment: str
    comment: str
    items: tuple[str, ...] | dict[str, dict[str, str]] | None
    runner: str | None = None
    single: str = "main"
    cmd: str = ""
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    code: tuple[str, ...] = ()

    def command(self) -> str:
        """The stage's command as dvc.yaml holds it."""
        return self.cmd or f"advtui stage {self.runner} {KEY if self.items is not None else self.single}"

    def keys(self) -> list[str]:
        """The foreach keys (item names), or [] for a single stage."""
        return [] if self.items is None else list(self.items)

    def stage_names(self) -> list[str]:
        """Every stage name ``dvc`` knows this family by (``family@key``, or the family's name)."""
        return [f"{self.name}@{k}" for k in self.keys()] if self.items is not None else [self.name]

    def code_deps(self) -> list[str]:
        """The source files this family's stages run."""
        return code_files(self.code or (STAGE_COMMAND, runner_module(self.runner or "")))


_COMMON = ("seed", "device", "data")
_NATURAL_SIZE = "construct.size"  # how many natural images the constructions (and natural rows) start from
_SPEED = "attack.speed"  # how every evaluation and construction runs the model (E1 and E4 read all of ``attack``)


def _matrix_items(runs: list[str], with_data: bool) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for run in runs:
        paradigm, _, dataset = run.partition("-")
        out[run] = {"paradigm": paradigm, "data": training_data(dataset)} if with_data else {"paradigm": paradigm}
    return out


FAMILIES: tuple[Family, ...] = (
    Family(
        "source", "E1", "E1: standard and adversarially trained source models", SOURCE_MODELS, runner="source",
        params=(*_COMMON, "model", "sources.train", f"sources.{KEY}", "attack", *LAUNCH_PARAMS),
        outs=(str(paths.model_path(KEY)), str(paths.live_dir("E1", KEY))),
        metrics=(str(paths.metrics_path("E1", KEY)),),
    ),
    Family(
        "construct", "E2/E3",
        "E2, E3: constructed datasets (model: the source model each is made from; key: its settings)",
        {name: {"model": r.model, "key": r.settings} for name, r in RECIPES.items()}, runner="construct",
        deps=(str(paths.model_path(item("model"))),),
        params=(*_COMMON, _NATURAL_SIZE, "construct.zero_robust_size", "construct.start", "construct.precision",
                f"construct.{item('key')}", _SPEED),
        outs=(str(paths.dataset_path(KEY)),),
        metrics=(str(paths.metrics_path("construct", KEY)),),
    ),
    Family(
        "retrain", "E4", "E4: a fresh classifier on each training set, measured on the natural test set",
        {s: {"data": training_data(s), "recipe": "springer" if s in SPRINGER_SETS else "train"} for s in TRAINING_SETS},
        runner="retrain",
        deps=(item("data"),),
        params=(*_COMMON, "model", _NATURAL_SIZE, "retrain.seeds", f"retrain.{item('recipe')}", "attack", *LAUNCH_PARAMS),
        outs=(str(paths.retrained_dir(KEY)), str(paths.live_dir("E4", KEY))),
        metrics=(str(paths.metrics_path("E4", KEY)),),
    ),
    *(Family(
        f"curve_{e}", "curves", f"Robust accuracy against eps of every {e} model: L2 and Linf PGD over the curves radii",
        None, runner="curve", single=e,
        deps=tuple(str(paths.model_of(e, m)) for m in models),
        # E4's curves attack every seed's classifier
        params=("seed", "device", "data", "curves", _SPEED, *(("retrain.seeds",) if e == "E4" else ())),
        outs=(str(paths.CURVES / e),),
        metrics=(str(paths.metrics_path("curves", e)),),
    ) for e, models in CURVE_MODELS.items()),
    Family(
        "figures", "curves", "Figure files (PNG, SVG) of the eps curves for papers", None, runner="figures",
        deps=(str(paths.METRICS / "curves"), str(paths.METRICS / "E7"), str(paths.METRICS / "E8"),
              str(paths.metrics_path("E13", "gaussian")), str(paths.metrics_path("E9", "robustified")),
              str(paths.metrics_path("E11", "slight_transfer")), str(paths.metrics_path("E12", "learnability")),
              str(paths.metrics_path("E15", "bugs_only")), str(paths.metrics_path("E17", "layers"))),
        outs=(str(paths.FIGURES),),
    ),
    Family(
        "gallery", "gallery", "The images the app's Gallery screen draws: natural images beside their constructed versions",
        None, runner="gallery",
        deps=(*(str(paths.dataset_path(s)) for s in ("D_R", "D_NR", "D_rand", "D_det")),
              *(str(paths.model_path(m)) for m in ("standard", "robust_l2")), str(paths.retrained_dir("natural"))),
        params=(*_COMMON, _NATURAL_SIZE, "gallery"),
        outs=(str(paths.GALLERY),),
    ),
    Family(
        "source_cl", "E5/E6", "E6: the Linf-robust CL source model of D_R_CL (adversarial SimCLR on the natural images)",
        None, runner="pretrain", single=ROBUST_CL,
        deps=(NATURAL_DATA,),
        params=(*_COMMON, _NATURAL_SIZE, f"paradigms.{ROBUST_CL}", *LAUNCH_PARAMS),
        outs=(str(paths.model_path(ROBUST_CL)), str(paths.live_dir("E6", ROBUST_CL))),
        metrics=(str(paths.metrics_path("pretrain", ROBUST_CL)),),
    ),
    Family(
        "pretrain", "E5/E6", "E5/E6: every paradigm pretrained on every training set (Li Tables 1, 2b)",
        _matrix_items(matrix_runs(), with_data=True), runner="pretrain",
        deps=(item("data"),),
        params=(*_COMMON, _NATURAL_SIZE, f"paradigms.{item('paradigm')}", *LAUNCH_PARAMS),
        outs=(str(paths.encoder_path(KEY)), str(paths.live_dir("E5", KEY))),
        metrics=(str(paths.metrics_path("pretrain", KEY)),),
    ),
    Family(
        "probe", "E5/E6", "E5: a linear probe on each frozen encoder, trained on the encoder's own set; U on natural test data",
        _matrix_items(matrix_runs(), with_data=True), runner="probe",
        deps=(str(paths.encoder_path(KEY)), item("data")),
        params=(*_COMMON, _NATURAL_SIZE, "probe"),
        outs=(str(paths.probe_path(KEY)), str(paths.live_dir("E5-probe", KEY))),
        metrics=(str(paths.metrics_path("E5", KEY)),),
    ),
    Family(
        "attack", "E5/E6",
        "E6 (Li Table 2b): PGD and AutoAttack at Linf 4/255 on encoder + probe ('rand' for randomised encoders "
        "and e6.rand_paradigms)",
        tuple(r for r in attacked_runs() if not r.startswith("SL-")), runner="attack",
        deps=(str(paths.probe_path(KEY)), str(paths.encoder_path(KEY))),
        params=(*_COMMON, "e6.test_size", "e6.rand_test_size", "e6.rand_paradigms", "e6.batch_size", "e6.linf", _SPEED),
        metrics=(str(paths.metrics_path("E6", KEY)),),
    ),
    Family(
        "attack_sl", "E5/E6", "E6 (Li Tables 2a, 2b): SL under L2 0.5 and Linf 4/255, PGD and AutoAttack",
        tuple(r for r in attacked_runs() if r.startswith("SL-")), runner="attack",
        deps=(str(paths.probe_path(KEY)), str(paths.encoder_path(KEY))),
        params=(*_COMMON, "e6.test_size", "e6.rand_test_size", "e6.rand_paradigms", "e6.batch_size", "e6.l2", "e6.linf",
                _SPEED),
        metrics=(str(paths.metrics_path("E6", KEY)),),
    ),
    Family(
        "report", "report", "The report: every experiment's table from the metrics files, beside the published figures",
        None, cmd="advtui report --write",
        deps=tuple(str(paths.METRICS / e) for e in ("E1", "construct", "E4", "curves", "E5", "E6", "E7", "E8", "E13",
                                                    "E14", "E16", "E18", "E9", "E11", "E12", "E15", "E17")),
        outs=(str(paths.REPORT_MD), str(paths.REPORT_JSON)),
        code=("advtui.cli.report",),
    ),
    Family(
        "objectives", "E7/E8",
        "E7 (Li Fig. 2, Table 7): the SL and CL encoder + probe under APGD on each attack objective (CE, InfoNCE and "
        "its ablations, alignment)",
        E7_PARADIGMS, runner="objectives",
        deps=(str(paths.probe_path(run_name(KEY, "natural"))), str(paths.encoder_path(run_name(KEY, "natural"))),
              NATURAL_DATA),
        params=(*_COMMON, _NATURAL_SIZE, "e7", "paradigms.CL.config"),
        outs=(str(paths.live_dir("E7", KEY)),),
        metrics=(str(paths.metrics_path("E7", KEY)),),
    ),
    Family(
        "backbones", "E7/E8", "E8: the extra SL backbones (e8.backbones), pretrained with SL's recipe and probed",
        None, runner="backbones", single="E8",
        deps=(NATURAL_DATA,),
        params=(*_COMMON, _NATURAL_SIZE, "e8.backbones", "paradigms.SL", "probe"),
        outs=(str(paths.BACKBONES), str(paths.DATA / "live" / "E8")),
        metrics=(str(paths.metrics_path("E8", "backbones")),),
    ),
    Family(
        "transfer", "E7/E8",
        "E8 (Li Fig. 3): APGD-CE on every paradigm's and SL backbone's classifier, each evaluated on every other's images",
        None, runner="transfer", single="matrix",
        deps=(str(paths.BACKBONES), *(str(paths.probe_path(run_name(p, "natural"))) for p in PARADIGMS),
              *(str(paths.encoder_path(run_name(p, "natural"))) for p in PARADIGMS)),
        params=(*_COMMON, "e8"),
        metrics=(str(paths.metrics_path("E8", "matrix")),),
    ),
    Family(
        "gaussian", "E13", "E13: Ilyas's Gaussian model, the closed-form robust MLE against a simulated one",
        None, runner="gaussian", single="gaussian",
        params=("seed", "e13"),
        outs=(str(paths.CURVES / "E13"),),
        metrics=(str(paths.metrics_path("E13", "gaussian")),),
    ),
    Family(
        "leakage", "E14", "E14: robust feature leakage in D_rand and D_det (Goh): shape probe, linear lower bound",
        None, runner="leakage", single="leakage",
        deps=tuple(str(paths.dataset_path(s)) for s in ("D_rand", "D_det")),
        params=(*_COMMON, _NATURAL_SIZE, "e14"),
        metrics=(str(paths.metrics_path("E14", "leakage")),),
    ),
    Family(
        "mislabelled", "E16", "E16: a fresh model trained on a weak model's errors alone (Wallace); the noise control",
        None, runner="mislabelled", single="mislabelled",
        deps=(NATURAL_DATA,),
        params=(*_COMMON, "model", "e16"),
        metrics=(str(paths.metrics_path("E16", "mislabelled")),),
    ),
    Family(
        "frequency", "E18", "E18: a classifier trained on high-passed natural images only, tested on natural data",
        None, runner="frequency", single="frequency",
        deps=(NATURAL_DATA,),
        params=(*_COMMON, "model", _NATURAL_SIZE, "e18"),
        metrics=(str(paths.metrics_path("E18", "frequency")),),
    ),
    Family(
        "world1", "E18", "E18: E4's natural, D_rand and D_det classifiers tested without the planted pattern (World 1)",
        None, runner="world1", single="world1",
        deps=tuple(str(paths.retrained_dir(s)) for s in ("natural", "D_rand", "D_det")),
        params=(*_COMMON, "retrain.seeds"),
        metrics=(str(paths.metrics_path("E18", "world1")),),
    ),
    Family(
        "robustified", "E9-E11",
        "E9/E10 (Springer Tables 1, 5, Figs. 3, 4): the test set inverted through each eps-robust source (the sweep's "
        "missing sources trained here), four classifiers on each, with and without the non-robust subspace",
        None, runner="robustified", single="robustified",
        deps=(str(paths.model_path("standard")), str(paths.model_path("robust_l2")),
              *(str(paths.retrained_dir(s)) for s in ("natural", "zero_robust", "neg_robust")), NATURAL_DATA),
        params=(*_COMMON, "model", "sources.train", "sources.robust_l2", "retrain.seeds", "e9"),
        outs=(str(paths.SWEEP), str(paths.CURVES / "E10")),
        metrics=(str(paths.metrics_path("E9", "robustified")),),
    ),
    Family(
        "slight_transfer", "E9-E11",
        "E11 (Springer Figs. 5, 6): untargeted and targeted L2 PGD on each eps-robust source, transferred to standard "
        "classifiers of other architectures",
        None, runner="slight_transfer", single="slight_transfer",
        deps=(str(paths.SWEEP), str(paths.model_path("standard")), str(paths.model_path("robust_l2")),
              str(paths.BACKBONES), str(paths.retrained_dir("natural")), NATURAL_DATA),
        params=(*_COMMON, "e9.eps", "sources.robust_l2.adversarial.eps", "e8.backbones", "e11"),
        outs=(str(paths.CURVES / "E11"),),
        metrics=(str(paths.metrics_path("E11", "slight_transfer")),),
    ),
    Family(
        "learnability", "E12",
        "E12 (Ilyas Fig. 3): e12.archs trained on D_det; transfer of the standard source's targeted examples to each",
        None, runner="learnability", single="learnability",
        deps=(str(paths.dataset_path("D_det")), str(paths.model_path("standard")), str(paths.retrained_dir("natural")),
              str(paths.retrained_dir("D_det")), str(paths.BACKBONES), NATURAL_DATA),
        params=(*_COMMON, "model", _NATURAL_SIZE, "construct.relabel", "retrain.seeds", "e8.backbones", "e12"),
        outs=(str(paths.CURVES / "E12"),),
        metrics=(str(paths.metrics_path("E12", "learnability")),),
    ),
    Family(
        "bugs_only", "E15",
        "E15 (Nakkiran): targeted PGD on the source keeping E4's natural models on the true label; a model trained on it",
        None, runner="bugs_only", single="bugs_only",
        deps=(str(paths.model_path("standard")), str(paths.retrained_dir("natural")), NATURAL_DATA),
        params=(*_COMMON, "model", _NATURAL_SIZE, "retrain.seeds", "e15"),
        outs=(str(paths.CURVES / "E15"),),
        metrics=(str(paths.metrics_path("E15", "bugs_only")),),
    ),
    Family(
        "layers", "E17", "E17 (Nakano): the robustness ratio of every block of the standard and robust E1 sources",
        None, runner="layers", single="layers",
        deps=tuple(str(paths.model_path(m)) for m in SOURCE_MODELS),
        params=(*_COMMON, "e17"),
        outs=(str(paths.CURVES / "E17"),),
        metrics=(str(paths.metrics_path("E17", "layers")),),
    ),
)

@dataclass(frozen=True)
class Plot:
    """One ``dvc plots`` figure: tsv file -> y column, all against column ``x``."""

    files: dict[str, str]
    x: str = "step"
    template: str = "linear"


def _curve_plot(experiment: str, models: tuple[str, ...], norm: str) -> Plot:
    return Plot({str(paths.curve_tsv(experiment, m, norm)): "robust_acc" for m in models}, x="eps")


#: ``dvc plots show``: curves worth comparing side by side (title -> plot).
PLOTS: dict[str, Plot] = {
    "E1 training loss": Plot({f"{paths.live_dir('E1', m)}/plots/metrics/train/loss.tsv": "loss" for m in SOURCE_MODELS}),
    "E4 test accuracy per epoch (first seed)": Plot({
        f"{paths.seed_dir(paths.live_dir('E4', s), 0)}/plots/metrics/epoch/test_acc.tsv": "test_acc"
        for s in ("natural", NATURAL_NOPATTERN, "D_R", "D_NR", "D_rand", "D_det")}),
    "E5 pretraining loss (natural images)": Plot({
        f"{paths.live_dir('E5', run_name(p, 'natural'))}/plots/metrics/train/loss.tsv": "loss" for p in PARADIGMS}),
    **{f"{e} robust accuracy against {norm} eps": _curve_plot(e, models, norm)
       for e, models in CURVE_MODELS.items() for norm in ("l2", "linf")},
    **{f"E13 {label} against eps (closed form, simulated)": Plot(
        {str(paths.curve_tsv("E13", source, "l2")): column for source in ("analytic", "simulated")}, x="eps")
       for column, label in (("condition", "condition number of Sigma"), ("alignment", "gradient alignment"))},
    # Li's Fig. 2: both losses at each APGD iterate, per encoder and attack (E7's DVCLive logs)
    **{f"E7 {p} encoder under the {a} attack: CE and InfoNCE loss per APGD iteration": Plot({
        f"{paths.live_dir('E7', p)}/{a}/plots/metrics/loss/{loss}.tsv": loss for loss in ("ce", "infonce")})
       for p in E7_PARADIGMS for a in ("ce", "infonce_proj_aug")},
    # Springer Figs. 3, 4: the standard classifiers' accuracy on R_eps and each source's clean accuracy against eps
    "E10 accuracy against the source's eps (standard on R_eps, source clean)": Plot({
        str(paths.CURVES / "E10" / f"{c}.tsv"): "acc" for c in ("standard_on_R", "source_clean")}, x="eps"),
    # Springer Figs. 5, 6: on the source itself (white box), on the other architectures (mean over E8's SL backbones:
    # each one's curve is in data/figures/E11_transfer) and on E4's natural classifier (the sources' architecture)
    **{f"E11 {label} against the source's eps": Plot({
        str(paths.CURVES / "E11" / f"{mode}-{v}.tsv"): "rate" for v in ("white_box", "other_arch", "same_arch")},
        x="eps") for mode, label in (("untargeted", "untargeted error rate"), ("targeted", "targeted hit rate"))},
    # Ilyas's Fig. 3: one point per architecture, and E15's bugs-only set
    "E12 D_det test accuracy against transfer success (E15: the bugs-only set)": Plot({
        str(paths.curve_tsv("E12", "archs", "l2")): "det_acc", str(paths.curve_tsv("E15", "bugs_only", "l2")): "det_acc"},
        x="transfer_success", template="scatter"),
    "E17 layer robustness ratio per block (standard, robust_l2)": Plot({
        str(paths.curve_tsv("E17", m, "l2")): "ratio" for m in ("standard", "robust_l2")}, x="block"),
}
#: ``dvc plots show`` images: figure files drawn by the ``figures`` stage (Li's Fig. 3 as a heatmap; Springer's Figs.
#: 3-6 with their intervals, which dvc's line plots cannot draw).
IMAGE_PLOTS: tuple[str, ...] = (str(paths.FIGURES / "E8_transfer.png"), str(paths.FIGURES / "E10_universality.png"),
                                str(paths.FIGURES / "E11_transfer.png"))


def runner_names(runner: str) -> list[str]:
    """The names ``advtui stage RUNNER NAME`` accepts: every stage dvc.yaml runs through it."""
    return [n for fam in FAMILIES if fam.runner == runner for n in (fam.keys() or [fam.single])]


def runner_help() -> dict[str, str]:
    """``advtui stage`` families: what each runs, and its names."""
    helps: dict[str, list[str]] = {}
    for fam in FAMILIES:
        if fam.runner:
            helps.setdefault(fam.runner, []).append(fam.comment)
    return {r: f"{' / '.join(c)} ({', '.join(runner_names(r))})" for r, c in helps.items()}


def group_of(family_name: str) -> str:
    """The experiment group the app shows family ``family_name`` under (a family not in the table: its name)."""
    fam = next((f for f in FAMILIES if f.name == family_name), None)
    return EXPERIMENTS[fam.experiment] if fam else family_name


def stage_name(runner: str, name: str) -> str:
    """The ``dvc.yaml`` stage that runs ``advtui stage RUNNER NAME`` (``construct@D_R``; ``source_cl`` for
    ``pretrain robust_cl``): what its progress file, lock and resume folder are named after."""
    for fam in FAMILIES:
        if fam.runner == runner and name in (fam.keys() or [fam.single]):
            return f"{fam.name}@{name}" if fam.items is not None else fam.name
    names = runner_names(runner)
    if not names:
        raise ValueError(f"stage: unknown family {runner!r}; use one of {', '.join(runner_help())}")
    choice = names[0] if len(names) == 1 else f"one of {', '.join(names)}"
    raise ValueError(f"stage {runner}: unknown name {name!r}; use {choice}")


def family(name: str) -> Family:
    """The family called ``name`` (ValueError naming the choices otherwise)."""
    for fam in FAMILIES:
        if fam.name == name:
            return fam
    raise ValueError(f"stage family: unknown {name!r}; use one of {', '.join(f.name for f in FAMILIES)}")


def stage_of(path: str | Path) -> str | None:
    """The ``dvc repro`` target that writes ``path`` (an out or metrics file, or a file in an out folder), or None."""
    wanted = Path(path).as_posix()
    for fam in FAMILIES:
        for key in fam.keys() or [None]:
            for out in (*fam.outs, *fam.metrics):
                expanded = _expand(out, key, fam)
                if wanted == expanded or wanted.startswith(f"{expanded}/"):
                    return f"{fam.name}@{key}" if key is not None else fam.name
    return None


def _expand(template: str, key: str | None, fam: Family) -> str:
    if key is None:
        return template
    fields = fam.items[key] if isinstance(fam.items, dict) else {}
    text = template.replace(KEY, key)
    return re.sub(r"\$\{item\.(\w+)\}", lambda m: fields[m.group(1)], text).replace(ITEM, key)


# --- dvc.yaml rendering --------------------------------------------------------------------------------------

_PLAIN = re.compile(r"[A-Za-z0-9_./@${}+-][A-Za-z0-9_./@${}+ -]*")


def _scalar(value: str) -> str:
    # Plain YAML where it reads back as the same string, JSON-quoted otherwise.
    plain = _PLAIN.fullmatch(value) and not value.endswith(" ") and not value.startswith("{") and value not in (
        "true", "false", "null", "yes", "no", "on", "off")
    return value if plain else json.dumps(value)


def _list(key: str, values: list[str], indent: str, persist: bool = False) -> list[str]:
    if not values:
        return []
    lines = [f"{indent}{key}:"]
    for value in values:
        lines.append(f"{indent}  - {_scalar(value)}:" if persist else f"{indent}  - {_scalar(value)}")
        if persist:
            lines.append(f"{indent}      persist: true")
    return lines


def _body(fam: Family, indent: str) -> list[str]:
    # A foreach over a list names its element ${item}; ${key} exists only for a foreach over a mapping.
    var = (lambda t: t.replace(KEY, ITEM)) if isinstance(fam.items, tuple) else (lambda t: t)
    lines = [f"{indent}cmd: {_scalar(var(fam.command()))}"]
    lines += _list("deps", [*fam.code_deps(), *map(var, fam.deps)], indent)
    lines += _list("params", [var(p) for p in fam.params], indent)
    lines += _list("outs", [var(o) for o in fam.outs], indent, persist=True)
    lines += _list("metrics", [var(m) for m in fam.metrics], indent, persist=True)
    return lines


def _foreach(items: tuple[str, ...] | dict[str, dict[str, str]]) -> list[str]:
    if not isinstance(items, dict):
        return [f"    foreach: [{', '.join(_scalar(i) for i in items)}]"]
    lines = ["    foreach:"]
    for key, fields in items.items():
        inner = ", ".join(f"{k}: {_scalar(v)}" for k, v in fields.items())
        lines.append(f"      {_scalar(key)}: {{{inner}}}")
    return lines


HEADER = """\
# Generated by `advtui dvc-yaml` from advtui/catalog/stages.py: edit that table, then regenerate (a test
# fails while this file and the table differ).
#
# Every stage is a plain `advtui` command with declared deps, params and outs. Its deps are the artifacts it
# reads and every advtui source file it runs (the import closure of its modules), so a code change reruns
# exactly the stages that run that code. Each stage lists only the params keys it reads. Outs are
# `persist: true`: DVC does not delete them before a rerun, so a failed or interrupted stage never destroys
# what was built (advtui writes each artifact atomically and resumes from its checkpoints/chunks instead).
# Every out is cached, so `dvc push`/`dvc pull` move all of them and git tracks only dvc.lock.
"""


def render_dvc_yaml() -> str:
    """The text of ``dvc.yaml`` for :data:`FAMILIES` and :data:`PLOTS`."""
    lines = [HEADER.rstrip("\n"), "", "stages:"]
    for fam in FAMILIES:
        lines.append(f"  # {fam.comment}")
        lines.append(f"  {fam.name}:")
        if fam.items is None:
            lines += _body(fam, "    ")
        else:
            lines += _foreach(fam.items)
            lines.append("    do:")
            lines += _body(fam, "      ")
        lines.append("")
    lines.append("plots:")
    for title, plot in PLOTS.items():
        lines += [f"  - {_scalar(title)}:", f"      template: {plot.template}", f"      x: {plot.x}", "      y:"]
        lines += [f"        {_scalar(path)}: {_scalar(column)}" for path, column in plot.files.items()]
    lines += [f"  - {_scalar(path)}" for path in IMAGE_PLOTS]
    return "\n".join(lines) + "\n"


def dvc_yaml_path(root: Path = ROOT) -> Path:
    """The project's ``dvc.yaml``."""
    return root / DVC_YAML
