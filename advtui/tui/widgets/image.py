"""An image in the terminal: half-block cells (two pixel rows per character cell), which work over any SSH
terminal and render deterministically, so snapshot tests of them are stable; or, where the terminal draws
graphics (Sixel, Kitty; :mod:`advtui.tui.graphics`), the real pixels in the same cells through textual-image.
:func:`image_widget` picks the one this terminal gets."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Container
from textual.widget import Widget
from textual.widgets import Static

from advtui.report.halfblock import halfblock, magnify, to_uint8_hwc
from advtui.tui import graphics

#: Pixels per image pixel handed to the terminal: upscaled without smoothing, so a pixel-level perturbation
#: stays crisp whatever filter the terminal's own scaling uses.
UPSCALE = 8


def rows_for(image: np.ndarray, cells: int) -> int:
    """Character rows an image takes ``cells`` wide (a cell is about twice as tall as wide)."""
    h, w = to_uint8_hwc(image).shape[:2]
    return max(1, round(cells * h / w / 2))


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


class GraphicsImage(Container):
    """The same image drawn with the terminal's graphics protocol (textual-image), in the cells a
    :class:`HalfBlockImage` of that width would take."""

    DEFAULT_CSS = "GraphicsImage { width: auto; height: auto; } GraphicsImage > * { width: 100%; height: 100%; }"

    def __init__(self, image: np.ndarray | None = None, cells: int = 16, *, magnified: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cells = cells
        self._first = (image, magnified)

    def compose(self) -> ComposeResult:
        from textual_image.widget import Image  # only imported once graphics were detected (before the app ran)

        yield Image()

    def on_mount(self) -> None:
        image, magnified = self._first
        self.show(image, magnified=magnified)

    def show(self, image: np.ndarray | None, cells: int | None = None, *, magnified: bool = False) -> None:
        """Draw ``image`` (None: a blank area of the same size)."""
        from PIL import Image as PILImage

        self.cells = cells or self.cells
        self.styles.width = self.cells
        if not self.children:  # not mounted yet: on_mount draws it
            self._first = (image, magnified)
            return
        view = self.children[0]
        if image is None:
            self.styles.height = max(1, self.cells // 2)
            view.image = None
            return
        pixels = to_uint8_hwc(magnify(image) if magnified else image)
        self.styles.height = rows_for(pixels, self.cells)
        h, w = pixels.shape[:2]
        view.image = PILImage.fromarray(pixels).resize((w * UPSCALE, h * UPSCALE), PILImage.Resampling.NEAREST)


def image_widget(image: np.ndarray | None = None, cells: int = 16, *, magnified: bool = False, **kwargs) -> Widget:
    """An image widget for this terminal: :class:`GraphicsImage` where it draws Sixel or Kitty graphics, else
    :class:`HalfBlockImage`. Both take ``show(image, cells, magnified=...)``."""
    kind = GraphicsImage if graphics.protocol() != graphics.HALFBLOCK else HalfBlockImage
    return kind(image, cells, magnified=magnified, **kwargs)
