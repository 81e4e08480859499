"""Every key of every screen is shown at 80x24: the screen's own in the footer, the app-wide ones (screens,
help, quit) in the mode bar at the top; the keys a screen does not show are in the help screen."""

from __future__ import annotations

from pathlib import Path

from textual.widgets._footer import FooterKey

from advtui.tui.app import AdvtuiApp
from advtui.tui.modes import HELP, MODES, QUIT
from advtui.tui.widgets.modebar import ModeBar

from pilots import settle

WIDTH, HEIGHT = 80, 24


async def test_every_key_is_shown_at_80x24(fake_project: Path) -> None:
    app = AdvtuiApp(fake_project)
    async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
        await settle(pilot)
        for name, mode in MODES.items():
            await pilot.press(mode.key)
            await settle(pilot)
            screen = app.screen
            assert app.current_mode == name
            # the footer: each of the screen's shown keys, wholly inside the terminal
            wanted = {(b.action, b.description) for b in screen.BINDINGS if b.show}
            keys = list(screen.query(FooterKey))
            assert {(k.action, k.description) for k in keys} == wanted, name
            for key in keys:
                assert key.region.width > 0 and key.region.right <= WIDTH, f"{name}: {key.description} is cut off"
            # the mode bar: every screen's name with its key letter marked, then help and quit, within 80 columns
            bar = screen.query_one(ModeBar).render()
            assert bar.cell_len <= WIDTH
            marked = {bar.plain[span.start:span.end] for span in bar.spans if span.end - span.start == 1}
            for other in MODES.values():
                at = bar.plain.index(f" {other.label} ") + 1 + other.label.lower().index(other.key)
                assert bar.plain[at].lower() == other.key and bar.plain[at] in marked
            for key in (HELP, QUIT):
                assert f"{key.shown} {key.description}" in bar.plain
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.query_one(ModeBar).render().plain.rstrip().endswith("profile smoke")


def test_keys_the_footers_leave_out_are_in_the_help(fake_project: Path) -> None:
    app = AdvtuiApp(fake_project)
    listed = {(b.key, b.action) for _, bindings in app.help_sections() for b in bindings}
    assert ("shift+tab", "next_table(-1)") in listed  # the Results screen's hidden key
    assert ("home", "jump(0)") in listed  # the Gallery's
    assert {(m.key, f"show({name!r})") for name, m in MODES.items()} <= listed
