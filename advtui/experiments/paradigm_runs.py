"""E5 and E6 (Li et al. 2023, Tables 1 and 2): pretrain each paradigm on each training set, probe, attack.

One run of the matrix is three steps, each a pipeline stage:

1. :func:`pretrain`: train paradigm T's module on training set g (natural images, or a constructed set)
   through the one trainer loop and store it with ``save_encoder``;
2. :func:`probe`: a linear head on the frozen encoder, trained on the same g, tested on the natural test
   set: the usefulness U(g, D, T) of Eq. 7;
3. :func:`attack`: PGD and AutoAttack on encoder + head: the robustness R(g, D, T) of Eq. 8, under the
   budgets of Li's Table 2 (L2 0.5, Linf 4/255). AutoAttack's version follows the encoder: 'rand' (EOT)
   for randomised encoders, 'standard' otherwise (Li A.4).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from advtui.attacks.evaluate import AttackSpec
from advtui.data.imageset import ImageSet
from advtui.data.sources import load_source
from advtui.experiments.common import DataParams, image_size
from advtui.experiments.construct import ConstructParams, source_images
from advtui.experiments.evaluation import ProgressFn, evaluate_classifier
from advtui.experiments.probe import load_probe, probe_accuracy, save_probe, train_probe
from advtui.report.usefulness import PARADIGMS, autoattack_version
from advtui.paradigms.encoder import get_paradigm, list_paradigms, load_encoder, save_encoder
from advtui.paradigms.trainer import EpochHook, TrainConfig, fit
from advtui.runtime import pick_device, seed_everything

#: Training sets every paradigm is pretrained on: natural images, D_R / D_NR of E2 (Table 1), and the
#: robust sets of Table 2b, from the Linf-robust SL source (D_R_linf) and the Linf-robust CL source (D_R_CL).
PARADIGM_SETS = ("natural", "D_R", "D_NR", "D_R_linf", "D_R_CL")
#: Rows of Table 2b.
E6_SETS = ("natural", "D_R_linf", "D_R_CL")
#: Rows of Table 2a: SL on the robust sets of the L2- and the Linf-robust SL sources.
E6_SL_SETS = ("D_R", "D_R_linf")
#: The adversarially trained (Linf) SimCLR encoder that D_R_CL is made from.
ROBUST_CL = "robust_cl"


def run_name(paradigm: str, dataset: str) -> str:
    """Stage and file name of one cell of the matrix, e.g. 'CL-D_R'."""
    return f"{paradigm}-{dataset}"


def parse_run_name(name: str) -> tuple[str, str]:
    """(paradigm, training set) of a name made by :func:`run_name`."""
    paradigm, _, dataset = name.partition("-")
    if paradigm not in PARADIGMS or dataset not in PARADIGM_SETS:
        cells = ", ".join(run_name(p, d) for p in PARADIGMS for d in PARADIGM_SETS)
        raise ValueError(f"run: unknown paradigm run {name!r}; use one of {cells}")
    return paradigm, dataset


def attacked_runs() -> list[str]:
    """The cells E6 attacks: every paradigm on Table 2b's sets, and SL on Table 2a's too."""
    runs = [run_name(p, d) for p in PARADIGMS for d in E6_SETS]
    return runs + [run_name("SL", d) for d in E6_SL_SETS if d not in E6_SETS]


def _paradigm_run_type(paradigm: str) -> type:
    """The params dataclass of one paradigm's pretraining: ``config`` (its own config type) and ``train``."""
    config_type = get_paradigm(paradigm).config_type
    cls = dataclasses.make_dataclass(
        f"{paradigm}Run",
        [
            ("config", config_type, field(default_factory=config_type)),
            ("train", TrainConfig, field(default_factory=TrainConfig)),
        ],
        frozen=True,
    )
    cls.__doc__ = f"{paradigm} pretraining: ``config`` ({config_type.__name__}) and trainer settings ``train``."
    return cls


def _paradigms_params_type() -> type:
    # Built from the registry so that each paradigm's section is validated against its own config type
    # (a typo in paradigms.CL.config fails with the key's path, like every other params key).
    names = [p for p in PARADIGMS if p in list_paradigms()]
    types = {p: _paradigm_run_type(p) for p in names}
    fields: list[Any] = [(p, types[p], field(default_factory=types[p])) for p in names]
    if "CL" in names:
        fields.append((ROBUST_CL, types["CL"], field(default_factory=types["CL"])))
    cls = dataclasses.make_dataclass("ParadigmsParams", fields, frozen=True)
    cls.__doc__ = ("Pretraining of E5/E6 (``paradigms`` in params.yaml): one section per paradigm, and "
                   f"``{ROBUST_CL}``, the adversarially trained CL source of D_R_CL.")
    return cls


