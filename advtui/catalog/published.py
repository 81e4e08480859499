"""The papers' published figures each experiment's table prints beside ours (DESIGN.md section 9).

Torch-free and read by the report and the app alike; a new experiment's figures go here, with the table
and column they come from.
"""

from __future__ import annotations

from typing import Any

#: E4 rows in order, with the published clean / L2-0.25-robust accuracies (%) they are compared with.
#: Ilyas et al.'s constructed-dataset release (D_R, D_NR, D_rand, D_det, CIFAR-10, ResNet-50);
#: Springer et al. Table 5 "Test" column (zero-/negative-robust, CIFAR-10, clean accuracy only).
E4_PUBLISHED: dict[str, tuple[float | None, float | None, str]] = {
    "natural": (None, None, ""),
    "natural_nopattern": (None, None, ""),  # our control (synthetic data only): no paper has it
    "D_R": (84.0, 48.0, "Ilyas et al. 2019 (release)"),
    "D_NR": (88.0, 0.0, "Ilyas et al. 2019 (release)"),
    "D_rand": (63.0, 0.0, "Ilyas et al. 2019 (release)"),
    "D_det": (44.0, 0.0, "Ilyas et al. 2019 (release)"),
    "zero_robust": (46.8, None, "Springer et al. 2021, Table 5"),
    "neg_robust": (21.9, None, "Springer et al. 2021, Table 5"),
}

LI_SOURCE = "Li et al. 2023"
#: Li et al. Table 1 (CIFAR-10): relative usefulness RU per paradigm, cross-paradigm CRU, and the SL
#: usefulness Ilyas et al. reported, for the robust (D_R) and non-robust (D_NR) sets.
E5_PUBLISHED: dict[str, dict[str, Any]] = {
    "natural": {"feature": "natural", "RU": {}, "CRU": None, "ilyas": None},
    "D_R": {"feature": "robust", "RU": {"MIM": 0.896, "CL": 0.791, "DM": 0.831, "SL": 0.880}, "CRU": 0.791,
            "ilyas": 0.854},
    "D_NR": {"feature": "non-robust", "RU": {"MIM": 0.307, "CL": 0.433, "DM": 0.512, "SL": 0.914}, "CRU": 0.307,
             "ilyas": 0.823},
}
#: Li et al. Table 2a: SL trained on the robust sets of an L2- and an Linf-robust classifier, robust
#: accuracy under PGD-1000 and AutoAttack at L2 0.5 and Linf 4/255.
E6A_PUBLISHED: dict[str, dict[str, Any]] = {
    "D_R": {"source": "L2-robust classifier", "pgd_l2": 0.152, "autoattack_l2": 0.034, "pgd_linf": 0.075,
            "autoattack_linf": 0.001},
    "D_R_linf": {"source": "Linf-robust classifier", "pgd_l2": 0.139, "autoattack_l2": 0.044, "pgd_linf": 0.179,
                 "autoattack_linf": 0.004},
}
#: Li et al. Table 2b: AutoAttack (Linf 4/255) robustness per paradigm, its minimum (cross-paradigm CR),
#: and a last column whose header is lost in our copy of the paper; its Linf-robust-SL entry equals Table
#: 2a's SL PGD-1000 figure (0.179), so we read it as SL under Linf PGD-1000.
E6B_PUBLISHED: dict[str, dict[str, Any]] = {
    "natural": {"source": "natural", "R": {"MIM": 0.008, "CL": 0.012, "DM": 0.047, "SL": 0.000}, "CR": 0.000,
                "sl_pgd_linf": 0.002},
    "D_R_linf": {"source": "robust w/ SL model", "R": {"MIM": 0.027, "CL": 0.007, "DM": 0.043, "SL": 0.004},
                 "CR": 0.004, "sl_pgd_linf": 0.179},
    "D_R_CL": {"source": "robust w/ CL model", "R": {"MIM": 0.008, "CL": 0.002, "DM": 0.041, "SL": 0.014},
               "CR": 0.002, "sl_pgd_linf": 0.109},
}

#: E16, Wallace's comment in the Distill discussion of Ilyas et al. (CIFAR-10): a ResNet-18 trained to 63% test
#: accuracy relabels the training set; a fresh model trained on its 18,768 errors alone reaches 49.7% (fractions).
E16_PUBLISHED: dict[str, Any] = {"weak": 0.63, "errors": 0.497, "n_errors": 18768,
                                 "source": "Wallace, Distill 2019 (CIFAR-10, ResNet-18)"}
