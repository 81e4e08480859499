"""AutoAttack through the PyPI package `pyautoattack`, with per-batch progress and resume.

The attacks themselves (APGD-CE, APGD-T, FAB-T, Square; APGD-CE/-DLR with EOT for 'rand') and their
settings are the package's, for the chosen `version`. This adapter runs them one attack and one batch
at a time through `AutoAttack.run_standard_evaluation` (attacking only points still robust, as
AutoAttack does) and keeps its own resume file at `state_path`, rewritten after every batch.

Why not the package's own `state_path`: in pyautoattack 0.2.0 it cannot resume. The state file
stores the attack set as the string of a Python set, so a restart always fails with "The state was
created with a different set of attacks"; past that, the restore branch never defines `y_adv` and
crashes; and the adversarial images of points broken before the interruption are not kept at all
(the package returns clean images for them). Our file keeps flags, attempted points and those images.

Progress: `on_progress` receives dicts. Every record of the package's `auto-attack` logger arrives
as {"source": "pyautoattack", "scope": "batch", "level", "message"} plus what the message states
("attack", "batch"/"n_batches", "perturbed"/"attacked", "robust_accuracy", "clean_accuracy"); its
figures refer to the batch being attacked. After each batch the adapter adds its own record,
{"source": "advtui", "scope": "total", "message", "attack", "batch", "n_batches",
"robust_accuracy", "n_robust", "n", "done", "total"}, about all N points (done/total count
points settled per attack, len(attacks) * N in all).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pyautoattack import AutoAttack
from torch import Tensor, nn

from advtui.attacks.pgd import attack_mode
from advtui.catalog.attacks import Version, check_attack_settings
from advtui.files import write_atomic

_PACKAGE_NORM = {"l2": "L2", "linf": "Linf"}
_STATE_FORMAT = 1
# The package's targeted attacks try the 9 runner-up classes; DLR losses need 3 (untargeted) or
# 4 (targeted) classes.
_MAX_TARGETS = 9
_MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4, "fab-t": 2, "apgd-ce": 2, "square": 2}

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class AutoAttackResult:
    """Outcome of `run_autoattack` on N points.

    x_adv: adversarial images (clean images where no attack succeeded); robust: (N,) bool on CPU,
    correctly classified clean and under every attack; clean: (N,) bool, correctly classified clean;
    per_attack: robust accuracy after each attack in order (cumulative worst case).
    """

    x_adv: Tensor
    robust: Tensor
    clean: Tensor
    per_attack: dict[str, float] = field(default_factory=dict)

    @property
    def clean_acc(self) -> float:
        """Fraction of points classified correctly without attack."""
        return self.clean.float().mean().item()

    @property
    def robust_acc(self) -> float:
        """Fraction of points robust under all attacks run."""
        return self.robust.float().mean().item()


_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (re.compile(r"^running (\S+)"), ("attack",)),
    (
        re.compile(r"^(\S+) - (\d+)/(\d+) - (\d+) out of (\d+) successfully perturbed"),
        ("attack", "batch", "n_batches", "perturbed", "attacked"),
    ),
    (re.compile(r"^robust accuracy after (\S+): ([\d.]+)%"), ("attack", "robust_accuracy")),
    (re.compile(r"^initial accuracy: ([\d.]+)%"), ("clean_accuracy",)),
    (re.compile(r"^robust accuracy: ([\d.]+)%"), ("robust_accuracy",)),
)


def parse_log_message(message: str) -> dict[str, Any]:
    """Fields stated by one `auto-attack` log message (attack name, batch, accuracies as fractions)."""
    for pattern, names in _PATTERNS:
        match = pattern.match(message)
        if match is None:
            continue
        fields: dict[str, Any] = {}
        for name, value in zip(names, match.groups()):
            if name == "attack":
                fields[name] = value.lower()
            elif name.endswith("accuracy"):
                fields[name] = float(value) / 100.0
            else:
                fields[name] = int(value)
        return fields
    return {}


class _ProgressHandler(logging.Handler):
    def __init__(self, on_progress: ProgressFn) -> None:
        super().__init__(logging.DEBUG)
        self.on_progress = on_progress

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.on_progress(
            {"source": "pyautoattack", "scope": "batch", "level": record.levelname, "message": message}
            | parse_log_message(message)
        )


@contextmanager
def _package_log_to(on_progress: ProgressFn | None) -> Iterator[None]:
    """Forward the package's `auto-attack` log records (DEBUG and up) to `on_progress` for the body."""
    if on_progress is None:
        yield
        return
    logger = logging.getLogger("auto-attack")
    handler, level = _ProgressHandler(on_progress), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def fingerprint(x: Tensor, y: Tensor, **settings: Any) -> dict[str, Any]:
    """Identity of an evaluation for its resume file: data checksums, labels and `settings`."""
    xd = x.detach().cpu().double().flatten(1)
    weights = torch.arange(1, x.shape[0] + 1, dtype=torch.float64)
    return {
        "format": _STATE_FORMAT,
        "shape": list(x.shape),
        "x_sum": xd.sum().item(),
        "x_weighted_sum": (xd.sum(1) * weights).sum().item(),
        "y": y.detach().cpu().tolist(),
        **settings,
    }