ParadigmsParams = _paradigms_params_type()


def paradigm_run(paradigms: Any, name: str) -> Any:
    """The ``{config, train}`` section of paradigm ``name`` (or of ``robust_cl``) in ``paradigms``."""
    if not hasattr(paradigms, name):
        raise ValueError(f"paradigms: no section {name!r}; its paradigm is not registered (see `advtui models`)")
    return getattr(paradigms, name)


@dataclass(frozen=True)
class ProbeParams:
    """Linear probing (Li Table 6, CIFAR-10: 30 epochs, batch 256, lr 0.1 cosine, wd 5e-4, augmentation)."""

    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(epochs=30, batch_size=256, lr=0.1, weight_decay=5e-4)
    )


@dataclass(frozen=True)
class ThreatBudget:
    """One threat model of Table 2: ``pgd`` (Li A.4: PGD-1000) and AutoAttack at radius ``autoattack_eps``."""

    pgd: AttackSpec
    autoattack_eps: float

    def __post_init__(self) -> None:
        if self.pgd.kind != "pgd":
            raise ValueError(f"pgd: kind must be 'pgd', got {self.pgd.kind!r}; AutoAttack is set by autoattack_eps")
        if not self.autoattack_eps > 0:
            raise ValueError(f"autoattack_eps: must be > 0, got {self.autoattack_eps}; use the threat's radius")

    def specs(self, randomised: bool) -> dict[str, list[AttackSpec]]:
        """PGD and AutoAttack as two separate evaluations ('pgd_<norm>', 'autoattack_<norm>')."""
        aa = AttackSpec(kind="autoattack", norm=self.pgd.norm, eps=self.autoattack_eps,
                        version=autoattack_version(randomised))
        return {f"pgd_{self.pgd.norm}": [self.pgd], f"autoattack_{self.pgd.norm}": [aa]}


@dataclass(frozen=True)
class E6Params:
    """E6 robustness evaluation (Li Table 2 and A.4): L2 eps 0.5 and Linf eps 4/255, PGD-1000 and AutoAttack.

    ``test_size``: natural test images attacked (a class-balanced subset; null: the whole test set);
    ``rand_test_size``: the same for randomised encoders, whose AutoAttack ('rand') averages 20 EOT
    gradients per step and so costs 20 times as much (null: ``test_size``). SL runs are attacked under
    both threats (Table 2a), the other paradigms under Linf (Table 2b).
    """

    test_size: int | None = 1000
    rand_test_size: int | None = None
    batch_size: int = 256
    l2: ThreatBudget = field(
        default_factory=lambda: ThreatBudget(AttackSpec(norm="l2", eps=0.5, steps=1000, step_size=0.05), 0.5)
    )
    linf: ThreatBudget = field(
        default_factory=lambda: ThreatBudget(
            AttackSpec(norm="linf", eps=4 / 255, steps=1000, step_size=1 / 255), 4 / 255
        )
    )

    def __post_init__(self) -> None:
        for name in ("test_size", "rand_test_size"):
            size = getattr(self, name)
            if size is not None and size < 1:
                raise ValueError(f"{name}: must be a positive count or null, got {size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {self.batch_size}")
        for name in ("l2", "linf"):
            if getattr(self, name).pgd.norm != name:
                raise ValueError(f"{name}.pgd.norm: must be {name!r} in the {name} section; fix the norm")

    def attacked_size(self, randomised: bool) -> int | None:
        """How many test images an encoder is attacked on (None: all)."""
        return self.rand_test_size if randomised and self.rand_test_size is not None else self.test_size

    def threats(self, paradigm: str, randomised: bool) -> dict[str, list[AttackSpec]]:
        """The evaluations of one run: Linf for every paradigm, L2 as well for SL (Table 2a)."""
        threats = self.linf.specs(randomised)
        return {**self.l2.specs(randomised), **threats} if paradigm == "SL" else threats


def training_set(
    dataset: str, *, dataset_path: Path | None, construct: ConstructParams, data: DataParams, seed: int
) -> ImageSet:
    """Training set ``dataset``: the natural images the constructions start from, or a constructed set."""
    if dataset == "natural":
        return source_images(construct.size, data, seed)
    if dataset_path is None or not Path(dataset_path).exists():
        raise FileNotFoundError(f"{dataset_path}: constructed dataset missing; run `dvc repro construct@{dataset}` first")
    return load_source("constructed", "train", root=str(dataset_path))


