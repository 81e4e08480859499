"""The Gallery screen on a small fixed gallery file: it draws each source image's row, moves between
them, and says which stage to run when there is no gallery (or a broken one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from textual.screen import Screen

from advtui.appcore.galleryfile import GALLERY_FILE, read_gallery
from advtui.tui.screens.gallery import GalleryScreen, GalleryTile, tile_width
from advtui.tui.widgets.image import HalfBlockImage
from screenhost import ScreenHost, settle

pytestmark = pytest.mark.anyio

CLASSES = ["ring", "tee", "crescent"]
SETS = ["natural", "D_R", "D_NR", "D_rand", "D_det"]
MODELS = {"natural": "E4 natural-data model", "standard": "standard source", "robust_l2": "L2-robust source"}


def image(cls: int, shift: float = 0.0) -> np.ndarray:
    """An 8x8 image whose colour says its class (and ``shift`` its set), so each tile is recognisable."""
    rgb = np.zeros((3, 8, 8), dtype=np.float32)
    rgb[cls] = np.linspace(0.2, 1.0, 8)[None, :]
    return np.clip(rgb + shift, 0, 1)


def write_gallery(root: Path) -> Path:
    """Three source images (one per class) in the documented layout, with fixed labels and predictions."""
    n, tensors = 3, {"index": np.array([4, 0, 7], dtype=np.int64)}
    labels = {"natural": [0, 1, 2], "D_R": [0, 1, 2], "D_NR": [0, 1, 2], "D_rand": [2, 0, 0], "D_det": [1, 2, 0]}
    for k, name in enumerate(SETS):
        tensors[f"images/{name}"] = np.stack([image(c, 0.05 * k) for c in range(n)]).astype(np.float16)
        tensors[f"labels/{name}"] = np.array(labels[name], dtype=np.int64)
        if name != "natural":
            delta = np.zeros((n, 3, 8, 8), dtype=np.float32)
            delta[:, :, ::2, ::2] = 0.01 * k  # a faint checker, visible only magnified
            tensors[f"delta/{name}"] = delta.astype(np.float16)
            tensors[f"starts/{name}"] = np.array([1, 2, 0] if name in ("D_R", "D_NR") else [4, 0, 7], dtype=np.int64)
        for m, model in enumerate(MODELS):
            tensors[f"preds/{model}/{name}"] = np.array([(m + i) % 3 for i in range(n)], dtype=np.int64)
    meta = {"kind": "dataset", "arch": "gallery", "classes": json.dumps(CLASSES), "sets": json.dumps(SETS),
            "models": json.dumps(MODELS), "captions": json.dumps({s: f"how {s} is made" for s in SETS})}
    path = root / GALLERY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=meta)
    return path


def top_left_colour(widget: HalfBlockImage) -> str:
    """The colour of the image's top-left pixel as drawn (the first half-block's foreground)."""
    return str(widget.content.spans[0].style.color.triplet)


def title(app) -> str:
    return str(app.screen.query_one("#gallery-title").render())


def caption(app, k: int) -> str:
    return str(list(app.screen.query(GalleryTile))[k].query_one(".tile-caption").render())


async def test_fresh_clone_says_which_stage_makes_the_gallery(fresh_project):
    app = ScreenHost(lambda: GalleryScreen(fresh_project))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        hint = app.screen.query_one("#gallery-hint")
        assert hint.display and "dvc repro gallery" in str(hint.render())
        assert not app.screen.query(GalleryTile)
        await pilot.press("right", "left", "end")  # nothing to move through: no crash


async def test_draws_each_row_and_moves_between_source_images(tmp_path):
    write_gallery(tmp_path)
    app = ScreenHost(lambda: GalleryScreen(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#gallery-hint").display
        assert [str(t.query_one(".tile-caption").render()).split("\n")[0] for t in app.screen.query(GalleryTile)] == SETS
        assert title(app).startswith("source 1/3 · natural image #4, class ring")
        assert caption(app, 4).split("\n")[:2] == ["D_det", "y tee"]  # D_det relabels ring -> tee
        assert "D_rand: how D_rand is made" in str(app.screen.query_one("#gallery-captions").render())
        natural = app.screen.query(HalfBlockImage).first()
        assert top_left_colour(natural) == "ColorTriplet(red=51, green=0, blue=0)"  # class 0: red, 0.2 * 255
        await pilot.press("right")
        await pilot.pause()
        assert title(app).startswith("source 2/3 · natural image #0, class tee")
        assert caption(app, 4).split("\n")[1] == "y crescent"
        assert top_left_colour(natural) == "ColorTriplet(red=0, green=51, blue=0)"  # class 1: green
        await pilot.press("left", "left")  # wraps around to the last
        await pilot.pause()
        assert title(app).startswith("source 3/3 · natural image #7, class crescent")
        await pilot.press("home")
        await pilot.pause()
        assert title(app).startswith("source 1/3")


async def test_a_broken_file_names_the_stage_to_rerun(tmp_path):
    path = tmp_path / GALLERY_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a safetensors file")
    app = ScreenHost(lambda: GalleryScreen(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "rerun `dvc repro gallery`" in str(app.screen.query_one("#gallery-hint").render())


def test_reader_gives_each_tile_its_label_predictions_and_perturbation(tmp_path):
    gallery = read_gallery(write_gallery(tmp_path))
    natural, d_r, *_, d_det = gallery.row(2)
    assert (natural.label, natural.delta, natural.start) == (2, None, None)
    assert d_det.label == 0 and d_det.preds == {"natural": 2, "standard": 0, "robust_l2": 1}
    assert d_r.start == 0 and np.isclose(d_r.delta.max(), 0.01, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="dvc repro gallery"):
        read_gallery(tmp_path / "nothing.safetensors")


def test_tiles_fit_the_terminal():
    assert tile_width(80, 24, 5) == 10  # 5 tiles of 10 cells; image + perturbation + captions in 24 rows
    assert tile_width(120, 40, 5) == 22
    assert tile_width(300, 100, 5) == 32  # never wider than a 32-pixel image needs


def test_snapshot_80x24(tmp_path, snap_compare):
    write_gallery(tmp_path)
    assert snap_compare(ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0)), terminal_size=(80, 24), press=["right"])


def test_snapshot_120x40(tmp_path, snap_compare):
    write_gallery(tmp_path)
    assert snap_compare(ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0)), terminal_size=(120, 40))


# --- the zoom, and the terminal's graphics where it has them ---

from advtui.tui import graphics  # noqa: E402
from advtui.tui.screens.gallery import ZoomScreen, zoom_cells  # noqa: E402
from advtui.tui.widgets.image import GraphicsImage, image_widget, rows_for  # noqa: E402


async def test_enter_zooms_on_one_image_and_its_perturbation_large(tmp_path):
    write_gallery(tmp_path)
    app = ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tile_cells = app.screen.query(HalfBlockImage).first().cells
        await pilot.press("right", "enter")  # the second source image
        await pilot.pause()
        zoom = app.screen
        assert isinstance(zoom, ZoomScreen)
        image = zoom.query_one("#zoom-image", HalfBlockImage)
        assert image.cells == zoom_cells(80, 24) == 28 and image.cells >= 2.5 * tile_cells  # 10 cells in the row
        assert [len(line) for line in image.content.plain.split("\n")] == [28] * 14  # as large as 24 rows allow
        zoomed = lambda: str(zoom.query_one("#zoom-caption").render())  # noqa: E731
        assert zoomed().split("\n")[:2] == ["natural", "y tee"]
        assert str(zoom.query_one("#zoom-title").render()).endswith("the source image: no perturbation")
        assert top_left_colour(image) == "ColorTriplet(red=0, green=51, blue=0)"  # source 2 is class 1: green
        await pilot.press("left")  # wraps to the last set of the same source image
        await pilot.pause()
        assert zoomed().split("\n")[0] == "D_det" and zoomed().split("\n")[-1].startswith("Δ ")
        assert str(zoom.query_one("#zoom-title").render()).endswith("right: perturbation, magnified")
        await pilot.press("down")  # the same set, next source image
        await pilot.pause()
        assert "source 3/3" in str(zoom.query_one("#zoom-title").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, GalleryScreen) and title(app).startswith("source 2/3")


def test_snapshot_zoom_80x24(tmp_path, snap_compare):
    write_gallery(tmp_path)
    assert snap_compare(ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0)), terminal_size=(80, 24),
                        press=["enter", "right"])


def test_graphics_are_asked_for_only_where_a_terminal_may_draw_them(monkeypatch):
    """Asking costs about 0.4 s on a terminal without graphics: only terminals known to draw them are asked."""
    monkeypatch.setattr(graphics, "_protocol", graphics.HALFBLOCK)
    kitty = {"TERM": "xterm-kitty"}
    assert graphics.may_draw_graphics(kitty) and graphics.may_draw_graphics({"TERM_PROGRAM": "WezTerm"})
    assert not graphics.may_draw_graphics({"TERM": "xterm-kitty", "TMUX": "/tmp/tmux-0/default,1,0"})
    assert not graphics.may_draw_graphics({"TERM": "xterm-256color"})
    asked: list[str] = []
    monkeypatch.setitem(sys.modules, "textual_image", None)  # an import would ask the terminal: record instead
    monkeypatch.setattr("builtins.__import__", _recording_import(asked))
    assert graphics.detect("auto", tty=True, environ={"TERM": "xterm-256color"}) == graphics.HALFBLOCK
    assert graphics.detect("auto", tty=False, environ=kitty) == graphics.HALFBLOCK  # a pipe, a test
    assert graphics.detect("halfblock", tty=True, environ=kitty) == graphics.HALFBLOCK
    assert asked == []  # none of these asked
    assert graphics.detect("auto", tty=True, environ=kitty) == graphics.HALFBLOCK  # asked; no textual-image here
    assert graphics.detect("ask", tty=True, environ={"TERM": "xterm"}) == graphics.HALFBLOCK
    assert asked == ["textual_image", "textual_image"]
    with pytest.raises(ValueError, match="ADVTUI_GRAPHICS: unknown value 'kitty'; use one of auto, ask, halfblock"):
        graphics.detect("kitty", tty=True)


def test_a_kitty_too_old_for_unicode_placeholders_gets_half_blocks():
    """kitty 0.26.5 (Debian 12) answers the graphics query but shows textual-image's placeholders as boxes."""
    assert not graphics.draws_placeholders("kitty(0.26.5)") and not graphics.draws_placeholders("kitty(0.21.2)")
    assert graphics.draws_placeholders("kitty(0.28.0)") and graphics.draws_placeholders("kitty(0.42.1)")
    assert graphics.draws_placeholders("ghostty 1.1.3") and graphics.draws_placeholders(None)  # no answer: trust it