#: Li et al. Table 7 (Appendix B, CIFAR-10, CL ResNet-18 + linear probe, AutoAttack's APGD at Linf 8/255): accuracy (%)
#: on the adversarial examples of each attack objective; "none" is the clean accuracy. Only the CL encoder is in it.
E7_PUBLISHED: dict[str, dict[str, float | None]] = {
    "none": {"CL": 78.51},
    "infonce_proj_aug": {"CL": 70.31},
    "infonce_proj": {"CL": 70.21},
    "infonce_aug": {"CL": 71.09},
    "infonce": {"CL": 59.76},
    "alignment": {"CL": 33.20},
    "ce": {"CL": 0.78},
}
#: Li et al. Fig. 3 prints its transfer matrix as a heatmap without numbers; what it shows, in words (section 5.2).
E8_PUBLISHED_FINDING = ("adversarial examples transfer well between the SL backbones (low accuracy) and poorly "
                        "between paradigms (high accuracy), even with the same architecture")

#: Springer et al. 2021, Table 5 (CIFAR-10, ResNet-50): accuracy (%) of each classifier on the original test set
#: ("test") and on R_eps for each source radius eps (Table 1 is its subset); the robust classifier is eps 0.5's.
SPRINGER_EPS: tuple[float, ...] = (0.0, 1 / 256, 1 / 128, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
E9_PUBLISHED: dict[str, dict[str, Any]] = {
    "standard": {"test": 94.1, "R": dict(zip(SPRINGER_EPS, (58.3, 77.3, 81.4, 82.2, 83.7, 79.9, 79.0, 75.1, 69.2, 56.3)))},
    "robust": {"test": 86.5, "R": dict(zip(SPRINGER_EPS, (9.93, 9.97, 9.96, 10.0, 11.1, 18.2, 44.5, 70.5, 86.5, 70.0)))},
    "zero_robust": {"test": 46.8, "R": dict(zip(SPRINGER_EPS, (38.8, 35.1, 26.1, 27.2, 26.2, 23.3, 22.6, 22.1, 23.4, 21.4)))},
    "neg_robust": {"test": 21.9, "R": dict(zip(SPRINGER_EPS, (31.8, 15.8, 14.6, 16.6, 11.3, 11.1, 11.0, 12.8, 14.3, 13.2)))},
}
SPRINGER_SOURCE = "Springer et al. 2021"
#: Springer et al. Figs. 4-6 print curves without numbers; what they show, in words (sections 4-5).
E10_PUBLISHED_FINDING = ("standard classifier on R_eps: low at eps 0 (58.3%), peak at eps 1/32 (83.7%), falling to 56.3% "
                         "at eps 1 (Table 5); source clean accuracy falls as eps grows (Fig. 4)")
E11_PUBLISHED_FINDING = ("untargeted error rate on other architectures peaks near eps 1/16 and falls for larger eps; "
                         "targeted hit rate is near zero from a standard source (eps 0) and rises steeply by eps 1/16")

#: Ilyas et al. Fig. 3 (CIFAR-10) plots, per architecture, the test accuracy of a model trained on D_det against the
#: transfer success of the source's adversarial examples to it, without a table; what it shows, in words.
E12_PUBLISHED_FINDING = ("the architectures that learn more from D_det are the ones the source's adversarial examples "
                         "transfer to more: accuracy rises with transfer success")
E12_SOURCE = "Ilyas et al. 2019, Fig. 3 (CIFAR-10)"
#: Nakkiran's comment in the Distill discussion: bugs-only (non-transferable) examples make a set nothing is learnt from.
E15_PUBLISHED_FINDING = ("a model trained on the relabelled bugs-only examples generalises poorly (near chance), a point "
                         "on Fig. 3's trend line at low transfer")
E15_SOURCE = "Nakkiran, Distill 2019 (CIFAR-10)"
#: Nakano's comment in the Distill discussion: the robustness ratio of the first layers of several networks (a figure).
E17_PUBLISHED_FINDING = ("the first layers of VGG and AlexNet are almost as robust as a robust ResNet's, a standard "
                         "ResNet's much less")
E17_SOURCE = "Nakano, Distill 2019 (ImageNet models)"
