"""The Gallery screen: each chosen source image beside its D_R, D_NR, D_rand and D_det versions, with
labels, the models' predictions and the magnified perturbations, drawn with the terminal's graphics (Sixel,
Kitty) where it has them, else half-block cells (:mod:`advtui.tui.graphics`). ``enter`` zooms on one image:
it and its perturbation, as large as the terminal allows.

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
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from advtui.appcore.galleryfile import GALLERY_FILE, Gallery, Tile, read_gallery
from advtui.appcore.resultsdata import EXPORT_DIR
from advtui.report.export import Grid
from advtui.tui.screens.dialogs import export_view
from advtui.tui.threads import deliver
from advtui.tui.widgets.image import image_widget
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


def tile_caption(tile: Tile, gallery: Gallery) -> Text:
    """The tile's set (bold), its label and each model's prediction (green: right, red: wrong), a line each."""
    caption = Text(no_wrap=True, overflow="ellipsis")
    caption.append(f"{tile.set}\n", style="bold")
    caption.append(f"y {gallery.class_name(tile.label)}")
    for model, pred in tile.preds.items():
        caption.append(f"\n{_short(model)} {gallery.class_name(pred)}", style="green" if pred == tile.label else "red")
    return caption


def delta_note(tile: Tile, cells: int) -> str:
    """Under the perturbation: its L2 norm and, where it fits in ``cells``, the image it started from."""
    if tile.delta is None:
        return ""
    start = "noise" if tile.start == -1 else f"#{tile.start}"
    note = f"Δ {float(np.linalg.norm(tile.delta)):.2f}"
    return note + f" ←{start}" if len(note) + len(start) + 2 <= cells else note


#: Rows of the zoom besides its images and its caption's line per model: title, set, label, Δ, hint, borders.
ZOOM_CHROME_ROWS = 7


def zoom_cells(width: int, height: int, image_aspect: float = 1.0, n_models: int = 3) -> int:
    """Cells per image when the zoom shows an image and its perturbation side by side in ``width`` x ``height``
    (its title, caption and hint besides: a line per model among them): as large as both dimensions allow."""
    by_width = (width - 5) // 2
    by_height = int((height - ZOOM_CHROME_ROWS - n_models) * 2 / image_aspect)  # a cell row: two pixel rows
    return max(6, min(by_width, by_height))


class ZoomScreen(ModalScreen[None]):
    """One image of the gallery, large, beside its magnified perturbation; ←/→ the other sets of the same
    source image, ↑/↓ the previous / next source image."""

    DEFAULT_CSS = """
    ZoomScreen { align: center middle; }
    ZoomScreen > Vertical { width: auto; height: auto; padding: 0 1; border: round $accent; background: $surface; }
    ZoomScreen Horizontal { width: auto; height: auto; }
    ZoomScreen #zoom-image { margin-right: 1; }
    ZoomScreen Static { width: auto; }
    """
    BINDINGS = [
        Binding("right,n", "set(1)", "Next set", key_display="→"),
        Binding("left,b", "set(-1)", "Previous set", key_display="←"),
        Binding("down", "source(1)", "Next image", key_display="↓"),
        Binding("up", "source(-1)", "Previous image", key_display="↑"),
        Binding("escape,enter", "close", "Close", key_display="esc"),
    ]

    def __init__(self, gallery: Gallery, position: int, set_index: int = 0) -> None:
        super().__init__()
        self.gallery = gallery
        self.position = position
        self.set_index = set_index

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="zoom-title")
            with Horizontal():
                yield image_widget(id="zoom-image")
                yield image_widget(id="zoom-delta")
            yield Static(id="zoom-caption")
            yield Static("←/→ set · ↑/↓ source image · esc close", classes="hint")

    def on_mount(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    @property
    def tile(self) -> Tile:
        """The tile shown."""
        return self.gallery.row(self.position)[self.set_index]

    def _draw(self) -> None:
        tile = self.tile
        _, h, w = tile.image.shape
        cells = zoom_cells(self.app.size.width, self.app.size.height, h / w, len(self.gallery.models))
        self.query_one("#zoom-image").show(tile.image, cells)
        self.query_one("#zoom-delta").show(tile.delta, cells, magnified=True)
        self.query_one("#zoom-title", Static).update(Text.assemble(
            (f"{tile.set}", "bold"), f" · source {self.position + 1}/{len(self.gallery)}, natural image "
            f"#{int(self.gallery.index[self.position])} · "
            + ("right: perturbation, magnified" if tile.delta is not None else "the source image: no perturbation")))
        caption = tile_caption(tile, self.gallery)
        note = delta_note(tile, cells)
        if note:
            caption.append(f"\n{note}", style="dim")
        self.query_one("#zoom-caption", Static).update(caption)

    def action_set(self, step: int) -> None:
        """Show the next (1) or previous (-1) set's version of the same source image, wrapping around."""
        self.set_index = (self.set_index + step) % len(self.gallery.sets)
        self._draw()

    def action_source(self, step: int) -> None:
        """Show the same set's version of the next (1) or previous (-1) source image, wrapping around."""
        self.position = (self.position + step) % len(self.gallery)
        self._draw()

    def action_close(self) -> None:
        """Back to the gallery."""
        self.dismiss(None)