def _recording_import(asked: list[str]):
    real = __import__

    def record(name, *args, **kwargs):
        if name.startswith("textual_image"):
            asked.append(name)
        return real(name, *args, **kwargs)

    return record


async def test_with_terminal_graphics_an_image_takes_the_cells_a_half_block_one_would(monkeypatch):
    """Where the terminal draws Sixel or Kitty graphics, the image goes to textual-image, upscaled without smoothing
    and in the same cells as the half-block drawing (here textual-image draws with what a test's terminal has)."""
    monkeypatch.setattr(graphics, "_protocol", graphics.SIXEL)
    image = np.zeros((3, 32, 32), dtype=np.float32)
    image[0, :16] = 1.0  # top half red
    app = ScreenHost(lambda: ZoomlessScreen(image))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        widget = app.screen.query_one(GraphicsImage)
        assert (widget.size.width, widget.size.height) == (20, rows_for(image, 20)) == (20, 10)
        drawn = widget.children[0].image
        assert drawn.size == (256, 256) and drawn.getpixel((0, 0)) == (255, 0, 0) and drawn.getpixel((0, 255)) == (0, 0, 0)


def sixel_views(monkeypatch) -> None:
    """Make the app draw as in a Sixel terminal (xterm -ti vt340): textual-image's Sixel view for every image."""
    from textual_image import widget as textual_image_widget

    monkeypatch.setattr(graphics, "_protocol", graphics.SIXEL)
    monkeypatch.setattr(textual_image_widget, "Image", textual_image_widget.SixelImage)


