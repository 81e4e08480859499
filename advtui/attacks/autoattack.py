"""AutoAttack through the PyPI package `pyautoattack`, as an attack of the one resumable driver.

The attacks themselves (APGD-CE, APGD-T, FAB-T, Square; APGD-CE/-DLR with EOT for 'rand') and their
settings are the package's, for the chosen `version`. `AutoAttackChunks` runs them one attack and one
chunk at a time through `AutoAttack.run_standard_evaluation` (each of the package's attacks is a part of
the driver's attack, run on the points still robust, as AutoAttack does); the driver
(`advtui.attacks.driver.attack_standing`) keeps the flags, the points tried and the adversarial images,
and its resume file, rewritten after every chunk.

Why not the package's own `state_path`: in pyautoattack 0.2.0 it cannot resume. The state file
stores the attack set as the string of a Python set, so a restart always fails with "The state was
created with a different set of attacks"; past that, the restore branch never defines `y_adv` and
crashes; and the adversarial images of points broken before the interruption are not kept at all
(the package returns clean images for them). The driver's file keeps flags, tried points and those images.

Progress goes through the driver (one record per chunk, about all N points). The package's own
`auto-attack` log messages (about the chunk it was handed) stay on that logger.

Which points are attacked (robust accuracy is a per-point worst case, so a broken point needs no more work):
the driver runs each of the package's attacks only on the points the attacks before it left standing, as
AutoAttack chains them (`bench/active_set.py` counts what that saves). Inside the package (0.2.0), APGD's
restarts, APGD-T's target classes and FAB's restarts each attack only the points still classified
correctly, and Square Attack spends each query only on the points not yet fooled. One APGD run, though,
keeps every point of its batch for all its iterations, broken or not; its step sizes are per point, so
dropping broken points would leave the others' runs unchanged, but that loop is the package's, and
changing it means forking it. Each call of `run_standard_evaluation` also re-checks the chunk it is given:
about 9 forward passes per point (5 for randomness in 'standard', one each for the output range, dynamic
defences, the clean accuracy and the verdict), next to the ~100 gradient passes of one APGD run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import torch
from pyautoattack import AutoAttack
from torch import Tensor, nn

from advtui.attacks.driver import ChunkFn, RobustResult, Run, attack_standing, clean_correct
from advtui.catalog.attacks import Version, check_attack_settings
from advtui.progress import ProgressFn

#: The package's names of the norms (advtui's APGD on an objective, `advtui.attacks.apgd`, uses them too).
PACKAGE_NORM = {"l2": "L2", "linf": "Linf"}
# The package's targeted attacks try the 9 runner-up classes; DLR losses need 3 (untargeted) or
# 4 (targeted) classes.
_MAX_TARGETS = 9
_MIN_CLASSES = {"apgd-dlr": 3, "apgd-t": 4, "fab-t": 2, "apgd-ce": 2, "square": 2}
# The part that re-checks clean accuracy before the package's attacks (see `AutoAttackChunks`).
CLEAN = "clean"


@contextmanager
def fork_rng(device: torch.device) -> Iterator[None]:
    """Keep the caller's RNG state: the package reseeds torch's global RNG at every attack."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


