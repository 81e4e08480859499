"""Attacks: the one PGD loop, its objectives, representation inversion, AutoAttack, and the one resumable
driver behind robust accuracy."""

from advtui.attacks.autoattack import AutoAttackChunks, run_autoattack
from advtui.attacks.driver import ChunkAttack, RobustResult, attack_standing
from advtui.attacks.robust_accuracy import PgdChunks, robust_accuracy
from advtui.catalog.attacks import AttackSpec
from advtui.attacks.inversion import invert, noise_starts, pick_other_starts
from advtui.attacks.objectives import CrossEntropy, Objective, RepresentationDistance, TargetedCrossEntropy
from advtui.attacks.pgd import attack_mode, pgd, pgd_attack

__all__ = [
    "AttackSpec",
    "AutoAttackChunks",
    "ChunkAttack",
    "CrossEntropy",
    "Objective",
    "PgdChunks",
    "RepresentationDistance",
    "RobustResult",
    "TargetedCrossEntropy",
    "attack_mode",
    "attack_standing",
    "invert",
    "noise_starts",
    "pgd",
    "pgd_attack",
    "pick_other_starts",
    "robust_accuracy",
    "run_autoattack",
]
