"""An image in the terminal: half-block cells (two pixel rows per character cell), which work over any SSH
terminal and render deterministically, so snapshot tests of them are stable; or, where the terminal draws
graphics (Sixel, Kitty; :mod:`advtui.tui.graphics`), the real pixels in the same cells through textual-image.
:func:`image_widget` picks the one this terminal gets."""

from __future__ import annotations

import numpy as np
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
        self._shown = (image, magnified)

    def on_mount(self) -> None:
        self._draw()

    def show(self, image: np.ndarray | None, cells: int | None = None, *, magnified: bool = False) -> None:
        """Draw ``image`` (None: a blank area of the same size)."""
        self.cells = cells or self.cells
        # Kept for on_mount: a screen may show an image after this widget is attached but before its own Mount is
        # handled (seen in xterm: the Gallery's first row), and that Mount must draw the latest image, not the first.
        self._shown = (image, magnified)
        if self.is_attached:
            self._draw()

    def _draw(self) -> None:
        from PIL import Image as PILImage
        from textual_image.widget import Image  # only imported once graphics were detected (before the app ran)

        image, magnified = self._shown
        self.styles.width = self.cells
        # A new view per image: textual-image's Sixel view takes a new image only by recomposing, which Textual
        # skips for a view not yet attached.
        self.remove_children()
        if image is None:
            self.styles.height = max(1, self.cells // 2)
            return
        pixels = to_uint8_hwc(magnify(image) if magnified else image)
        self.styles.height = rows_for(pixels, self.cells)
        h, w = pixels.shape[:2]
        self.mount(Image(PILImage.fromarray(pixels).resize((w * UPSCALE, h * UPSCALE), PILImage.Resampling.NEAREST)))


def image_widget(image: np.ndarray | None = None, cells: int = 16, *, magnified: bool = False, **kwargs) -> Widget:
    """An image widget for this terminal: :class:`GraphicsImage` where it draws Sixel or Kitty graphics, else
    :class:`HalfBlockImage`. Both take ``show(image, cells, magnified=...)``."""
    kind = GraphicsImage if graphics.protocol() != graphics.HALFBLOCK else HalfBlockImage
    return kind(image, cells, magnified=magnified, **kwargs)
