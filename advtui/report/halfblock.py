"""Draw RGB images in any terminal with half-block cells (two pixel rows per character).

Works over plain SSH and renders deterministically, so previews and snapshot tests agree. Takes NumPy
arrays so that the TUI can use it without importing torch.
"""

from __future__ import annotations

import numpy as np
from rich.style import Style
from rich.text import Text


def to_uint8_hwc(image: np.ndarray) -> np.ndarray:
    """Accept CHW or HWC, float in [0, 1] or uint8; return HWC uint8 with 3 channels."""
    arr = np.asarray(image)
    if arr.ndim != 3:
        raise ValueError(f"image: expected 3 dimensions (CHW or HWC), got shape {arr.shape}")
    if arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def halfblock(image: np.ndarray, width: int | None = None) -> Text:
    """Render ``image`` as rich Text, ``width`` cells wide (default: one cell per pixel column)."""
    arr = to_uint8_hwc(image)
    h, w, _ = arr.shape
    if width is not None and width != w:
        # Nearest-neighbour resampling keeps pixel-level perturbation patterns crisp.
        height = max(2, round(h * width / w))
        rows = (np.arange(height) * h / height).astype(int)
        cols = (np.arange(width) * w / width).astype(int)
        arr = arr[rows][:, cols]
        h, w = height, width
    if h % 2:
        arr = np.concatenate([arr, arr[-1:]], axis=0)
    text = Text()
    for top, bottom in zip(arr[0::2], arr[1::2]):
        for (r1, g1, b1), (r2, g2, b2) in zip(top.tolist(), bottom.tolist()):
            text.append("▀", Style(color=f"rgb({r1},{g1},{b1})", bgcolor=f"rgb({r2},{g2},{b2})"))
        text.append("\n")
    text.rstrip()
    return text


def magnify(delta: np.ndarray) -> np.ndarray:
    """Map a perturbation (any sign, CHW or HWC floats) to [0, 1], 0.5 = unchanged, scaled to its max."""
    arr = np.asarray(delta, dtype=np.float32)
    scale = float(np.abs(arr).max()) or 1.0
    return 0.5 + 0.5 * arr / scale
