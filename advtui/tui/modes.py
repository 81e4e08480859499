"""The app's screens (modes) and the app-wide keys that switch between them: one table that the app's key
bindings, its lazy screen imports and the mode bar at the top of every screen are all made from.

Torch-free and textual-free, so a screen shown on its own (the tests' host app) draws the same mode bar.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    """One screen of the app: the key that shows it from anywhere, its label, and where its class lives."""

    key: str
    label: str  # the mode bar highlights the key's letter in it
    module: str
    screen: str


#: Every screen, in the order the mode bar lists them. Results, Gallery and Experiments live in their own
#: modules, imported on first use (some pull in numpy: not at start-up); a mode whose module is absent is
#: left out (its key then says so instead of failing).
MODES: dict[str, Mode] = {
    "pipeline": Mode("p", "Pipeline", "advtui.tui.screens.pipeline", "PipelineScreen"),
    "monitor": Mode("m", "Monitor", "advtui.tui.screens.monitor", "MonitorScreen"),
    "results": Mode("r", "Results", "advtui.tui.screens.results", "ResultsScreen"),
    "gallery": Mode("g", "Gallery", "advtui.tui.screens.gallery", "GalleryScreen"),
    "experiments": Mode("e", "Experiments", "advtui.tui.screens.experiments", "ExperimentsScreen"),
}


@dataclass(frozen=True)
class AppKey:
    """An app-wide key besides the screens': the key as bound and as shown, what it does, the app's action."""

    key: str
    shown: str
    description: str
    action: str


HELP = AppKey("question_mark", "?", "Help", "help")
QUIT = AppKey("q", "q", "Quit", "quit_app")
