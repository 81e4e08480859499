"""The rows of E7 (Li Table 7) and E8 (Li Fig. 3) from their metrics files (no torch): the report's and the app's.

E7: one row per attack (no attack, then each objective of ``E7_OBJECTIVES``), the SL and CL probes' accuracy on its
adversarial images beside Li's Table 7 (CL only). E8: one row per source classifier, its adversarial images'
accuracy on every classifier (a column per target, the diagonal white-box).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advtui.catalog.names import BACKBONE_PREFIX, E7_OBJECTIVES, E7_PARADIGMS, PARADIGMS
from advtui.catalog.published import E7_PUBLISHED, E8_PUBLISHED_FINDING, LI_SOURCE

Read = Callable[[str, str], "dict[str, Any] | None"]
"""``read(experiment, name)``: a metrics file's object, None when its stage has not run (or the file is unusable)."""

#: The E7 row of the clean accuracy (Table 7's "No Attack").
NO_ATTACK = "none"


def e7_rows(read: Read) -> list[dict[str, Any]]:
    """Table 7's rows: ``objective`` (``none``: no attack), ``attack`` (what it is), per encoder (SL, CL) the probe's
    accuracy (fraction), ``missing`` (encoders whose stage has not run), ``published`` (per encoder, Li's figure as a
    fraction; CL only) and the settings the runs share (``n_test``, ``eps``, ``norm``, ``n_iter``)."""
    results = {p: read("E7", p) for p in E7_PARADIGMS}
    done = {p: r for p, r in results.items() if r is not None}
    first = next(iter(done.values()), {})
    rows = []
    for objective, label in {NO_ATTACK: "no attack", **E7_OBJECTIVES}.items():
        row: dict[str, Any] = {"objective": objective, "attack": label, "missing": [p for p in E7_PARADIGMS if p not in done]}
        for p, r in done.items():
            row[p] = r.get("clean_acc") if objective == NO_ATTACK else (r.get("acc") or {}).get(objective)
        row.update(published={p: v / 100 for p, v in E7_PUBLISHED[objective].items()},
                   published_source=f"{LI_SOURCE}, Table 7 (CIFAR-10, CL, APGD Linf 8/255)",
                   n_test=first.get("n"), eps=first.get("eps"), norm=first.get("norm"), n_iter=first.get("n_iter"))
        rows.append(row)
    return rows


def _group(model: str) -> str:
    """The paradigm a classifier belongs to (an SL backbone's is SL)."""
    return "SL" if model.startswith(BACKBONE_PREFIX) else model


def transfer_summary(acc: dict[str, dict[str, float]]) -> dict[str, float | None]:
    """Mean accuracy on transferred adversarial images (off the diagonal) between classifiers of the same paradigm
    (``within``: SL and the SL backbones) and of different paradigms (``across``); None where there is no such pair."""
    within, across = [], []
    for source, row in acc.items():
        for target, value in row.items():
            if target != source:
                (within if _group(source) == _group(target) else across).append(value)
    return {"within": sum(within) / len(within) if within else None,
            "across": sum(across) / len(across) if across else None}


def e8_rows(read: Read) -> list[dict[str, Any]]:
    """Fig. 3's matrix as rows: ``source`` (the attacked classifier), ``targets`` (every classifier, in order), ``acc``
    (target -> accuracy on the source's adversarial images; the diagonal is white-box), ``clean_acc``,
    ``autoattack_version``, ``missing``, the settings, ``transfer`` (:func:`transfer_summary` of the whole matrix),
    the published finding and, on the synthetic data, the planted ground truth of the source's adversarial images
    (``changed``, ``pattern_added``, ``shape_kept``; see ``advtui.experiments.transfer``). Before the stage has run:
    one ``missing`` row per paradigm."""
    result = read("E8", "matrix")
    if result is None:
        return [{"source": p, "missing": True, "published_finding": E8_PUBLISHED_FINDING} for p in PARADIGMS]
    models, acc = list(result.get("models") or []), result.get("acc") or {}
    summary = transfer_summary(acc)
    return [{
        "source": source, "missing": False, "targets": models, "acc": acc.get(source, {}),
        "clean_acc": (result.get("clean") or {}).get(source),
        "autoattack_version": (result.get("autoattack_version") or {}).get(source),
        "n_test": (result.get("attacked") or {}).get(source, result.get("n")),
        "eps": result.get("eps"), "norm": result.get("norm"), "attack": result.get("attack"), "transfer": summary,
        "published_finding": E8_PUBLISHED_FINDING, "published_source": f"{LI_SOURCE}, Fig. 3 (CIFAR-10)",
        **((result.get("ground_truth") or {}).get(source) or {}),
    } for source in models]
