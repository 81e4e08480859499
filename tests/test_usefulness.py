"""Li et al.'s usefulness and robustness metrics (Eqs. 7-14) against hand-computed values and the paper's
own tables, and the AutoAttack version each encoder gets."""

from __future__ import annotations

import pytest

from advtui.catalog.attacks import autoattack_version
from advtui.catalog.names import PARADIGMS
from advtui.catalog.params import E6Params, load_params, profile_path
from advtui.report.usefulness import cross_paradigm, relative, summarise


def test_relative_is_the_ratio_to_the_natural_score_and_undefined_without_it():
    assert relative(0.45, 0.9) == pytest.approx(0.5)
    assert relative(0.9, 0.9) == 1.0
    assert relative(None, 0.9) is None and relative(0.5, None) is None
    assert relative(0.01, 0.0) is None  # RR of a paradigm whose natural model has no robustness at all


def test_cross_paradigm_is_the_worst_paradigm_and_needs_all_of_them():
    # Li Table 1 (CIFAR-10): CRU is the minimum of the RU row
    assert cross_paradigm({"MIM": 0.896, "CL": 0.791, "DM": 0.831, "SL": 0.880}, PARADIGMS) == 0.791
    assert cross_paradigm({"MIM": 0.307, "CL": 0.433, "DM": 0.512, "SL": 0.914}, PARADIGMS) == 0.307
    # Li Table 2b: the cross-paradigm robustness column is the minimum of the four paradigms
    assert cross_paradigm({"MIM": 0.008, "CL": 0.002, "DM": 0.041, "SL": 0.014}, PARADIGMS) == 0.002
    assert cross_paradigm({"MIM": 0.5, "CL": 0.4, "DM": 0.6}, PARADIGMS) is None  # SL not measured
    assert cross_paradigm({"MIM": 0.5, "CL": None, "DM": 0.6, "SL": 0.7}, PARADIGMS) is None


def test_summarise_gives_u_ru_cu_cru_by_hand():
    scores = {
        "MIM": {"natural": 0.80, "D_R": 0.60, "D_NR": 0.20},
        "CL": {"natural": 0.50, "D_R": 0.45, "D_NR": 0.10},
        "DM": {"natural": 0.40, "D_R": 0.40, "D_NR": 0.30},
        "SL": {"natural": 1.00, "D_R": 0.90, "D_NR": 0.95},
    }
    robust = summarise(scores, "D_R")
    assert robust["absolute"] == {"MIM": 0.60, "CL": 0.45, "DM": 0.40, "SL": 0.90}
    assert robust["relative"] == pytest.approx({"MIM": 0.75, "CL": 0.9, "DM": 1.0, "SL": 0.9})
    assert robust["cross"] == 0.40  # CU: DM has the lowest absolute usefulness ...
    assert robust["cross_relative"] == pytest.approx(0.75)  # ... but MIM loses most relative to natural
    nonrobust = summarise(scores, "D_NR")
    assert nonrobust["cross"] == 0.10 and nonrobust["cross_relative"] == pytest.approx(0.2)
    natural = summarise(scores, "natural")
    assert natural["relative"] == {p: 1.0 for p in PARADIGMS}
    partial = summarise({"SL": {"natural": 1.0, "D_R": 0.5}}, "D_R")
    assert partial["relative"]["SL"] == 0.5 and partial["relative"]["MIM"] is None and partial["cross_relative"] is None


def test_autoattack_rand_for_randomised_encoders_standard_otherwise():
    assert autoattack_version(True) == "rand" and autoattack_version(False) == "standard"
    e6 = E6Params()
    random_dm = e6.threats("DM", randomised=True)
    assert set(random_dm) == {"pgd_linf", "autoattack_linf"}  # Table 2b: Linf only
    assert random_dm["autoattack_linf"][0].version == "rand"
    assert random_dm["autoattack_linf"][0].eps == pytest.approx(4 / 255)
    sl = e6.threats("SL", randomised=False)
    assert set(sl) == {"pgd_l2", "autoattack_l2", "pgd_linf", "autoattack_linf"}  # Table 2a: both threats
    assert {s[0].version for k, s in sl.items() if k.startswith("autoattack")} == {"standard"}
    assert sl["pgd_l2"][0].eps == 0.5 and sl["pgd_linf"][0].steps == 1000  # Li A.4: PGD-1000


def test_attacked_subset_is_smaller_for_randomised_encoders_when_asked():
    e6 = E6Params(test_size=100, rand_test_size=20)
    assert e6.attacked_size(eot=True) == 20 and e6.attacked_size(eot=False) == 100
    assert E6Params(test_size=100).attacked_size(eot=True) == 100


def test_mim_takes_lis_rand_autoattack_when_asked_and_the_deterministic_variant_otherwise():
    """Li A.4 attacks MAE with AutoAttack 'rand'; advtui's MAE encoder is deterministic, so 'standard' is the
    other choice. A randomised encoder (DM) takes 'rand' whatever the list says; the others stay 'standard'."""
    assert autoattack_version(False, rand_anyway=True) == "rand" and autoattack_version(True, rand_anyway=False) == "rand"
    li = E6Params(rand_paradigms=("MIM",))
    assert li.version("MIM", randomised=False) == "rand" and li.version("DM", randomised=True) == "rand"
    assert li.version("CL", randomised=False) == li.version("SL", randomised=False) == "standard"
    assert li.threats("MIM", randomised=False)["autoattack_linf"][0].version == "rand"
    deterministic = E6Params()
    assert deterministic.version("MIM", randomised=False) == "standard"
    assert deterministic.version("DM", randomised=True) == "rand"
    paper = load_params(profile_path("paper")).e6
    assert paper.version("MIM", randomised=False) == "rand"  # the paper profile follows Li A.4
    for name in ("smoke", "cpu"):
        assert load_params(profile_path(name)).e6.version("MIM", randomised=False) == "standard"
    with pytest.raises(ValueError, match="^rand_paradigms: unknown paradigm 'MAE'; use some of MIM, CL, DM, SL$"):
        E6Params(rand_paradigms=("MAE",))
