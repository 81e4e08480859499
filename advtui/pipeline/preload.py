"""Imported once by ``advtui repro``'s fork server (:mod:`advtui.pipeline.warmstart`) so that every stage forked
from it starts with torch, the third-party libraries the stages load and the stage runners already imported.

Importing this module is its whole job (seconds of CPU): nothing else imports it. A library that is missing
here (a GPU box without pyautoattack) is skipped; the stage that needs it then fails as it would in its own
process.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

#: What the stages import lazily, inside functions (each takes one to six seconds of CPU on a 2-core machine):
#: module -> names to touch, since diffusers defers its real imports to the first attribute access.
THIRD_PARTY: dict[str, tuple[str, ...]] = {
    "torchvision": (),
    "timm": (),
    "diffusers": ("UNet2DModel", "DDPMScheduler"),
    "kornia.augmentation": (),
    "pyautoattack": ("AutoAttack",),
    "dvclive": ("Live",),
    "safetensors.torch": (),
}


def _load() -> None:
    import torch

    # diffusers asks at import whether an accelerator is present (diffusers/utils/torch_utils.py). On a CUDA
    # build the answer initialises CUDA, and CUDA initialised before a fork is unusable in the child. So the
    # imports here hear "none", and diffusers forgets that answer afterwards: each stage asks for itself.
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6; older diffusers ask torch.cuda at first use
    asked = getattr(accelerator, "is_available", None)
    if accelerator is not None:
        accelerator.is_available = lambda: False
    try:
        for module, names in THIRD_PARTY.items():
            try:
                loaded = import_module(module)
                for name in names:
                    getattr(loaded, name)
            except ImportError:
                continue
    finally:
        if accelerator is not None:
            accelerator.is_available = asked
    try:
        from diffusers.utils.torch_utils import TorchDeviceBackend

        TorchDeviceBackend._detect_device_type.cache_clear()
    except (ImportError, AttributeError):
        pass
    runners = import_module("advtui.pipeline.runners")
    for info in pkgutil.iter_modules(runners.__path__):
        import_module(f"{runners.__name__}.{info.name}")
    for module in ("advtui.cli.main", "advtui.cli.stage", "advtui.cli.report"):
        import_module(module)


_load()
