"""The settings of one attack, without torch: what params.yaml, the stages and the report name an attack by.

The rules for attack settings live here once (``check_attack_settings``): ``AttackSpec`` applies them for
every user (params, CLI, stages), and the attack code in ``advtui.attacks`` (the PGD loop, AutoAttack,
the robust-accuracy driver) applies the same ones to its arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Norm = Literal["l2", "linf"]
NORMS: tuple[str, ...] = ("l2", "linf")
Version = Literal["standard", "rand"]
VERSIONS: tuple[str, ...] = ("standard", "rand")
KINDS: tuple[str, ...] = ("pgd", "autoattack")
#: Where a representation inversion starts: 'image', a random other image of any class (Ilyas et al.,
#: Li et al. Table 3); 'other', a random image of another class (advtui's variant); 'noise', uniform noise.
Start = Literal["image", "other", "noise"]
STARTS: tuple[str, ...] = ("image", "other", "noise")
#: AutoAttack's attacks in each version, in the order the package runs them (pyautoattack 0.2.0).
AUTOATTACK_PARTS: dict[str, tuple[str, ...]] = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
Toggle = Literal["auto", "on", "off"]
TOGGLES: tuple[str, ...] = ("auto", "on", "off")


def _finite_above(low: float, *, or_equal: bool) -> Callable[[Any], bool]:
    return lambda v: math.isfinite(v) and (v >= low if or_equal else v > low)


# name -> (rule, what to say when it fails). steps >= 1 for every PGD run, inversion included: no caller
# wants zero steps (it returns the random start or the start image unattacked), so a config that asks
# for it is a mistake worth stopping. eps None (an unbounded ball) is the PGD loop's own extension and is
# checked there; everywhere else a radius is a finite number.
_RULES: dict[str, tuple[Callable[[Any], bool], Callable[[Any], str]]] = {
    "kind": (lambda v: v in KINDS, lambda v: f"unknown attack kind {v!r}; use one of {', '.join(KINDS)}"),
    "norm": (lambda v: v in NORMS, lambda v: f"unknown norm {v!r}; use one of {', '.join(NORMS)}"),
    "eps": (_finite_above(0, or_equal=True), lambda v: f"must be a finite number >= 0, got {v}; use a non-negative radius"),
    "steps": (lambda v: v >= 1, lambda v: f"must be >= 1, got {v}; use a positive step count"),
    "step_size": (_finite_above(0, or_equal=False), lambda v: f"must be > 0, got {v}; use a positive step"),
    "restarts": (lambda v: v >= 1, lambda v: f"must be >= 1, got {v}; use 1 for a single run"),
    "version": (lambda v: v in VERSIONS, lambda v: f"unknown AutoAttack version {v!r}; use one of {', '.join(VERSIONS)}"),
    "batch_size": (lambda v: v >= 1, lambda v: f"must be >= 1, got {v}; use a positive batch size"),
    **{
        name: (lambda v: v in TOGGLES, lambda v: f"must be one of {', '.join(TOGGLES)}, got {v!r}")
        for name in ("channels_last", "compile")
    },
}


def check_attack_settings(**settings: Any) -> None:
    """Raise ValueError ``"<name>: <what is wrong>; <the fix>"`` for the first of ``settings`` that breaks its rule.

    Keys: kind, norm, eps, steps, step_size, restarts, version, batch_size, channels_last, compile (see
    ``_RULES``); pass only the ones the caller has.
    """
    for name, value in settings.items():
        rule, fix = _RULES[name]
        if not rule(value):
            raise ValueError(f"{name}: {fix(value)}")


@dataclass(frozen=True)
class AttackSpec:
    """One attack of a robustness evaluation.

    kind: "pgd" (cross-entropy PGD with random start) or "autoattack" (pyautoattack, `version`);
    norm, eps: the threat model, eps in pixel units of the norm (L2 0.5, Linf 8/255 ...);
    steps, step_size, restarts: PGD only (AutoAttack has its own); step_size is absolute (see
    `advtui.attacks.pgd`); version: AutoAttack only ("rand" for randomised models); parts: AutoAttack
    only, a subset of the version's attacks (``AUTOATTACK_PARTS``) to run, in the version's order; empty: all
    of them. A subset is named in ``name``, so a table never passes it off as the whole of AutoAttack.
    """

    kind: Literal["pgd", "autoattack"] = "pgd"
    norm: Norm = "l2"
    eps: float = 0.5
    steps: int = 20
    step_size: float = 0.1
    restarts: int = 1
    version: Version = "standard"
    parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_attack_settings(
            kind=self.kind, norm=self.norm, eps=self.eps, steps=self.steps, step_size=self.step_size,
            restarts=self.restarts, version=self.version,
        )
        full = AUTOATTACK_PARTS[self.version]
        if self.parts and (self.kind != "autoattack" or set(self.parts) - set(full)):
            raise ValueError(
                f"parts: {list(self.parts)} is not a subset of AutoAttack {self.version}'s {list(full)}; "
                "pick from those (or leave it empty for all)"
            )
        # the version's order, whatever order the params list them in
        object.__setattr__(self, "parts", tuple(a for a in full if a in self.parts))

    @property
    def name(self) -> str:
        """Short label, e.g. 'pgd20-l2-eps0.5', 'pgd20x5-linf-eps0.0313725', 'aa-standard-l2-eps0.5'."""
        if self.kind == "autoattack":
            subset = f"-{'+'.join(self.parts)}" if self.parts else ""
            return f"aa-{self.version}{subset}-{self.norm}-eps{self.eps:g}"
        restarts = f"x{self.restarts}" if self.restarts > 1 else ""
        return f"pgd{self.steps}{restarts}-{self.norm}-eps{self.eps:g}"


@dataclass(frozen=True)
class SpeedConfig:
    """How attacks and evaluations run the model, not what they compute (``attack.speed`` in params.yaml).

    ``channels_last``: the model's activations are stored NHWC, the layout fast convolution kernels want;
    ``compile``: the model runs through ``torch.compile`` (fused kernels; compiled once per process, the
    compiled code cached on disk under advtui's cache folder for the next process). "auto" turns each on
    where it pays, by device and model size (``advtui.attacks.speed.resolve``); "on" and "off" force it.
    Either changes the results only by float rounding; "auto" leaves small models (every model of the
    smoke profile) plain on a CPU, so their numbers stay bit for bit the same.
    """

    channels_last: Toggle = "auto"
    compile: Toggle = "auto"

    def __post_init__(self) -> None:
        check_attack_settings(channels_last=self.channels_last, compile=self.compile)


def autoattack_version(randomised: bool, *, rand_anyway: bool = False) -> Version:
    """AutoAttack's version for an encoder (Li et al. A.4): 'rand' (EOT) when it is randomised, or when asked
    to on a deterministic one (``rand_anyway``: Li A.4 runs 'rand' on MAE, whose masking is random in
    pretraining only), else 'standard'. A randomised encoder always gets 'rand': the deterministic attacks
    of 'standard' would chase one draw of its noise."""
    return "rand" if randomised or rand_anyway else "standard"
