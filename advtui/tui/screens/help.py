"""The help screen: every key of every screen, generated from their BINDINGS so it cannot drift."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def _key(binding: Binding) -> str:
    if binding.key_display:
        return binding.key_display
    return ", ".join({"question_mark": "?", "space": "space"}.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _bindings(raw: list) -> list[Binding]:
    return [b if isinstance(b, Binding) else Binding(*b) for b in raw]


def keys_table(sections: list[tuple[str, list]]) -> Table:
    """A table of (screen, key, what it does); a screen key that an app-wide key overrides is marked."""
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("screen")
    table.add_column("key")
    table.add_column("does")
    global_keys = {k.strip() for title, raw in sections[:1] for b in _bindings(raw) if b.priority
                   for k in b.key.split(",")}
    for index, (title, raw) in enumerate(sections):
        for n, binding in enumerate(_bindings(raw)):
            keys = {k.strip() for k in binding.key.split(",")}
            label = Text(binding.description or binding.action)
            if index > 0 and keys <= global_keys:
                label = Text.assemble(label, (" (taken by the app-wide key)", "dim"))
            table.add_row(Text(title if n == 0 else "", style="bold"), Text(_key(binding), style="cyan"), label)
    return table


class HelpScreen(ModalScreen[None]):
    """Every key, by screen. Escape or ? closes it."""

    BINDINGS = [Binding("escape,question_mark", "close", "Close help", key_display="esc, ?")]

    def __init__(self, sections: list[tuple[str, list]]) -> None:
        super().__init__()
        self.sections = [*sections, ("Help", list(self.BINDINGS))]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(Text("advtui keys (the footer shows the current screen's)", style="bold"))
            yield Static(keys_table(self.sections))

    def action_close(self) -> None:
        """Back to the screen below."""
        self.dismiss(None)