def _same_fingerprint(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        if isinstance(a[k], float):
            if not math.isclose(a[k], b[k], rel_tol=1e-9, abs_tol=1e-9):
                return False
        elif a[k] != b[k]:
            return False
    return True


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a resume file atomically (a crash mid-write leaves the previous one intact)."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The resume file at `path` if it exists; ValueError if it belongs to another evaluation (`key`)."""
    if not path.exists():
        return None
    state = torch.load(path, weights_only=True)
    if not _same_fingerprint(state["key"], key):
        raise ValueError(
            f"state_path: {path} was written for another evaluation (other data or settings); "
            "delete it or pass another path"
        )
    return state


def _validate(norm: str, eps: float, version: str, batch_size: int, x: Tensor, y: Tensor) -> None:
    check_attack_settings(norm=norm, eps=eps, version=version, batch_size=batch_size)
    if x.shape[0] == 0:
        raise ValueError("x: no images to attack; pass at least one image")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y: {y.shape[0]} labels for {x.shape[0]} images; pass one label per image")


def _clean_correct(
    model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, batch_size: int
) -> tuple[Tensor, int]:
    correct, n_classes = [], 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = model(x[i : i + batch_size])
            n_classes = logits.shape[1]
            correct.append((logits.argmax(1) == y[i : i + batch_size].to(logits.device)).cpu())
    return torch.cat(correct), n_classes


def _configure(adversary: AutoAttack, attacks: Sequence[str], n_classes: int, norm: str, x: Tensor) -> None:
    if "square" in attacks and norm == "l2" and min(x.shape[-2:]) < 5:
        # The package's L2 Square Attack tiles the image in 5x5 blocks and divides by zero below that.
        raise ValueError(
            f"attacks: square (L2) needs images of at least 5x5 pixels, got {tuple(x.shape[-2:])}; "
            "pass attacks without it"
        )
    for attack in attacks:
        if n_classes < _MIN_CLASSES[attack]:
            raise ValueError(
                f"attacks: {attack} needs at least {_MIN_CLASSES[attack]} classes, the model has {n_classes}; "
                "pass attacks without it"
            )
    adversary.apgd_targeted.n_target_classes = min(_MAX_TARGETS, n_classes - 1)
    adversary.fab.n_target_classes = min(_MAX_TARGETS, n_classes - 1)


def _new_state(key: dict[str, Any], clean: Tensor, attacks: Sequence[str], x: Tensor) -> dict[str, Any]:
    n = x.shape[0]
    return {
        "key": key,
        "clean": clean,
        "robust": clean.clone(),
        "attempted": {a: torch.zeros(n, dtype=torch.bool) for a in attacks},
        "per_attack": {},
        # Adversarial images of the points broken so far (the rest of x_adv is x itself).
        "changed_idx": torch.zeros(0, dtype=torch.long),
        "changed_x": x[:0].detach().cpu(),
    }


def _attack_chunk(
    adversary: AutoAttack, x: Tensor, y: Tensor, chunk: Tensor, x_adv: Tensor, state: dict[str, Any]
) -> None:
    """Run the adversary's one attack on the points `chunk` (CPU indices) and record what broke."""
    on_device = chunk.to(x.device)
    x_chunk, y_chunk = x[on_device], y[chunk.to(y.device)].to(x.device)
    adv, y_adv = adversary.run_standard_evaluation(x_chunk, y_chunk, batch_size=chunk.numel())
    # The package's own verdict (its y_adv), so a randomised model is judged on the draw it attacked.
    broken = (y_adv != y_chunk).cpu()
    state["robust"][chunk[broken]] = False
    x_adv[on_device[broken.to(x.device)]] = adv[broken.to(adv.device)].to(x.device, x.dtype)
    changed = torch.nonzero(~state["robust"] & state["clean"]).squeeze(1)
    state["changed_idx"], state["changed_x"] = changed, x_adv[changed.to(x.device)].cpu()


def _total_record(
    attack: str, batch: int, n_batches: int, i: int, state: dict[str, Any], n_attacks: int
) -> dict[str, Any]:
    robust, n = state["robust"], state["robust"].numel()
    remaining = int((robust & ~state["attempted"][attack]).sum())
    acc = robust.float().mean().item()
    return {
        "source": "advtui", "scope": "total",
        "message": f"{attack}: batch {batch}/{n_batches}, robust accuracy {acc:.2%} ({int(robust.sum())}/{n})",
        "attack": attack, "batch": batch, "n_batches": n_batches, "robust_accuracy": acc,
        "n_robust": int(robust.sum()), "n": n, "done": i * n + n - remaining, "total": n_attacks * n,
    }


def run_autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    norm: Literal["l2", "linf"],
    eps: float,
    version: Version,
    batch_size: int,
    state_path: Path | str | None = None,
    on_progress: ProgressFn | None = None,
    seed: int = 0,
    attacks: Sequence[str] | None = None,
) -> AutoAttackResult:
    """AutoAttack (`version` 'standard' or 'rand' for randomised models) on (x, y) at radius `eps`.

    Args:
        model: classifier returning logits; run in eval mode with parameter grads off, then restored.
        x, y: images in [0, 1] and labels; attacked on x's device.
        norm: "l2" or "linf".
        eps: radius in pixel units of `norm` (0: no attack, robust = clean-correct).
        version: the package's attack set and settings ('rand': APGD-CE/-DLR with 20 EOT samples).
        batch_size: points per attack call; also the resume granularity.
        state_path: resume file; an existing one for the same data and settings is continued,
            one for other data raises ValueError.
        on_progress: receives the progress dicts described in the module docstring.
        seed: the package's seed (it reseeds torch's global RNG; the caller's RNG state is restored).
        attacks: a subset of the version's attacks (same settings), in the version's order.

    Returns:
        AutoAttackResult with adversarial images, per-point robust flags and per-attack accuracies.
    """
    _validate(norm, eps, version, batch_size, x, y)
    adversary = AutoAttack(model, norm=_PACKAGE_NORM[norm], eps=eps, version=version, seed=seed, device=x.device)
    full = tuple(adversary.attacks_to_run)
    if attacks is not None and (not attacks or set(attacks) - set(full)):
        raise ValueError(
            f"attacks: {list(attacks)} is not a non-empty subset of {version}'s {list(full)}; pick from those"
        )
    chosen = [a for a in full if attacks is None or a in attacks]
    path = Path(state_path) if state_path is not None else None
    rng_devices = [x.device] if x.device.type == "cuda" else []
    with attack_mode(model), torch.random.fork_rng(devices=rng_devices), _package_log_to(on_progress):
        clean, n_classes = _clean_correct(model, x, y, batch_size)
        x_adv = x.detach().clone()
        if eps == 0:
            return AutoAttackResult(x_adv, clean.clone(), clean)
        _configure(adversary, chosen, n_classes, norm, x)
        key = fingerprint(x, y, norm=norm, eps=float(eps), version=version, attacks=chosen, seed=seed)
        state = load_state(path, key) if path is not None else None
        if state is None:
            state = _new_state(key, clean, chosen, x)
        else:
            x_adv[state["changed_idx"].to(x.device)] = state["changed_x"].to(x.device, x.dtype)
        for i, attack in enumerate(chosen):
            todo = torch.nonzero(state["robust"] & ~state["attempted"][attack]).squeeze(1)
            n_batches = math.ceil(todo.numel() / batch_size)
            adversary.attacks_to_run = [attack]
            for b in range(n_batches):
                chunk = todo[b * batch_size : (b + 1) * batch_size]
                _attack_chunk(adversary, x, y, chunk, x_adv, state)
                state["attempted"][attack][chunk] = True
                if path is not None:
                    save_state(path, state)
                if on_progress is not None:
                    on_progress(_total_record(attack, b + 1, n_batches, i, state, len(chosen)))
            state["per_attack"][attack] = state["robust"].float().mean().item()
        if path is not None:
            save_state(path, state)
    return AutoAttackResult(x_adv, state["robust"].clone(), state["clean"].clone(), dict(state["per_attack"]))

