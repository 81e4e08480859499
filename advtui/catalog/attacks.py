"""The settings of one attack, without torch: what params.yaml, the stages and the report name an attack by.

``AttackSpec`` is validated here once for every user (params, CLI, stages); the attack code in
``advtui.attacks`` runs it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Norm = Literal["l2", "linf"]
NORMS: tuple[str, ...] = ("l2", "linf")
Version = Literal["standard", "rand"]
VERSIONS: tuple[str, ...] = ("standard", "rand")
KINDS: tuple[str, ...] = ("pgd", "autoattack")


@dataclass(frozen=True)
class AttackSpec:
    """One attack of a robustness evaluation.

    kind: "pgd" (cross-entropy PGD with random start) or "autoattack" (pyautoattack, `version`);
    norm, eps: the threat model, eps in pixel units of the norm (L2 0.5, Linf 8/255 ...);
    steps, step_size, restarts: PGD only (AutoAttack has its own); step_size is absolute (see
    `advtui.attacks.pgd`); version: AutoAttack only ("rand" for randomised models).
    """

    kind: Literal["pgd", "autoattack"] = "pgd"
    norm: Norm = "l2"
    eps: float = 0.5
    steps: int = 20
    step_size: float = 0.1
    restarts: int = 1
    version: Version = "standard"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: unknown attack kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: unknown norm {self.norm!r}; use one of {', '.join(NORMS)}")
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise ValueError(f"eps: must be a finite number >= 0, got {self.eps}; use a non-negative radius")
        if self.steps < 1:
            raise ValueError(f"steps: must be >= 1, got {self.steps}; use a positive step count")
        if not (math.isfinite(self.step_size) and self.step_size > 0):
            raise ValueError(f"step_size: must be > 0, got {self.step_size}; use a positive step")
        if self.restarts < 1:
            raise ValueError(f"restarts: must be >= 1, got {self.restarts}; use 1 for a single run")
        if self.version not in VERSIONS:
            raise ValueError(f"version: unknown AutoAttack version {self.version!r}; use one of {', '.join(VERSIONS)}")

    @property
    def name(self) -> str:
        """Short label, e.g. 'pgd20-l2-eps0.5', 'pgd20x5-linf-eps0.0313725', 'aa-standard-l2-eps0.5'."""
        if self.kind == "autoattack":
            return f"aa-{self.version}-{self.norm}-eps{self.eps:g}"
        restarts = f"x{self.restarts}" if self.restarts > 1 else ""
        return f"pgd{self.steps}{restarts}-{self.norm}-eps{self.eps:g}"


def autoattack_version(randomised: bool) -> Version:
    """AutoAttack's version for an encoder (Li et al. A.4): 'rand' (EOT) when it is randomised, else 'standard'."""
    return "rand" if randomised else "standard"
