"""The one resumable loop behind robust accuracy: attack, chunk by chunk, the points still standing.

`attack_standing` runs a list of attacks on n points and keeps the per-point state of the evaluation:
which points are correct clean, which are still robust (correct clean and under every attack so far),
which points each attack has tried, and, when asked, the adversarial image of every point broken. A
point is robust only if no attack breaks it (the per-point worst case, DESIGN section 9).

Each attack runs in parts (PGD: one; AutoAttack: a clean re-check, then each of the package's attacks),
in order, and every part attacks only the points still standing, `batch_size` at a time, as AutoAttack
chains its own attacks; this changes the work, not the answer. After every chunk the state goes to `state_path` (written
atomically), so a rerun with the same data, model, attacks and batch size continues where the last one
stopped: no finished chunk is attacked again. "The same" is decided by content: the file records the
store's checksum (`advtui.data.store.tensors_checksum`) of the images and labels and of the model's weights
and buffers, so a resume file left by another model (one retrained since, even with the same params) or
other data is discarded with one line and the evaluation starts over.

An attack plugs in through `ChunkAttack`: its name, its parts, its settings (for the resume file) and a
`running` context that yields the function attacking one chunk. Progress goes out through the one
protocol (`advtui.progress.ProgressFn`): after every chunk and at the end of every attack,
``on_progress(phase, done, total, attack=..., part=..., batch=..., n_batches=..., robust_acc=...)`` with
total = len(attacks) * n and done = the points each attack has settled (tried by its parts, or broken
before their turn; averaged over its parts), so done rises to total and never goes back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor, nn

from advtui.attacks.pgd import attack_mode
from advtui.catalog.attacks import check_attack_settings
from advtui.data.store import tensors_checksum
from advtui.files import discard_stale, write_atomic
from advtui.progress import ProgressFn

if TYPE_CHECKING:
    from advtui.shards import AttackShard

_STATE_FORMAT = 3

ChunkFn = Callable[[str, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
"""``attack_chunk(part, x, y, points) -> (broken, x_adv)``: attack images ``x`` (labels ``y``, both on the
evaluation's device; ``points`` their indices, on CPU) with ``part``; ``broken``: (len,) bool on CPU,
misclassified after the attack; ``x_adv``: the attacked images (kept only where broken)."""


@dataclass(frozen=True)
class Run:
    """What an attack may need to know about the evaluation it runs in.

    seed: the evaluation's base seed (kept in the resume file, so a resumed run draws what the first
    one would have); index: the attack's position in the list; n: points evaluated; n_classes: the
    model's outputs; image_shape: (C, H, W) of one image.
    """

    seed: int
    index: int
    n: int
    n_classes: int
    image_shape: tuple[int, ...]


class ChunkAttack(Protocol):
    """An attack `attack_standing` can run.

    name: its label in results and progress; parts: its sub-attacks, run in order over the points still
    standing; identity: the settings that decide its outcome (they must match for a resume);
    running(run): a context held while the attack's turn lasts (set-up, checks against the model),
    yielding its `ChunkFn`; the driver enters it even when no point is left to try.
    """

    name: str
    parts: tuple[str, ...]
    identity: Mapping[str, Any]

    def running(self, run: Run) -> AbstractContextManager[ChunkFn]: ...


@dataclass(frozen=True)
class RobustResult:
    """Outcome of an evaluation on n points.

    robust: (n,) bool on CPU, correct clean and under every attack; clean: (n,) bool, correct clean;
    per_attack: attack name -> robust accuracy after that attack and all before it (cumulative worst
    case, in the order run); per_part: attack name -> {part: the same after each of its parts};
    x_adv: the adversarial images (clean images where no attack succeeded) when they were kept, else None.
    """

    robust: Tensor
    clean: Tensor
    per_attack: dict[str, float]
    per_part: dict[str, dict[str, float]]
    x_adv: Tensor | None = None

    @property
    def n(self) -> int:
        """Points evaluated."""
        return self.robust.numel()

    @property
    def clean_acc(self) -> float:
        """Fraction of points classified correctly without attack."""
        return self.clean.float().mean().item()

    @property
    def robust_acc(self) -> float:
        """Fraction of points robust under all attacks run."""
        return self.robust.float().mean().item()


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters are (CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def clean_correct(
    model: Callable[[Tensor], Tensor], x: Tensor, y: Tensor, *, batch_size: int, device: torch.device
) -> tuple[Tensor, int]:
    """Per point, whether ``model`` classifies ``x`` correctly without attack ((n,) bool on CPU), and how
    many classes it outputs. Batches of ``batch_size`` go to ``device``; the caller sets eval mode."""
    correct, n_classes = [], 0
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = model(x[i : i + batch_size].to(device))
            n_classes = logits.shape[1]
            correct.append((logits.argmax(1) == y[i : i + batch_size].to(device)).cpu())
    return torch.cat(correct), n_classes


def _key(model: nn.Module, x: Tensor, y: Tensor, **settings: Any) -> dict[str, Any]:
    """Identity of an evaluation for its resume file: the content hashes of the data and of the model's
    weights and buffers, and the `settings` that decide the outcome."""
    return {
        "format": _STATE_FORMAT,
        "data": tensors_checksum({"x": x, "y": y}),
        "model": tensors_checksum(model.state_dict()),
        **settings,
    }


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """Write a resume file atomically (a crash mid-write leaves the previous one intact)."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def _load_state(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The resume file at `path` if it exists and belongs to this evaluation (`key`); one of another
    evaluation (other data, model or settings) is deleted with one line, and None returned."""
    if not path.exists():
        return None
    state = torch.load(path, weights_only=True)
    if state.get("key") != key:
        discard_stale(path)
        return None
    return state


def _check_input(x: Tensor, y: Tensor, attacks: Sequence[ChunkAttack], batch_size: int) -> None:
    if x.shape[0] == 0:
        raise ValueError("x: no images to attack; pass at least one image")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y: {y.shape[0]} labels for {x.shape[0]} images; pass one label per image")
    check_attack_settings(batch_size=batch_size)
    names = [a.name for a in attacks]
    if len(set(names)) < len(names):
        raise ValueError(f"attacks: names {names} repeat; give each attack its own name (see spec_names)")


def _accuracy(flags: Tensor) -> float:
    return flags.float().mean().item()


def _settled(state: dict[str, Any], i: int) -> int:
    """Points attack ``i`` has settled: per part, those it tried or that fell before its turn; mean over parts."""
    robust, tried = state["robust"], state["tried"][i]
    if not tried:
        return robust.numel()
    return round(sum(robust.numel() - int((robust & ~t).sum()) for t in tried) / len(tried))


def _new_state(
    model: nn.Module, x: Tensor, y: Tensor, attacks: Sequence[ChunkAttack], *, key: dict[str, Any], seed: int,
    batch_size: int, device: torch.device,
) -> dict[str, Any]:
    clean, n_classes = clean_correct(model, x, y, batch_size=batch_size, device=device)
    n = x.shape[0]
    return {
        "key": key, "seed": seed, "n_classes": n_classes, "clean": clean, "robust": clean.clone(),
        "tried": [[torch.zeros(n, dtype=torch.bool) for _ in a.parts] for a in attacks],
        "per_part": [{} for _ in attacks], "per_attack": {},
        # The adversarial images of the points broken so far (the rest of x_adv is x itself).
        "adv_points": torch.zeros(0, dtype=torch.long), "adv_images": x[:0].detach().cpu(),
    }


def _record(state: dict[str, Any], chunk: Tensor, broken: Tensor, adv: Tensor, x: Tensor, x_adv: Tensor | None) -> None:
    """Mark the points of ``chunk`` that ``broken`` flags, and keep their images when images are kept."""
    state["robust"][chunk[broken]] = False
    if x_adv is None:
        return
    x_adv[chunk[broken].to(x.device)] = adv[broken.to(adv.device)].to(x.device, x.dtype)
    changed = torch.nonzero(~state["robust"] & state["clean"]).squeeze(1)
    state["adv_points"], state["adv_images"] = changed, x_adv[changed.to(x.device)].cpu()


def attack_standing(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    attacks: Sequence[ChunkAttack],
    *,
    batch_size: int,
    seed: int,
    device: torch.device | str | None = None,
    state_path: Path | str | None = None,
    keep_images: bool = False,
    on_progress: ProgressFn | None = None,
    phase: str = "attack",
    shard: AttackShard | None = None,
) -> RobustResult:
    """Clean and robust accuracy of ``model`` on (x, y) under ``attacks`` in order (per-point worst case).

    Args:
        model: classifier returning logits; run in eval mode with parameter grads off, then restored.
        x, y: images in [0, 1] and labels, on any device; moved to ``device`` chunk by chunk.
        attacks: run in order, each on the points the ones before left standing; names must differ.
        batch_size: points per chunk (the last may be smaller); also the resume granularity.
        seed: the base seed of a fresh evaluation (a resumed one keeps the seed it started with).
        device: where to attack; default the model's device.
        state_path: resume file; one for the same data, model (by content), attacks and batch size is
            continued, one for another evaluation is deleted (one line on stderr says so) and the
            evaluation starts over.
        keep_images: keep the adversarial image of every broken point (``RobustResult.x_adv``).
        on_progress: receives ``(phase, done, total, **info)`` as described in the module docstring.
        phase: the phase name progress reports.
        shard: this rank's share when several ranks split the evaluation (``advtui.shards``): the
            batches of every part go round the ranks, which merge their verdicts after it, so the result is
            the one-process result; rank 0 alone writes the resume file, at the end of every part (a rank's
            state between merges holds only its own batches). Not with ``keep_images``. None: one process.

    Returns:
        RobustResult with per-point flags, per-attack and per-part accuracies (and images if kept).
    """
    _check_input(x, y, attacks, batch_size)
    if shard is not None and keep_images:
        raise ValueError("keep_images: the ranks of a sharded evaluation do not gather images; run it in one process")
    device = torch.device(device) if device is not None else model_device(model)
    path = Path(state_path) if state_path is not None else None
    n, total = x.shape[0], len(attacks) * x.shape[0]
    with attack_mode(model):
        key = _key(
            model, x, y, batch_size=batch_size,
            attacks=[{"name": a.name, "parts": list(a.parts), **a.identity} for a in attacks],
        )

        def start() -> dict[str, Any]:
            state = _load_state(path, key) if path is not None else None
            if state is None:
                state = _new_state(model, x, y, attacks, key=key, seed=seed, batch_size=batch_size, device=device)
            return state

        state = start() if shard is None else shard.from_main(start)
        x_adv = x.detach().clone() if keep_images else None
        if x_adv is not None:
            x_adv[state["adv_points"].to(x.device)] = state["adv_images"].to(x.device, x.dtype)
        robust = state["robust"]

        def save() -> None:
            if path is not None and (shard is None or shard.is_main):
                _save_state(path, state)

        def report(i: int, **info: Any) -> None:
            if on_progress is not None:
                done = i * n + _settled(state, i)
                on_progress(phase, done, total, attack=attacks[i].name, **info, robust_acc=_accuracy(robust))

        save()
        for i, attack in enumerate(attacks):
            run = Run(seed=state["seed"], index=i, n=n, n_classes=state["n_classes"], image_shape=tuple(x.shape[1:]))
            with attack.running(run) as attack_chunk:
                for part, tried in zip(attack.parts, state["tried"][i]):
                    todo = torch.nonzero(robust & ~tried).squeeze(1)
                    n_batches = math.ceil(todo.numel() / batch_size)
                    for b in range(n_batches) if shard is None else shard.batches(n_batches):
                        chunk = todo[b * batch_size : (b + 1) * batch_size]
                        xb, yb = x[chunk.to(x.device)].to(device), y[chunk.to(y.device)].to(device)
                        broken, adv = attack_chunk(part, xb, yb, chunk)
                        _record(state, chunk, broken, adv, x, x_adv)
                        tried[chunk] = True
                        if shard is None:
                            save()
                        report(i, part=part, batch=b + 1, n_batches=n_batches)
                    if shard is not None:
                        shard.merge(robust, tried)
                        save()
                    # setdefault: a part finished before a resume keeps the accuracy it ended with
                    state["per_part"][i].setdefault(part, _accuracy(robust))
            state["per_attack"].setdefault(attack.name, _accuracy(robust))
            save()
            report(i)

    return RobustResult(
        robust=robust.clone(), clean=state["clean"].clone(), per_attack=dict(state["per_attack"]),
        per_part={a.name: dict(p) for a, p in zip(attacks, state["per_part"])}, x_adv=x_adv,
    )
