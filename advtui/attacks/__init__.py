"""Attacks: the one PGD loop, its objectives, representation inversion, AutoAttack, robust accuracy."""

from advtui.attacks.autoattack import AutoAttackResult, run_autoattack
from advtui.attacks.evaluate import RobustResult, robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.attacks.inversion import invert, noise_starts, pick_other_starts
from advtui.attacks.objectives import CrossEntropy, Objective, RepresentationDistance, TargetedCrossEntropy
from advtui.attacks.pgd import attack_mode, pgd, pgd_attack

__all__ = [
    "AttackSpec",
    "AutoAttackResult",
    "CrossEntropy",
    "Objective",
    "RepresentationDistance",
    "RobustResult",
    "TargetedCrossEntropy",
    "attack_mode",
    "invert",
    "noise_starts",
    "pgd",
    "pgd_attack",
    "pick_other_starts",
    "robust_accuracy",
    "run_autoattack",
]
