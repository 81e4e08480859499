"""E11 (Springer et al. 2021, Figs. 5, 6): L2 PGD on each eps-robust source of ``e9.eps``, transferred to standard
classifiers of other architectures (E8's SL backbones) and to E4's first natural-data classifier."""

from __future__ import annotations

from advtui.catalog.names import backbone_name
from advtui.catalog.params import Params
from advtui.catalog.paths import CURVES, backbone_probe_path, metrics_path, model_path, retrained_path, sweep_model_path
from advtui.experiments.common import load_classifier, natural_split
from advtui.experiments.linear_probe import load_probe
from advtui.experiments.robustified import plan_sweep
from advtui.experiments.slight_transfer import transfer_from_sources
from advtui.files import write_json, write_text
from advtui.catalog.stages import stage_name
from advtui.pipeline.inputs import require
from advtui.pipeline.progress import StageProgress
from advtui.runtime import pick_device, seed_everything

#: The victim that shares the sources' architecture (trained apart from them), beside E8's other architectures.
SAME_ARCH_VICTIM = "E4-natural"


def cell_eps(result: dict, name: str) -> float:
    """The eps of sweep source ``name`` in E11's metrics."""
    return result["sources"][name]["eps"]


def run(params: Params, name: str) -> dict:
    """Attack every sweep source, evaluate every victim; write E11's metrics and its curves for ``dvc plots``."""
    stage = stage_name("slight_transfer", name)
    progress = StageProgress(stage)
    device = pick_device(params.device)
    seed_everything(params.seed)
    e1 = {m: require(model_path(m)) for m in ("standard", "robust_l2")}
    sweep = plan_sweep(params.e9.eps, params.sources.robust_l2.adversarial.eps, e1, sweep_model_path)
    victims = {backbone_name(a): load_probe(require(backbone_probe_path(backbone_name(a))), device=device)
               for a in params.e8.backbones}
    victims[SAME_ARCH_VICTIM] = load_classifier(require(retrained_path("natural", 0)), device)
    result = transfer_from_sources(
        sweep, victims, natural_split(params.data, "test", params.seed), params.e11,
        load=lambda src: load_classifier(require(src.path), device), seed=params.seed, device=device,
        on_progress=progress.update,
    )
    write_json(metrics_path("E11", name), result)
    others = [v for v in victims if v != SAME_ARCH_VICTIM]
    for mode in ("untargeted", "targeted"):
        # dvc.yaml is the same for every profile: the curves go by role, the backbones' mean as other_arch
        groups = {"white_box": ["white_box"], "other_arch": others, "same_arch": [SAME_ARCH_VICTIM]}
        for label, members in groups.items():
            rows = ["eps\trate"]
            for n in result["names"] if members else ():  # no backbones (e8.backbones: []): an empty curve
                cell = result["sources"][n][mode]
                rows.append(f"{cell_eps(result, n):g}\t{sum(cell[m]['rate'] for m in members) / len(members):.6f}")
            write_text(CURVES / "E11" / f"{mode}-{label}.tsv", "\n".join(rows) + "\n")
    progress.finish()
    return {"sources": len(sweep), "victims": len(victims)}
