"""Rows of captioned half-block images for the terminal (CLI previews; the TUI gallery reuses it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from advtui.report.halfblock import halfblock


def image_row(images: Sequence[np.ndarray], captions: Sequence[str], width: int = 16) -> Table:
    """One row of images (CHW or HWC arrays), each ``width`` cells wide, with a caption under it."""
    if len(images) != len(captions):
        raise ValueError(f"captions: {len(captions)} captions for {len(images)} images; pass one per image")
    table = Table.grid(padding=(0, 1))
    for _ in images:
        table.add_column(width=width, no_wrap=True)
    cells = [Group(halfblock(img, width=width), Text(cap, overflow="ellipsis", no_wrap=True)) for img, cap in zip(images, captions)]
    table.add_row(*cells)
    return table