def pretrain(
    paradigm: str,
    run: Any,
    train: ImageSet,
    *,
    out: Path,
    live_dir: Path | None,
    device: str,
    seed: int,
    sources: list[str],
    progress: bool = True,
    on_epoch: EpochHook | None = None,
) -> dict[str, Any]:
    """Pretrain ``paradigm`` with ``run`` (its ``config`` and ``train`` settings) on ``train``; store it at ``out``.

    Resumes from ``<out>.ckpt`` after an interruption (removed once the encoder is stored). Returns the
    last epoch's training metrics (``train_loss``, ``images_per_s``...), ``n_train`` and ``seconds``.
    """
    impl = get_paradigm(paradigm)
    dev = pick_device(device)
    seed_everything(seed)
    size = image_size(train)
    module = impl.build(run.config, num_classes=train.num_classes, image_size=size)
    checkpoint = Path(out).with_suffix(".ckpt")
    started = time.perf_counter()
    metrics = fit(
        module, train, run.train, impl.step(run.config), checkpoint=checkpoint, live_dir=live_dir, device=dev,
        seed=seed, identity={"paradigm": paradigm, "config": asdict(run.config)}, on_epoch=on_epoch,
        progress=progress,
    )
    used = {"seed": seed, "paradigm": paradigm, "config": asdict(run.config), "train": asdict(run.train),
            "n_train": len(train)}
    save_encoder(out, paradigm, module, run.config, num_classes=train.num_classes, image_size=size,
                 sources=sources, params=used)
    checkpoint.unlink(missing_ok=True)
    return {"paradigm": paradigm, "n_train": len(train), **metrics, "seconds": time.perf_counter() - started}


def probe(
    encoder_path: Path,
    train: ImageSet,
    test: ImageSet,
    cfg: ProbeParams,
    *,
    out: Path,
    live_dir: Path | None,
    device: str,
    seed: int,
    progress: bool = True,
    on_epoch: EpochHook | None = None,
) -> dict[str, Any]:
    """Train a linear probe on the stored encoder with ``train``; its clean accuracy on ``test`` is U (Eq. 7).

    Returns the E5 row: ``clean_acc`` (U), ``train_acc``, ``randomised``, ``cached_features``, sizes.
    """
    dev = pick_device(device)
    seed_everything(seed)
    _, encoder, _ = load_encoder(encoder_path, device=str(dev))
    checkpoint = Path(out).with_suffix(".ckpt")
    head, fit_metrics = train_probe(
        encoder, train, cfg.train, checkpoint=checkpoint, live_dir=live_dir, device=dev, seed=seed,
        identity={"encoder": str(encoder_path)}, on_epoch=on_epoch, progress=progress,
    )
    clean = probe_accuracy(head, test, device=dev)
    save_probe(out, head, encoder_path=encoder_path, params={"seed": seed, "train": asdict(cfg.train)})
    checkpoint.unlink(missing_ok=True)
    return {
        "clean_acc": clean, "train_acc": fit_metrics.get("train_acc"), "randomised": head.randomised,
        "cached_features": bool(fit_metrics["cached"]), "n_train": len(train), "n_test": len(test),
        "probe": asdict(cfg.train),
    }


def attack(
    paradigm: str,
    probe_path: Path,
    test: ImageSet,
    e6: E6Params,
    *,
    device: str,
    seed: int,
    on_progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Robust accuracy R (Eq. 8) of a stored probe under E6's threats; AutoAttack 'rand' if its encoder is random.

    Returns ``evaluate_classifier``'s row (``clean_acc``, ``robust_acc_<threat>`` for threats
    ``pgd_linf``, ``autoattack_linf`` and, for SL, ``pgd_l2``, ``autoattack_l2``) plus ``randomised`` and
    ``autoattack_version``.
    """
    dev = pick_device(device)
    seed_everything(seed)
    model = load_probe(probe_path, device=dev)
    size = e6.attacked_size(model.randomised)
    attacked = test.select(min(size, len(test)), seed) if size is not None else test
    row = evaluate_classifier(
        model, attacked, e6.threats(paradigm, model.randomised), batch_size=e6.batch_size, device=dev, seed=seed,
        on_progress=on_progress,
    )
    row.update(randomised=model.randomised, autoattack_version=autoattack_version(model.randomised))
    return row