class AutoAttackChunks:
    """AutoAttack (`version` 'standard', or 'rand' for randomised models) at radius `eps`, as a driver attack.

    Its parts are the version's attacks (or the subset `attacks`, in the version's order), each run over
    the points still standing. With `recheck_clean`, a first part re-classifies those points clean and
    drops the ones now wrong: a randomised model draws new noise at every call, and the package judges
    each point on its own draws (this is what AutoAttack inside `robust_accuracy` does after the
    attacks before it). eps 0 runs none of the package's attacks.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str,
        norm: Literal["l2", "linf"],
        eps: float,
        version: Version,
        device: torch.device,
        attacks: Sequence[str] | None = None,
        recheck_clean: bool = True,
    ) -> None:
        check_attack_settings(norm=norm, eps=eps, version=version)
        self.model, self.name, self.norm, self.device = model, name, norm, device
        # The package's seed is the run's (known when it runs); until then the package has none.
        self.adversary = AutoAttack(model, norm=PACKAGE_NORM[norm], eps=eps, version=version, device=device)
        full = tuple(self.adversary.attacks_to_run)
        if attacks is not None and (not attacks or set(attacks) - set(full)):
            raise ValueError(
                f"attacks: {list(attacks)} is not a non-empty subset of {version}'s {list(full)}; pick from those"
            )
        chosen = tuple(a for a in full if (attacks is None or a in attacks) and eps > 0)
        self.parts = ((CLEAN,) if recheck_clean else ()) + chosen
        self.identity = {"norm": norm, "eps": float(eps), "version": version}

    def _configure(self, run: Run) -> None:
        """Fit the package to the model's class count; refuse attacks it cannot run on this model."""
        attacks = [a for a in self.parts if a != CLEAN]
        if "square" in attacks and self.norm == "l2" and min(run.image_shape[-2:]) < 5:
            # The package's L2 Square Attack tiles the image in 5x5 blocks and divides by zero below that.
            raise ValueError(
                f"attacks: square (L2) needs images of at least 5x5 pixels, got {tuple(run.image_shape[-2:])}; "
                "pass attacks without it"
            )
        for attack in attacks:
            if run.n_classes < _MIN_CLASSES[attack]:
                raise ValueError(
                    f"attacks: {attack} needs at least {_MIN_CLASSES[attack]} classes, the model has "
                    f"{run.n_classes}; pass attacks without it"
                )
        self.adversary.apgd_targeted.n_target_classes = min(_MAX_TARGETS, run.n_classes - 1)
        self.adversary.fab.n_target_classes = min(_MAX_TARGETS, run.n_classes - 1)
        self.adversary.seed = (run.seed + run.index) % 2**31

    def _attack_chunk(self, part: str, x: Tensor, y: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
        if part == CLEAN:
            correct, _ = clean_correct(self.model, x, y, batch_size=x.shape[0], device=self.device)
            return ~correct, x
        self.adversary.attacks_to_run = [part]
        adv, y_adv = self.adversary.run_standard_evaluation(x, y, batch_size=x.shape[0])
        # The package's own verdict (its y_adv), so a randomised model is judged on the draw it attacked.
        return (y_adv != y).cpu(), adv

    @contextmanager
    def running(self, run: Run) -> Iterator[ChunkFn]:
        """Configure the package for the run and yield the chunk attack, keeping the caller's RNG state."""
        self._configure(run)
        with fork_rng(self.device):
            yield self._attack_chunk


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
) -> RobustResult:
    """AutoAttack (`version` 'standard' or 'rand' for randomised models) on (x, y) at radius `eps`.

    Args:
        model: classifier returning logits; run in eval mode with parameter grads off, then restored.
        x, y: images in [0, 1] and labels; attacked on x's device.
        norm: "l2" or "linf".
        eps: radius in pixel units of `norm` (0: no attack, robust = clean-correct).
        version: the package's attack set and settings ('rand': APGD-CE/-DLR with 20 EOT samples).
        batch_size: points per attack call; also the resume granularity.
        state_path: resume file; an existing one for the same data, model and settings is continued,
            one for another evaluation is discarded with one line (see `advtui.attacks.driver`).
        on_progress: the progress protocol (phase "autoattack", total = N, info: ``part``, the package's
            attack, its ``batch`` of ``n_batches``, ``robust_acc``); see `advtui.attacks.driver`.
        seed: the package's seed (it reseeds torch's global RNG; the caller's RNG state is restored).
        attacks: a subset of the version's attacks (same settings), in the version's order.

    Returns:
        RobustResult with adversarial images (``x_adv``), per-point flags and, in ``per_attack``, the
        robust accuracy after each of the package's attacks (cumulative worst case).
    """
    adapter = AutoAttackChunks(
        model, name=f"aa-{version}-{norm}-eps{eps:g}", norm=norm, eps=eps, version=version, device=x.device,
        attacks=attacks, recheck_clean=False,
    )
    # Fork around the clean pass too: for a randomised model it draws from the global RNG as well.
    with fork_rng(x.device):
        result = attack_standing(
            model, x, y, [adapter], batch_size=batch_size, seed=seed, device=x.device, state_path=state_path,
            keep_images=True, on_progress=on_progress, phase="autoattack",
        )
    return RobustResult(
        robust=result.robust, clean=result.clean, per_attack=result.per_part[adapter.name],
        per_part=result.per_part, x_adv=result.x_adv,
    )
