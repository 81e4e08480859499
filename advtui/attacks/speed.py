"""Faster model steps on every device: channels_last activations, ``torch.compile``, and the precision rule.

An attack step is a forward pass and a backward pass to the input; the model's share of it is 98-99.9%
(bench/README.md), so how the model runs decides an attack's speed. ``faster(model, speed, device)`` is
the model to attack, construct or train with while the body runs (the evaluations and constructions take
``attack.speed``, the trainer a recipe's ``channels_last`` and ``compile``: ``TrainConfig.speed``);
``resolve`` says which speed-ups a ``SpeedConfig`` turns on for a model on a device.

"auto" turns a speed-up on where it pays (``AUTO_MIN_PARAMS``, measured by ``bench/throughput.py`` on a
2-core CPU; the CUDA choice is the usual GPU practice, not measured here):
- CUDA: channels_last for every convolutional model (cuDNN's fast kernels are NHWC); compile for models
  of at least 1M parameters (below that, compiling takes longer than the evaluation it speeds up).
- CPU: compile for models of at least 1M parameters (ResNet-18 and up: compiling costs 20 s to 2 min per
  process); channels_last for every model whose convolutions hold most of its parameters and that has no
  GroupNorm, at any size (measured, bench/README.md: small_cnn 1.25-1.36x per attack step, ResNet-18
  1.14-1.26x; the DDPM UNet, whose GroupNorm loses more in NHWC than its convolutions gain, 0.93x; the ViT, one
  patch convolution before its attention blocks, 0.98x).
- Other devices (MPS): neither.

The compiled code is cached on disk in ``<advtui cache>/inductor`` (``$TORCHINDUCTOR_CACHE_DIR`` when that is
set), so the next process reuses it instead of compiling again. Where compiling fails (no C++ compiler for
a CPU, no Triton for a GPU, a Python that torch.compile does not support), the model runs uncompiled and
one line on stderr says so.

Precision (DESIGN 4), the one rule for every pass that carries a perturbation: a non-robust perturbation
of L2 norm 0.5 on a 32x32x3 image is about 2/255 per pixel, and the number format of the images, of the
perturbation and of the model's first op (its normalisation and first convolution, which see the pixels)
decides whether it survives:
- fp32 keeps 24 significant bits: exact for this purpose. Images, perturbations and attack iterates are
  always fp32 tensors (constructed sets may be stored as float16, whose 11 bits round a pixel by at most
  2^-12, 1/32 of a 2/255 change: ``construct.precision``).
- TF32 (CUDA's tensor-core format for fp32 convolutions and matrix products) keeps 11 significant bits of
  each input: a normalised pixel (CIFAR: |v| < 2.2) is rounded by at most 2^-10, 1/32 of what a 2/255
  change becomes after normalisation (/0.25), so the change survives. advtui runs every fp32 pass in TF32 on CUDA
  (``advtui.runtime.pick_device``; cuDNN's convolutions already default to it).
- bf16 keeps 8: a pixel near 0.5 moves in steps of 1/255 (2^-9 after rounding to nearest), so a ~2/255
  change is largely rounded away. So bf16 autocast runs only where no perturbation passes through: training
  on natural images (``TrainConfig.precision``: "bf16", or "auto" on CUDA). The trainer refuses it, in one
  line, for a constructed training set and for adversarial training (``advtui.paradigms.trainer.input_precision``),
  and attacks and constructions never autocast: they run fp32 (TF32 on CUDA) with channels_last and compile.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from advtui.catalog.attacks import SpeedConfig
from advtui.data.loaders import cache_dir

_LARGE = 1_000_000
#: Per device type, the smallest parameter count at which "auto" turns each speed-up on (absent: never).
AUTO_MIN_PARAMS: dict[str, dict[str, int]] = {
    "cuda": {"channels_last": 0, "compile": _LARGE},
    "cpu": {"channels_last": 0, "compile": _LARGE},
}


@dataclass(frozen=True)
class Speedups:
    """The speed-ups a model runs with: NHWC activations, ``torch.compile``."""

    channels_last: bool = False
    compile: bool = False

    @property
    def any(self) -> bool:
        """Whether either is on."""
        return self.channels_last or self.compile


def resolve(speed: SpeedConfig, model: nn.Module, device: torch.device | str) -> Speedups:
    """The speed-ups ``speed`` turns on for ``model`` on ``device`` ("auto": by ``AUTO_MIN_PARAMS``).

    channels_last is a layout of 4-D tensors, so "auto" leaves it off for a model without 2-D convolutions.
    """
    size = sum(p.numel() for p in model.parameters())
    kind = torch.device(device).type
    floors = AUTO_MIN_PARAMS.get(kind, {})
    convolutional = any(isinstance(m, nn.Conv2d) for m in model.modules())
    if kind == "cpu":
        convolutional = convolutional and _nhwc_pays_on_cpu(model, size)

    def choose(name: str, applies: bool) -> bool:
        setting = getattr(speed, name)
        if setting != "auto":
            return setting == "on"
        return applies and name in floors and size >= floors[name]

    return Speedups(channels_last=choose("channels_last", convolutional), compile=choose("compile", True))


def _nhwc_pays_on_cpu(model: nn.Module, size: int) -> bool:
    """Whether channels_last speeds ``model`` up on a CPU: its convolutions hold most of its parameters, and it has
    no GroupNorm (module docstring: what was measured)."""
    conv = sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(recurse=False))
    return 2 * conv > size and not any(isinstance(m, nn.GroupNorm) for m in model.modules())


def _say_uncompiled(err: BaseException) -> None:
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
    print(f"torch.compile unavailable ({reason}); running the model uncompiled", file=sys.stderr, flush=True)


class _Faster(nn.Module):
    """``model`` fed NHWC inputs and/or run compiled; its parameters, buffers and modes are ``model``'s own."""

    def __init__(self, model: nn.Module, chosen: Speedups) -> None:
        super().__init__()
        self.model = model
        self.channels_last = chosen.channels_last
        self.compiled: nn.Module | None = None
        if chosen.compile:
            # Compiling happens at the first call; a failure then comes as one of dynamo's exceptions.
            from torch._dynamo.exc import TorchDynamoException

            self._compile_errors: tuple[type[BaseException], ...] = (TorchDynamoException,)
            try:
                # Kept out of the module tree (set through __dict__): state_dict() and parameters() stay model's.
                self.__dict__["compiled"] = torch.compile(model)
            except RuntimeError as err:  # a Python or platform torch.compile does not support
                _say_uncompiled(err)

    def __getattr__(self, name: str) -> object:
        """``model``'s own attributes (``features``, ``head``, ``encoder``...): a step or an inversion that
        reaches past ``forward`` gets the model's, uncompiled (channels_last weights still apply)."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def forward(self, x: Tensor) -> Tensor:
        """``model(x)``, through the speed-ups."""
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.compiled is not None:
            try:
                return self.compiled(x)
            except self._compile_errors as err:  # raised by the compiler only, never by the model's own code
                _say_uncompiled(err)
                self.compiled = None
        return self.model(x)


def _to_channels_last(model: nn.Module) -> list[Tensor]:
    """Store ``model``'s 4-D weights and buffers NHWC; return those that were not, to restore afterwards."""
    changed = [t for t in (*model.parameters(), *model.buffers())
               if t.dim() == 4 and not t.is_contiguous(memory_format=torch.channels_last)]
    for t in changed:
        t.data = t.data.contiguous(memory_format=torch.channels_last)
    return changed


@contextmanager
def faster(model: nn.Module, speed: SpeedConfig | None, device: torch.device | str) -> Iterator[nn.Module]:
    """The model to attack (or train) ``model`` through while the body runs: ``model`` itself when ``speed`` (None: plain)
    turns nothing on for it on ``device``, else a wrapper with the chosen speed-ups.

    channels_last re-lays the model's 4-D weights NHWC for the duration (values unchanged) and restores their
    layout afterwards, so the model is saved (and, after an attack, trained) as before. Compiling sends the compiled code to
    advtui's cache folder (see the module docstring).
    """
    chosen = resolve(speed, model, device) if speed is not None else Speedups()
    if not chosen.any:
        yield model
        return
    if chosen.compile:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir() / "inductor"))
    relaid = _to_channels_last(model) if chosen.channels_last else []
    try:
        yield _Faster(model, chosen)
    finally:
        for t in relaid:
            t.data = t.data.contiguous()
