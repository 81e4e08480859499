"""`advtui stage FAMILY NAME`: run one pipeline stage from params.yaml (what dvc.yaml calls)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from advtui.cli.errors import guarded
from advtui.cli.options import ParamsOption
from advtui.catalog.params import load_params

FAMILIES = {
    "source": "E1: train a source model (standard, robust_l2, robust_linf)",
    "construct": "E2/E3: build a constructed dataset (D_R, D_NR, D_rand, D_det, zero_robust, neg_robust, D_R_linf, D_R_CL)",
    "retrain": "E4: train on a training set (natural or constructed) and measure on natural test data",
    "gallery": "main: natural images beside their D_R, D_NR, D_rand, D_det versions, for the app's Gallery",
    "pretrain": "E5/E6: pretrain a paradigm on a training set (PARADIGM-SET, e.g. CL-D_R; MIM, CL, DM, SL x natural, "
    "D_R, D_NR, D_R_linf, D_R_CL), or the adversarial CL source robust_cl",
    "probe": "E5: linear probe on a pretrained encoder (PARADIGM-SET): usefulness U on natural test data",
    "attack": "E6: PGD and AutoAttack on encoder + probe (PARADIGM-SET): robustness R",
}


@guarded
def stage(
    family: str = typer.Argument(..., help="; ".join(f"{k}: {v}" for k, v in FAMILIES.items())),
    name: str = typer.Argument(..., help="Which one of the family (see above)."),
    params_file: Path = ParamsOption,
) -> None:
    """Run one stage of dvc.yaml by hand. Prefer `dvc repro <family>@<name>`, which also records it in dvc.lock."""
    from advtui.pipeline.stages import STAGES

    if family not in STAGES:
        raise ValueError(f"stage: unknown family {family!r}; use one of {', '.join(STAGES)}")
    run, names = STAGES[family]
    if name not in names:
        raise ValueError(f"stage {family}: unknown name {name!r}; use one of {', '.join(names)}")
    result = run(load_params(params_file), name)
    shown = {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    Console().print(f"[green]{family}@{name} done[/] " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))
