"""An image drawn with half-block cells (two pixel rows per character cell): works over any SSH terminal
and renders deterministically, so snapshot tests of it are stable."""

from __future__ import annotations

import numpy as np
from textual.widgets import Static

from advtui.report.halfblock import halfblock, magnify


class HalfBlockImage(Static):
    """A (C, H, W) or (H, W, C) image in [0, 1], ``cells`` characters wide; ``magnified`` maps a signed
    perturbation to [0, 1] (grey = unchanged) scaled to its largest entry, so tiny changes are visible."""

    DEFAULT_CSS = "HalfBlockImage { width: auto; height: auto; }"

    def __init__(self, image: np.ndarray | None = None, cells: int = 16, *, magnified: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cells = cells
        self.show(image, magnified=magnified)

    def show(self, image: np.ndarray | None, cells: int | None = None, *, magnified: bool = False) -> None:
        """Draw ``image`` (None: a blank area of the same size)."""
        self.cells = cells or self.cells
        if image is None:
            self.update("\n".join([" " * self.cells] * max(1, self.cells // 2)))
            return
        self.update(halfblock(magnify(image) if magnified else image, width=self.cells))
