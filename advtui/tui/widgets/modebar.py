"""The mode bar: the top line of every screen, naming every screen with its key (the current one highlighted),
then help and quit, then the screen's sub-title (the Pipeline's profile) where there is room.

The app-wide keys live here rather than in the footer, so the footer holds only the screen's own keys and
both fit an 80-column terminal (together they would need about 150 columns). Each name is clickable.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from advtui.tui.modes import HELP, MODES, QUIT


def _click(action: str) -> Style:
    return Style.from_meta({"@click": action})


class ModeBar(Widget):
    """Where you are and where each key takes you: ``Pipeline Monitor ... ? Help q Quit   profile smoke``."""

    COMPONENT_CLASSES = {"modebar--key", "modebar--current"}
    DEFAULT_CSS = """
    ModeBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $text-muted;
    }
    ModeBar > .modebar--key {
        color: $accent;
        text-style: bold underline;
    }
    ModeBar > .modebar--current {
        background: $accent 40%;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self, current: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.current = current

    def on_mount(self) -> None:
        self.watch(self.screen, "sub_title", lambda _: self.refresh())

    def render(self) -> Text:
        key_style = self.get_component_rich_style("modebar--key")
        current_style = self.get_component_rich_style("modebar--current")
        bar = Text(no_wrap=True, overflow="ellipsis")
        for name, mode in MODES.items():
            base = current_style if name == self.current else Style()
            shown, at = mode.label, mode.label.lower().find(mode.key)
            if at < 0:  # a key that is not a letter of the label goes before it
                shown, at = f"{mode.key} {mode.label}", 0
            label = Text(f" {shown} ", style=base + _click(f"app.show({name!r})"))
            label.stylize(key_style, at + 1, at + 2)
            bar.append_text(label)
        for key in (HELP, QUIT):
            click = _click(f"app.{key.action}")
            bar.append_text(Text.assemble(" ", (key.shown, key_style + click), (f" {key.description} ", click)))
        sub_title = str(self.screen.sub_title or "")
        room = self.size.width - bar.cell_len - 1  # one space apart
        if sub_title and room > 0:
            tail = Text(sub_title, overflow="ellipsis", no_wrap=True)
            tail.truncate(room, overflow="ellipsis")
            bar.append(" " * (self.size.width - bar.cell_len - tail.cell_len))  # flush right
            bar.append_text(tail)
        return bar