def sixels(screen) -> list[bool]:
    """Per graphics image on ``screen``: whether what it renders carries Sixel data (DCS ... q)."""
    from textual.geometry import Region
    from textual_image.widget.sixel import _ImageSixelImpl

    drawn = []
    for view in screen.query(GraphicsImage):
        impls = list(view.query(_ImageSixelImpl))
        lines = impls[0].render_lines(Region(0, 0, *impls[0].size)) if impls else []
        drawn.append(any("\x1bP" in segment.text and "q" in segment.text for line in lines for segment in line))
    return drawn


async def test_in_a_sixel_terminal_every_image_of_the_gallery_and_the_zoom_is_drawn(tmp_path, monkeypatch):
    sixel_views(monkeypatch)
    write_gallery(tmp_path)
    app = ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        # per tile its image and its perturbation; the natural image has none
        assert sixels(app.screen) == [True, False] + [True, True] * 4
        await pilot.press("enter", "right")  # the zoom, on D_R: the image and its perturbation
        await settle(pilot)
        assert isinstance(app.screen, ZoomScreen) and sixels(app.screen) == [True, True]


async def test_an_image_shown_before_its_widget_finished_mounting_stays_drawn(monkeypatch):
    """Seen in xterm (Sixel): on the Gallery's first visit every tile stayed blank until a key moved to another
    image. The screen showed each image after the widget was attached but before the widget's own Mount was
    handled, and that late Mount drew the widget's first (empty) image over it."""
    sixel_views(monkeypatch)
    image = np.ones((3, 8, 8), dtype=np.float32)
    app = ScreenHost(lambda: ZoomlessScreen(None))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        widget = app.screen.query_one(GraphicsImage)
        widget.show(image)
        widget.on_mount()  # the late Mount
        await settle(pilot)
        assert sixels(app.screen) == [True]


class ZoomlessScreen(Screen):
    """One image widget as the terminal gets it."""

    def __init__(self, image: np.ndarray | None) -> None:
        super().__init__()
        self.image = image

    def compose(self):
        yield image_widget(self.image, 20)


async def test_x_exports_the_source_image_shown_as_a_table_or_a_figure(tmp_path):
    write_gallery(tmp_path)
    app = ScreenHost(lambda: GalleryScreen(tmp_path, poll_s=0))
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.notify = lambda message, **kwargs: notes.append(message)
        for choice in (0, 3):  # CSV, then the PNG figure
            await pilot.press("x")
            await pilot.pause()
            await pilot.press(*["down"] * choice, "enter")
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()
    assert notes == ["Wrote .advtui/exports/gallery_4.csv", "Wrote .advtui/exports/gallery_4.png"]
    lines = (tmp_path / ".advtui/exports/gallery_4.csv").read_text().splitlines()
    assert lines[0] == "set,label,natural,standard,robust_l2,ΔL2,start"
    assert lines[5].startswith("D_det,tee,") and lines[1].endswith(",—,—")  # natural: no perturbation
    assert (tmp_path / ".advtui/exports/gallery_4.png").read_bytes()[:4] == b"\x89PNG"
