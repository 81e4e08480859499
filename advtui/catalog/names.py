"""The names of the experiments' parts: source models, constructed sets and their recipes, training sets,
paradigms and the cells of Li et al.'s matrix. Stages, report, CLI, app and ``dvc.yaml`` read them here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The params profiles shipped in ``advtui/catalog/profiles/<name>.yaml``.
PROFILES = ("smoke", "cifar-mini", "cpu", "paper", "gpu-fast")
#: E1 source models: standard and PGD adversarially trained (L2, Linf) classifiers.
SOURCE_MODELS = ("standard", "robust_l2", "robust_linf")
#: The adversarially trained (Linf) SimCLR encoder that D_R_CL is made from (stored beside the E1 models).
ROBUST_CL = "robust_cl"


@dataclass(frozen=True)
class Recipe:
    """How one constructed dataset is made."""

    method: Literal["invert", "relabel"]
    model: str  # the source model it attacks or inverts (E1's, or robust_cl: an encoder, inverted only)
    settings: str  # the ``construct`` params section holding its attack settings
    targets: Literal["random", "next", "all"] | None = None


#: E2/E3 constructed datasets (Ilyas: D_R, D_NR, D_rand, D_det; Springer: zero-/negative-robust).
RECIPES: dict[str, Recipe] = {
    "D_R": Recipe("invert", "robust_l2", "robust"),
    "D_NR": Recipe("invert", "standard", "nonrobust"),
    "D_rand": Recipe("relabel", "standard", "relabel", "random"),
    "D_det": Recipe("relabel", "standard", "relabel", "next"),
    "zero_robust": Recipe("relabel", "standard", "springer", "all"),
    "neg_robust": Recipe("relabel", "standard", "springer", "next"),
    # Li Table 2: robust sets from Linf-robust sources, a supervised one and an adversarially trained
    # SimCLR encoder (the pipeline's robust_cl); both with D_R's inversion settings
    "D_R_linf": Recipe("invert", "robust_linf", "robust"),
    "D_R_CL": Recipe("invert", ROBUST_CL, "robust"),
}


def recipe(name: str) -> Recipe:
    """The recipe of constructed dataset ``name``."""
    if name not in RECIPES:
        raise ValueError(f"dataset: unknown constructed dataset {name!r}; use one of {', '.join(RECIPES)}")
    return RECIPES[name]


#: The E4 control set: the natural images with their planted non-robust pattern removed (synthetic data only).
NATURAL_NOPATTERN = "natural_nopattern"
#: Training sets of the E4 table, in its row order ("natural": the images the constructions start from).
TRAINING_SETS = ("natural", NATURAL_NOPATTERN, "D_R", "D_NR", "D_rand", "D_det", "zero_robust", "neg_robust")
#: Training sets that exist only where the ground truth does (synthetic data), with the note a row of such a set
#: carries elsewhere: its stage still runs and writes a row marked not applicable, since dvc.yaml is the same
#: for every data source.
SYNTHETIC_ONLY: dict[str, str] = {NATURAL_NOPATTERN: "synthetic only"}
#: Sets trained with Springer et al.'s recipe for zero-/negative-robust classifiers.
SPRINGER_SETS = ("zero_robust", "neg_robust")

#: The paradigm set T of Li et al.'s tables, in their column order.
PARADIGMS = ("MIM", "CL", "DM", "SL")
#: Training sets every paradigm is pretrained on: natural images, D_R / D_NR of E2 (Table 1), and the
#: robust sets of Table 2b, from the Linf-robust SL source (D_R_linf) and the Linf-robust CL source (D_R_CL).
PARADIGM_SETS = ("natural", "D_R", "D_NR", "D_R_linf", "D_R_CL")
#: Rows of Table 1 (E5).
E5_SETS = ("natural", "D_R", "D_NR")
#: Rows of Table 2b.
E6_SETS = ("natural", "D_R_linf", "D_R_CL")
#: Rows of Table 2a: SL on the robust sets of the L2- and the Linf-robust SL sources.
E6_SL_SETS = ("D_R", "D_R_linf")


def run_name(paradigm: str, dataset: str) -> str:
    """Stage and file name of one cell of the matrix, e.g. 'CL-D_R'."""
    return f"{paradigm}-{dataset}"


def parse_run_name(name: str) -> tuple[str, str]:
    """(paradigm, training set) of a name made by :func:`run_name`."""
    paradigm, _, dataset = name.partition("-")
    if paradigm not in PARADIGMS or dataset not in PARADIGM_SETS:
        raise ValueError(f"run: unknown paradigm run {name!r}; use one of {', '.join(matrix_runs())}")
    return paradigm, dataset


def matrix_runs() -> list[str]:
    """Every cell of the matrix: each paradigm pretrained (and probed) on each training set."""
    return [run_name(p, d) for p in PARADIGMS for d in PARADIGM_SETS]


def attacked_runs() -> list[str]:
    """The cells E6 attacks: every paradigm on Table 2b's sets, and SL on Table 2a's too."""
    runs = [run_name(p, d) for p in PARADIGMS for d in E6_SETS]
    return runs + [run_name("SL", d) for d in E6_SL_SETS if d not in E6_SETS]


#: Constructed sets the gallery shows beside each natural image, with the captions the app shows.
GALLERY_SETS: dict[str, str] = {
    "D_R": "robust features: inverted through the L2-robust model, label kept",
    "D_NR": "non-robust features: inverted through the standard model within a small ball, label kept",
    "D_rand": "targeted PGD on the standard model towards a random label, relabelled",
    "D_det": "targeted PGD on the standard model towards y+1, relabelled",
}
#: Models whose predictions the gallery shows (name: description): the E4 natural-data classifier and two
#: E1 sources.
GALLERY_MODELS: dict[str, str] = {
    "natural": "E4 natural-data model (first seed)",
    "standard": "standard source",
    "robust_l2": "L2-robust source",
}


#: The classifiers whose robust accuracy is measured against eps, per experiment (one curve stage each: a
#: stage per model would spend more on starting Python and torch than on the attacks).
CURVE_MODELS: dict[str, tuple[str, ...]] = {"E1": SOURCE_MODELS, "E4": TRAINING_SETS}


def curve_runs() -> list[str]:
    """Every curve's name, ``<experiment>-<model>`` (``E4-D_R``), in report order."""
    return [f"{e}-{m}" for e, models in CURVE_MODELS.items() for m in models]


