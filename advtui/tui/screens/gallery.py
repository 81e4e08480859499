"""The Gallery screen: each chosen source image beside its D_R, D_NR, D_rand and D_det versions, with
labels, the models' predictions and the magnified perturbations, drawn with half-block cells.

Reads ``data/gallery/gallery.safetensors`` (NumPy only, in a thread worker) and reloads it when the
gallery stage rewrites it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from advtui.appcore.galleryfile import GALLERY_FILE, Gallery, Tile, read_gallery
from advtui.tui.threads import deliver
from advtui.tui.widgets.image import HalfBlockImage
from advtui.tui.widgets.modebar import ModeBar

EMPTY_HINT = ("No gallery yet. Build it with `dvc repro gallery` (from the Pipeline screen, or a shell): it "
              "needs the source models, the constructed datasets and the E4 natural model, and picks a few "
              "source images to show beside their D_R, D_NR, D_rand and D_det versions.")
#: Rows besides the images: header, title, legend, footer, the tile captions and spacing.
CHROME_ROWS = 14


def tile_width(width: int, height: int, n_tiles: int, image_aspect: float = 1.0) -> int:
    """Cells per image so that ``n_tiles`` images fit side by side in ``width`` columns and two of them
    (image, perturbation) plus captions fit in ``height`` rows; between 6 and 32 cells."""
    by_width = (width - 2 - (n_tiles - 1)) // max(n_tiles, 1)
    by_height = int((height - CHROME_ROWS) / image_aspect)  # each image is cells/2 rows, two images per tile
    return max(6, min(32, by_width, by_height))


def _short(name: str) -> str:
    return name[:1].upper()


class GalleryTile(Vertical):
    """One set's image with its caption, and under it the perturbation that made it."""

    DEFAULT_CSS = "GalleryTile { width: auto; height: auto; }"

    def compose(self) -> ComposeResult:
        yield HalfBlockImage(classes="tile-image")
        yield Static(classes="tile-caption")
        yield HalfBlockImage(classes="tile-delta")
        yield Static(classes="tile-delta-caption")

    def show(self, tile: Tile, gallery: Gallery, cells: int) -> None:
        """Draw ``tile`` ``cells`` characters wide."""
        self.query_one(".tile-image", HalfBlockImage).show(tile.image, cells)
        caption = Text(no_wrap=True, overflow="ellipsis")
        caption.append(f"{tile.set}\n", style="bold")
        caption.append(f"y {gallery.class_name(tile.label)}")
        for model, pred in tile.preds.items():
            caption.append(f"\n{_short(model)} {gallery.class_name(pred)}", style="green" if pred == tile.label else "red")
        caption.truncate(cells * 8)
        self.query_one(".tile-caption", Static).update(caption)
        self.query_one(".tile-caption", Static).styles.width = cells
        self.query_one(".tile-delta", HalfBlockImage).show(tile.delta, cells, magnified=True)
        if tile.delta is None:
            note = ""
        else:
            start = "noise" if tile.start == -1 else f"#{tile.start}"
            note = f"Δ {float(np.linalg.norm(tile.delta)):.2f}"
            if len(note) + len(start) + 2 <= cells:  # the start only where it fits on the line
                note += f" ←{start}"
        self.query_one(".tile-delta-caption", Static).update(Text(note, no_wrap=True, overflow="ellipsis"))
        self.query_one(".tile-delta-caption", Static).styles.width = cells


class GalleryScreen(Screen):
    """Source images and their constructed versions; ←/→ move between source images."""

    CSS_PATH = "gallery.tcss"
    BINDINGS = [
        # priority: the arrows move between images even while the scrolled gallery has the focus
        Binding("right,n", "move(1)", "Next image", key_display="→/n", priority=True),
        Binding("left,b", "move(-1)", "Previous image", key_display="←/b", priority=True),
        Binding("home", "jump(0)", "First", show=False, priority=True),
        Binding("end", "jump(-1)", "Last", show=False, priority=True),
        Binding("ctrl+r", "reload", "Reload", key_display="^r"),
    ]

    def __init__(self, root: Path, poll_s: float = 5.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.poll_s = poll_s
        self.gallery: Gallery | None = None
        self.position = 0
        self._stamp: tuple | None = None

    @property
    def path(self) -> Path:
        """Where the gallery stage writes its file."""
        return self.root / GALLERY_FILE

    def compose(self) -> ComposeResult:
        yield ModeBar("gallery")
        yield Static(EMPTY_HINT, id="gallery-hint")
        yield Static(id="gallery-title")
        with VerticalScroll(id="gallery-body"):
            yield Horizontal(id="gallery-row")
            yield Static(id="gallery-captions")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui gallery"
        self.action_reload()
        if self.poll_s > 0:
            self.set_interval(self.poll_s, self.action_reload)

    def action_reload(self) -> None:
        """Read the gallery file again if the stage rewrote it."""
        self._load()

    @work(thread=True, exclusive=True, group="gallery-load")
    def _load(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp == self._stamp and stamp is not None:
            return
        try:
            gallery, problem = read_gallery(self.path), None
        except (FileNotFoundError, ValueError) as err:
            gallery, problem = None, str(err)
        deliver(self.app, self._apply, stamp, gallery, problem)

    def _apply(self, stamp: tuple | None, gallery: Gallery | None, problem: str | None) -> None:
        self._stamp = stamp
        self.gallery = gallery
        hint = self.query_one("#gallery-hint", Static)
        hint.update(EMPTY_HINT if problem is None or stamp is None else problem)
        hint.display = gallery is None
        self.position = min(self.position, len(gallery) - 1) if gallery else 0
        self._build()

    def _build(self) -> None:
        row = self.query_one("#gallery-row", Horizontal)
        row.remove_children()
        captions = self.query_one("#gallery-captions", Static)
        if self.gallery is None:
            self.query_one("#gallery-title", Static).update("")
            captions.update("")
            return
        captions.update(Text("\n".join(f"{name}: {text}" for name, text in self.gallery.captions.items()), style="dim"))
        row.mount_all(GalleryTile() for _ in self.gallery.sets)
        self.call_after_refresh(self._draw)

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        gallery = self.gallery
        if gallery is None or not len(gallery):
            return
        tiles = gallery.row(self.position)
        _, h, w = tiles[0].image.shape
        cells = tile_width(self.size.width, self.size.height, len(tiles), h / w)
        for widget, tile in zip(self.query(GalleryTile), tiles):
            widget.show(tile, gallery, cells)
        natural = tiles[0]
        legend = ", ".join(f"{_short(m)} {desc}" for m, desc in gallery.models.items())
        title = Text.assemble(
            (f"source {self.position + 1}/{len(gallery)}", "bold"),
            f" · natural image #{int(gallery.index[self.position])}, class {gallery.class_name(natural.label)}"
            f" · ←/→ move\n",
            (f"y label; predicted by {legend} (green: = y); Δ: L2 change from start #, magnified", "dim"),
        )
        self.query_one("#gallery-title", Static).update(title)

    def action_move(self, step: int) -> None:
        """Show the next (step 1) or previous (-1) source image, wrapping around."""
        if self.gallery is not None and len(self.gallery):
            self.position = (self.position + step) % len(self.gallery)
            self._draw()

    def action_jump(self, position: int) -> None:
        """Show the first (0) or last (-1) source image."""
        if self.gallery is not None and len(self.gallery):
            self.position = position % len(self.gallery)
            self._draw()
