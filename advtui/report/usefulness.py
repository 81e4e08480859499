"""Cross-paradigm usefulness and robustness of features (Li et al. 2023, section 2.2, Eqs. 7-14).

Pure arithmetic on measured accuracies, without torch: the report computes Li's tables from the metrics
files with it, and the E5/E6 stages take the paradigm set and AutoAttack's version from it (it lives in the
torch-free report layer so that both import it without torch; it belongs in the catalogue once that holds
the paradigms). A *score* is one accuracy of a linear probe on an encoder pretrained with paradigm T on a
training set g, measured on the natural test set D:

- U(g, D, T) (Eq. 7): clean accuracy of the probe, the usefulness of the features in g for T;
- R(g, D, T) (Eq. 8): its accuracy under attack in an eps-ball (robust accuracy), their robustness;
- RU(g, D, T) = U(g, D, T) / U(D, T) (Eq. 11) and RR(g, D, T) = R(g, D, T) / R(D, T) (Eq. 12): relative
  to the same paradigm trained on the natural images (all features), here the training set "natural";
- CU(g, D) = min_T U (Eq. 9), CR(g, D) = min_T R (Eq. 10), CRU(g, D) = min_T RU (Eq. 13) and
  CRR(g, D) = min_T RR (Eq. 14): the worst paradigm of the set T = {MIM, CL, DM, SL}.

A value that was not measured is None, and so is every quantity that needs it: a cross-paradigm minimum
over fewer paradigms than T is not the paper's quantity. A ratio whose natural score is 0 (e.g. R of a
non-robust SL model under AutoAttack) is undefined and None too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from advtui.catalog.names import PARADIGMS

Score = float | None
Scores = Mapping[str, Mapping[str, Score]]
"""paradigm -> training set -> score (U or R), None where not measured."""

NATURAL = "natural"
#: The E5 control row: each encoder at the weights its pretraining started from (U's floor).
UNTRAINED = "untrained"


def relative(score: Score, natural: Score) -> Score:
    """RU or RR (Eqs. 11, 12): ``score / natural``; None when either is missing or ``natural`` is 0."""
    if score is None or natural is None or natural == 0:
        return None
    return score / natural


def cross_paradigm(values: Mapping[str, Score], paradigms: Sequence[str]) -> Score:
    """CU, CR, CRU or CRR (Eqs. 9, 10, 13, 14): the minimum over ``paradigms``; None if any is missing."""
    picked = [values.get(p) for p in paradigms]
    if not picked or any(v is None for v in picked):
        return None
    return min(v for v in picked if v is not None)


def summarise(
    scores: Scores, dataset: str, paradigms: Sequence[str] = PARADIGMS, natural: str = NATURAL
) -> dict[str, object]:
    """Everything Li et al. define for one training set from one kind of score (U or R).

    Returns ``{"absolute": {T: score}, "relative": {T: score / natural score}, "cross": min over T of the
    absolute scores (CU or CR), "cross_relative": min over T of the relative ones (CRU or CRR)}``.
    """
    absolute = {p: scores.get(p, {}).get(dataset) for p in paradigms}
    rel = {p: relative(absolute[p], scores.get(p, {}).get(natural)) for p in paradigms}
    return {
        "absolute": absolute,
        "relative": rel,
        "cross": cross_paradigm(absolute, paradigms),
        "cross_relative": cross_paradigm(rel, paradigms),
    }