class GalleryTile(Vertical):
    """One set's image with its caption, and under it the perturbation that made it."""

    DEFAULT_CSS = "GalleryTile { width: auto; height: auto; }"

    def compose(self) -> ComposeResult:
        yield image_widget(classes="tile-image")
        yield Static(classes="tile-caption")
        yield image_widget(classes="tile-delta")
        yield Static(classes="tile-delta-caption")

    def show(self, tile: Tile, gallery: Gallery, cells: int) -> None:
        """Draw ``tile`` ``cells`` characters wide."""
        self.query_one(".tile-image").show(tile.image, cells)
        caption = tile_caption(tile, gallery)
        caption.truncate(cells * 8)
        self.query_one(".tile-caption", Static).update(caption)
        self.query_one(".tile-caption", Static).styles.width = cells
        self.query_one(".tile-delta").show(tile.delta, cells, magnified=True)
        note = delta_note(tile, cells)
        self.query_one(".tile-delta-caption", Static).update(Text(note, no_wrap=True, overflow="ellipsis"))
        self.query_one(".tile-delta-caption", Static).styles.width = cells


class GalleryScreen(Screen):
    """Source images and their constructed versions; ←/→ move between source images."""

    CSS_PATH = "gallery.tcss"
    BINDINGS = [
        # priority: the arrows move between images even while the scrolled gallery has the focus
        Binding("right,n", "move(1)", "Next image", key_display="→/n", priority=True),
        Binding("left,b", "move(-1)", "Previous image", key_display="←/b", priority=True),
        Binding("enter", "zoom", "Zoom"),
        Binding("x", "export", "Export"),
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

    def action_zoom(self) -> None:
        """Show the current source image large, beside its perturbation (←/→ there: the other sets)."""
        if self.gallery is not None and len(self.gallery):
            self.app.push_screen(ZoomScreen(self.gallery, self.position))

    def row_grid(self) -> Grid:
        """The source image shown as a table: a row per set, with its label, each model's prediction and its
        perturbation's L2 norm and start image."""
        gallery = self.gallery
        tiles = gallery.row(self.position)
        models = list(gallery.models)
        rows = [[t.set, gallery.class_name(t.label), *(gallery.class_name(t.preds[m]) if m in t.preds else "—"
                                                        for m in models),
                 "—" if t.delta is None else f"{float(np.linalg.norm(t.delta)):.3f}",
                 "—" if t.start is None else "noise" if t.start == -1 else f"#{t.start}"] for t in tiles]
        index = int(gallery.index[self.position])
        return Grid(id=f"gallery_{index}", title=f"Gallery: natural image #{index} and its constructed versions",
                    caption="label: the set's label; a column per model: its prediction; ΔL2: the change from the "
                            "start image", headers=["set", "label", *models, "ΔL2", "start"],
                    align=["l", "l", *["l"] * len(models), "r", "l"], rows=rows)

    def action_export(self) -> None:
        """Write the source image shown, with its versions, as a table (CSV, Markdown, LaTeX) or a figure (PNG,
        SVG: the images and their magnified perturbations)."""
        if self.gallery is None or not len(self.gallery):
            self.notify("No gallery to export yet", severity="warning")
            return
        grid = self.row_grid()
        tiles = [(f"{t.set}: {self.gallery.class_name(t.label)}", t.image, t.delta)
                 for t in self.gallery.row(self.position)]

        def figure(fmt: str) -> list[Path]:
            from advtui.report.figures import write_image_grid  # matplotlib: only when a figure is asked for

            return [write_image_grid(self.root / EXPORT_DIR / f"{grid.id}.{fmt}", grid.title, tiles)]

        export_view(self, self.root, grid, figure)
