"""Small modal screens: quit while a run is live, pick a profile, pick a stage, read a log, export a view."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Log, OptionList
from textual.widgets.option_list import Option

from advtui.appcore import live, runs
from advtui.appcore.resultsdata import export_table
from advtui.report.export import FORMATS, Grid
from advtui.tui.threads import deliver


class QuitDialog(ModalScreen[str | None]):
    """Quitting while a run is live: stop it, leave it running (re-attach later), or stay."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop the run and quit"),
        Binding("l", "choose('leave')", "Leave it running and quit"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, record: runs.RunRecord) -> None:
        super().__init__()
        self.record = record

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"A run is live: {self.record.what}.")
            yield Label("Leave it running (reopen advtui here to re-attach) or stop it?")
            with Horizontal(classes="buttons"):
                yield Button("[s] Stop it", id="stop", variant="error")
                yield Button("[l] Leave running", id="leave", variant="primary")
                yield Button("[esc] Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        """Close with ``choice``."""
        self.dismiss(choice)


class ChoiceDialog(ModalScreen[str | None]):
    """Pick one of several names (a profile, a stage to replay)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], highlighted: str | None = None) -> None:
        """``choices``: (value, label) pairs."""
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.highlighted = highlighted

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield OptionList(*(Option(label, id=value) for value, label in self.choices))
            yield Label("enter: choose · esc: cancel", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        values = [value for value, _ in self.choices]
        if self.highlighted in values:
            options.highlighted = values.index(self.highlighted)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without a choice."""
        self.dismiss(None)


class InputDialog(ModalScreen[str | None]):
    """One line of text (a filter, ``key=value`` pairs); ``check`` says in one line what is wrong with it, shown
    in the dialog so the reader fixes it there, or None to accept."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "", hint: str = "enter: apply · esc: cancel",
                 check: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.hint = hint
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(self.value, placeholder=self.placeholder)
            yield Label("", id="input-problem", classes="problem")
            yield Label(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one("#input-problem").display = False
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = self.check(event.value) if self.check is not None else None
        if problem is None:
            self.dismiss(event.value)
            return
        label = self.query_one("#input-problem", Label)
        label.update(problem)
        label.display = True

    def action_cancel(self) -> None:
        """Close without applying."""
        self.dismiss(None)


class LogScreen(ModalScreen[None]):
    """A run's log, following it while it grows; with ``stage``, only that stage's lines of it."""

    BINDINGS = [Binding("escape,l", "close", "Close")]

    def __init__(self, path: Path, title: str, poll_s: float = 0.5, stage: str | None = None) -> None:
        super().__init__()
        self.path = path
        self.stage = stage
        self.title_text = title
        self.poll_s = poll_s
        self._seen: float | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(self.title_text)
            yield Log(max_lines=2000, id="log-view")
            yield Label("esc: close", classes="hint")

    def on_mount(self) -> None:
        self._read()
        self.set_interval(self.poll_s, self._read)

    @work(thread=True, exclusive=True)
    def _read(self) -> None:
        stamp = live.mtime(self.path)
        if stamp == self._seen:
            return
        self._seen = stamp
        deliver(self.app, self._show, live.stage_lines(live.tail(self.path, 2000), self.stage))

    def _show(self, lines: list[str]) -> None:
        view = self.query_one(Log)
        view.clear()
        view.write_lines(lines or [f"{self.path.name}: empty so far"])

    def action_close(self) -> None:
        """Back to the screen below."""
        self.dismiss(None)


#: Figure file formats a plot view offers besides the table formats.
FIGURE_FORMATS = {"png": "PNG figure", "svg": "SVG figure"}


def export_view(screen: Screen, root: Path, grid: Grid, figure: Callable[[str], list[Path]] | None = None) -> None:
    """Ask which format to export the view in (the table as CSV, Markdown or LaTeX; with ``figure``, which
    writes the view's plots in a format and returns the files, also PNG or SVG), write it, and say in one line
    which files were written."""
    choices = [(fmt, f"{name} table (.{fmt})") for fmt, name in FORMATS.items()]
    if figure is not None:
        choices += [(fmt, f"{name} (.{fmt})") for fmt, name in FIGURE_FORMATS.items()]

    def write(fmt: str) -> None:
        # in a thread: a figure imports matplotlib and renders (a second or so), the screen answers keys meanwhile
        try:
            paths = [export_table(root, grid, fmt)] if fmt in FORMATS else figure(fmt)
        except (OSError, ValueError) as err:
            deliver(screen.app, screen.notify, f"Export failed: {err}", severity="error", timeout=10)
            return
        shown = [str(p.relative_to(root) if p.is_relative_to(root) else p) for p in paths]
        deliver(screen.app, screen.notify, f"Wrote {', '.join(shown)}", title="Exported")

    def chosen(fmt: str | None) -> None:
        if fmt is not None:
            screen.run_worker(lambda: write(fmt), thread=True, group="export")

    screen.app.push_screen(ChoiceDialog(f"Export {grid.title} as", choices), chosen)
