"""Process-wide runtime choices: which device to run on and how to seed every RNG."""

from __future__ import annotations

import random

import numpy as np
import torch


def pick_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name`` ("auto" picks CUDA when present, else CPU).

    ``name`` is one of the forms the params schema accepts (``advtui.catalog.params.DEVICE_FORMS``); one
    this machine lacks fails with one line naming ``device`` and what to set instead. Picking CUDA lets fp32
    convolutions and matrix products run in TF32, which keeps a 2/255 perturbation (the precision rule:
    ``advtui.attacks.speed``).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device '{name}' requested but CUDA is not available; set device: cpu or auto")
        index = int(name.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device '{name}' requested but this machine has {torch.cuda.device_count()} CUDA device(s); "
                "set device: cuda:0 or auto"
            )
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("device 'mps' requested but Apple's MPS is not available here; set device: cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a CPU generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
