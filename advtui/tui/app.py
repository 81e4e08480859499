"""The advtui terminal app: one mode per screen, switched by single keys from anywhere.

``AdvtuiApp(root)`` watches the project folder ``root`` (the one holding ``dvc.yaml``). It never runs ML
code itself: runs are detached ``dvc repro`` processes (:mod:`advtui.appcore.runs`) and every screen reads
files. The app imports neither torch nor model code, so it starts in about a second.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import WorkerCancelled

from advtui.appcore import runs
from advtui.tui.modes import HELP, MODES, QUIT
from advtui.tui.screens.dialogs import QuitDialog
from advtui.tui.screens.help import HelpScreen
from advtui.tui.screens.monitor import FAST_POLL_S, MonitorScreen
from advtui.tui.screens.pipeline import PipelineScreen

#: Seconds between checks for a live run (cheap: a few small JSON files and /proc lookups).
RUN_POLL_S = 0.5


def available_modes() -> list[str]:
    """The modes whose screen module exists (found without importing it)."""
    return [name for name, mode in MODES.items() if importlib.util.find_spec(mode.module) is not None]


def screen_class(mode: str) -> type[Screen]:
    """The screen class of ``mode``, imported on first use (some pull in numpy: not at start-up)."""
    return getattr(importlib.import_module(MODES[mode].module), MODES[mode].screen)


class AdvtuiApp(App):
    """Drive the pipeline, watch it live, read the results, look at the images."""

    TITLE = "advtui"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = False
    # priority: the screen keys work from every screen, whatever its own bindings. Not in the footer: the mode
    # bar at the top of every screen shows them, leaving the footer to the screen's own keys.
    BINDINGS = [
        *(Binding(mode.key, f"show({name!r})", mode.label, priority=True, show=False) for name, mode in MODES.items()),
        Binding(HELP.key, HELP.action, HELP.description, key_display=HELP.shown, show=False),
        Binding(QUIT.key, QUIT.action, QUIT.description, priority=True, show=False),
    ]

    def __init__(self, root: Path | None = None, poll_s: float = FAST_POLL_S) -> None:
        super().__init__()
        self.root = (root or Path.cwd()).resolve()
        self.poll_s = poll_s
        #: The live run this app shows (started here, or found at start-up: re-attached).
        self.current_run: runs.RunRecord | None = None
        self.attached = False
        factories: dict[str, Callable[[], Screen]] = {
            "pipeline": lambda: PipelineScreen(self.root),
            "monitor": lambda: MonitorScreen(self.root, poll_s=self.poll_s),
        }
        for mode in available_modes():
            factories.setdefault(mode, lambda mode=mode: screen_class(mode)(self.root))
        for mode, factory in factories.items():
            self.add_mode(mode, factory)
        self.modes_available = tuple(factories)

    def on_mount(self) -> None:
        self.current_run = runs.live_run(self.root)
        self.attached = self.current_run is not None
        self.switch_mode("pipeline")
        if self.attached:
            self.notify(f"Re-attached to run {self.current_run.id} ({' '.join(self.current_run.targets) or 'all'})")
        self.set_interval(RUN_POLL_S, self._poll_run)

    def on_ready(self) -> None:
        # the first frame is on the terminal: what the next keys need can load now
        self._warm_up()

    @work(thread=True, group="warm-up")
    def _warm_up(self) -> None:
        """Import the screens not shown yet, after the first frame and off the UI thread, so that neither the
        first visit to one nor the help (which lists their keys) waits for its imports (the Gallery's numpy)."""
        for mode in self.modes_available:
            screen_class(mode)

    def action_show(self, mode: str) -> None:
        """Switch to screen ``mode``."""
        if mode not in self.modes_available:
            self.notify(f"The {mode} screen is not part of this install", severity="warning")
            return
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        """Show every key of every screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list]]:
        """(title, bindings) per screen, app-wide keys first: what the help screen lists."""
        sections = [("Everywhere", list(self.BINDINGS))]
        sections += [(MODES[mode].label, list(screen_class(mode).BINDINGS)) for mode in self.modes_available]
        return sections

    def start_run(self, targets: list[str]) -> None:
        """Start ``advtui repro TARGETS`` (everything when empty) detached, unless a run is live already or none can
        start here (outside a project, or with a params.yaml the stages would reject: the notice says why)."""
        if self.current_run is not None and runs.is_alive(self.current_run):
            self.notify("A run is live already; stop it first (s on the Pipeline screen)", severity="warning")
            return
        problem = runs.cannot_run(self.root)
        if problem is not None:
            self.notify(problem, title="Not started", severity="error", timeout=15)
            return
        self.current_run = runs.start_run(self.root, targets)
        self.notify(f"Started advtui repro {' '.join(targets) or '(whole pipeline)'}")

    @work(thread=True, exclusive=True, group="stop")
    def stop_run(self) -> str | None:
        """Stop the live run cleanly (SIGINT to its process group, then SIGTERM), off the UI thread."""
        record = self.current_run
        if record is None:
            return None
        self.call_from_thread(self.notify, f"Stopping run {record.id}…")
        result = runs.stop_run(self.root, record)
        self.call_from_thread(self.notify, f"Run {record.id} {result}")
        return result

    @work(thread=True, exclusive=True, group="run-poll")
    def _poll_run(self) -> None:
        record = self.current_run
        if record is not None:
            try:
                record = runs.RunRecord.load(runs.record_path(self.root, record.id))
            except (OSError, ValueError):
                record = None
        if record is None or not runs.is_alive(record):
            # the run ended, or another advtui (or a shell) started one meanwhile
            record = runs.live_run(self.root) or record
        self.call_from_thread(setattr, self, "current_run", record)

    def action_quit_app(self) -> None:
        """Quit; when a run is live, ask whether to stop it or leave it running."""
        record = self.current_run
        if record is None or not runs.is_alive(record):
            self.exit()
            return

        def answered(choice: str | None) -> None:
            if choice == "stop":
                self.stop_run()
                self._exit_after_stop()
            elif choice == "leave":
                self.exit(message=f"advtui: run {record.id} left running; run `advtui` here to re-attach")

        self.push_screen(QuitDialog(record), answered)

    @work(exclusive=True, group="quit")
    async def _exit_after_stop(self) -> None:
        try:
            await self.workers.wait_for_complete([w for w in self.workers if w.group == "stop"])
        except WorkerCancelled:
            pass  # the app is closing anyway (its workers are cancelled): the run's wrapper still records the end
        self.exit()