#: E7 (Li et al. section 5.1, Table 7): the encoders attacked with every objective, and the objectives in the
#: table's row order with what each row says. InfoNCE's variants run with and without the projection head and the
#: SimCLR views; "alignment" is Li's Eq. 15, ||f(x) - f(x')||^2; "ce" the cross-entropy of the linear probe.
E7_PARADIGMS = ("SL", "CL")
E7_OBJECTIVES: dict[str, str] = {
    "infonce_proj_aug": "InfoNCE + projector + augmentation (default)",
    "infonce_proj": "InfoNCE + projector",
    "infonce_aug": "InfoNCE + augmentation",
    "infonce": "InfoNCE",
    "alignment": "alignment only, ||f(x) - f(x')||^2",
    "ce": "CE (linear head)",
}
#: E8's extra supervised backbones (``e8.backbones``, trained by the ``backbones`` stage) go by ``SL-<arch>``.
BACKBONE_PREFIX = "SL-"


def backbone_name(arch: str) -> str:
    """The name an E8 supervised backbone goes by in the transfer matrix (``SL-resnet50``)."""
    return f"{BACKBONE_PREFIX}{arch}"


def transfer_models(backbones: tuple[str, ...] | list[str]) -> list[str]:
    """E8's classifiers, sources and targets alike: every paradigm's natural-image run, then the extra SL backbones."""
    return [*PARADIGMS, *(backbone_name(a) for a in backbones)]


#: E9-E11 (Springer et al. 2021): the classifiers evaluated on every robustified test set, in Table 5's row order,
#: with where each comes from (E4's natural-data classifiers stand for Springer's standard classifier C', trained
#: apart from the eps-robust sources; E1's robust_l2 for the robust one).
E9_CLASSIFIERS: dict[str, str] = {
    "standard": "E4 natural",
    "robust": "E1 robust_l2",
    "zero_robust": "E4 zero_robust",
    "neg_robust": "E4 neg_robust",
}


def sweep_name(eps: float) -> str:
    """The name an eps-robust source of the E9-E11 sweep goes by (``eps_0.25``): ``%g`` of its radius."""
    return f"eps_{eps:g}"
