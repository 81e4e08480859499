"""A stage's progress (``data/progress/<stage>.json``): phase, done of total, robust accuracy, rate, ETA."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, ProgressBar

from advtui.appcore.live import format_eta
from advtui.pipeline.progress import DIED


def describe(record: dict[str, Any] | None) -> str:
    """One line about a progress record (what the bar's label shows)."""
    if record is None:
        return "no progress file: the stage has not reported yet"
    if record.get("state") == "done":
        extra = " ".join(f"{k} {v:.3f}" for k, v in sorted(record.items()) if isinstance(v, float) and k != "updated")
        return f"{record.get('stage', '')}: done {extra}".rstrip()
    parts = [f"{record.get('phase', '')}: {record.get('done', 0)}/{record.get('total', 0)}"]
    if record.get("state") == DIED:
        parts.append(f"died (pid {record.get('pid')} is gone); rerun the stage to resume")
        return " · ".join(parts)
    if isinstance(record.get("robust_acc"), (int, float)):
        parts.append(f"robust acc {100 * record['robust_acc']:.1f}%")
    if isinstance(record.get("rate"), (int, float)):
        parts.append(f"{record['rate']:.1f}/s")
    parts.append(f"ETA {format_eta(record.get('eta_s'))}")
    return " · ".join(parts)


class ProgressPanel(Vertical):
    """A label and a bar for one progress record."""

    DEFAULT_CSS = """
    ProgressPanel { height: 2; }
    ProgressPanel ProgressBar { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Label(describe(None), id="progress-label")
        yield ProgressBar(total=1, show_eta=False, id="progress-bar")

    def show(self, record: dict[str, Any] | None) -> None:
        """Show ``record`` (None: nothing reported)."""
        self.query_one("#progress-label", Label).update(describe(record))
        bar = self.query_one("#progress-bar", ProgressBar)
        # no indeterminate bar: it animates forever (CPU, and snapshots that never settle)
        bar.display = record is not None
        if record is None:
            return
        if record.get("state") == "done":
            bar.update(total=1, progress=1)
        else:
            bar.update(total=max(int(record.get("total") or 0), 1), progress=int(record.get("done") or 0))
