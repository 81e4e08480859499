"""The Experiments screen: `dvc exp show` as one sortable table, to compare runs with different params.

`dvc exp show --json` takes seconds, so it runs in a thread worker; the table keeps its sort across
refreshes. From here a reader starts (``n``) or queues (``u``) ``dvc exp run -S key=value`` with the values
checked against the params schema first, marks a baseline (``b``: every other run shows its difference to
it), filters rows and columns (``/``), plots a metric against a param across the runs (``v``) or overlays
the DVCLive curves of the marked runs (``space`` marks, ``o`` overlays: ``dvc plots diff``), and exports the
table or the plot (``x``). The logic is headless, in :mod:`advtui.appcore.compare` and
:mod:`advtui.appcore.exprun`.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from advtui.appcore import exprun, runs
from advtui.appcore.compare import PlotData, Series, filter_table, metric_vs_param, run_plots_diff
from advtui.appcore.expshow import HINT, ExpRun, comparison, queue_summary, run_exp_show
from advtui.appcore.resultsdata import EXPORT_DIR
from advtui.report.export import slug
from advtui.schema import ParamsError
from advtui.tui.screens.dialogs import ChoiceDialog, InputDialog, export_view
from advtui.tui.threads import deliver
from advtui.tui.widgets.curves import CurvePlot
from advtui.tui.widgets.modebar import ModeBar
from advtui.tui.widgets.table import ResultsTable


#: Coming back to the screen re-reads `dvc exp show` when the last read is older than this (it costs seconds).
STALE_S = 60.0
FILTER_HINT = "words: rows containing them · -word: rows without it · c:word: columns named so · enter: apply"


def _check_sets(root: Path, text: str) -> str | None:
    """Why ``text`` (``key=value ...``) cannot be run, in one line, or None."""
    try:
        exprun.check_sets(root, exprun.parse_sets(text))
    except ParamsError as err:
        return str(err)
    return None


class ExperimentsScreen(Screen):
    """Runs of the pipeline with their changed params and metrics, side by side."""

    CSS_PATH = "experiments.tcss"
    BINDINGS = [
        Binding("s", "sort", "Sort"),
        Binding("n", "new(False)", "Run exp"),
        Binding("u", "new(True)", "Queue exp"),
        Binding("b", "baseline", "Baseline"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("v", "plot_param", "Plot"),
        Binding("x", "export", "Export"),
        Binding("space", "mark", "Mark for overlay", show=False),
        Binding("o", "overlay", "Overlay marked runs' curves", show=False),
        Binding("w", "start_queue", "Start the queue (dvc queue start)", show=False),
        Binding("a", "toggle_all", "All columns", show=False),
        Binding("ctrl+r", "reload", "Refresh", key_display="^r", show=False),
    ]

    def __init__(self, root: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root)
        self.runs: list[ExpRun] = []
        self.all_columns = False
        self.baseline: str | None = None  # rev of the baseline run
        self.query_text = ""  # the filter
        self.marked: list[str] = []  # revs marked for the curves overlay
        self.plot: tuple[str, str, list[Series]] | None = None  # (title, x label, lines) shown under the table
        self._fetched = 0.0

    def compose(self) -> ComposeResult:
        yield ModeBar("experiments")
        yield Static("Reading `dvc exp show` ...", id="exp-status")
        yield VerticalScroll(id="exp-body")
        yield CurvePlot("", id="exp-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "advtui experiments"
        self.query_one("#exp-plot").display = False
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self._fetched and time.monotonic() - self._fetched > STALE_S:
            self.action_reload()

    def action_reload(self) -> None:
        """Run `dvc exp show --json` again (in a worker)."""
        self._fetched = time.monotonic()
        status = self.query_one("#exp-status", Static)
        status.update("Reading `dvc exp show` ...")
        status.display = True
        self._fetch()

    @work(thread=True, exclusive=True, group="exp-show")
    def _fetch(self) -> None:
        worker = get_current_worker()
        try:
            runs_, problem = run_exp_show(self.root, cancelled=lambda: worker.is_cancelled), None
        except RuntimeError as err:
            runs_, problem = [], str(err)
        if not worker.is_cancelled:
            deliver(self.app, self.show_runs, runs_, problem)

    def show_runs(self, runs_: list[ExpRun], problem: str | None = None) -> None:
        """Show ``runs_`` (``problem``: why DVC gave none)."""
        self.runs = runs_
        self._show_status(problem)
        self._render_table()

    def _show_status(self, problem: str | None = None) -> None:
        has_exps = any(r.baseline is not None for r in self.runs)
        status = self.query_one("#exp-status", Static)
        lines = [] if has_exps else [HINT if problem is None else f"{problem}\n{HINT}"]
        names = {r.rev: r.name for r in self.runs}
        if self.query_text:
            lines.append(f"filter: {self.query_text}  (/ to change, empty to clear)")
        if self.marked:
            lines.append(f"marked for overlay (o): {', '.join(names.get(rev, rev[:7]) for rev in self.marked)}")
        queue = queue_summary(self.runs)
        if queue:
            hint = ("w starts the queue (dvc queue start; -j N in a shell runs N at once)"
                    if any(r.state == "queued" for r in self.runs) else "ctrl+r refreshes")
            lines.append(f"{queue}: {hint}")
        status.update("\n".join(lines))
        status.display = bool(lines)

    def _render_table(self) -> None:
        body = self.query_one("#exp-body", VerticalScroll)
        if not self.runs:
            body.remove_children()
            return
        table = filter_table(comparison(self.runs, self.all_columns, self.baseline), self.query_text)
        existing = body.query(ResultsTable)
        if existing:
            existing.first().show(table)
            body.query_one("#exp-legend", Static).update(table.legend)
            return
        body.mount(ResultsTable(table, id="exp-table"))
        body.mount(Static(table.legend, id="exp-legend"))
        self.call_after_refresh(lambda: self.set_focus(body.query_one(ResultsTable)))

    def _table(self) -> ResultsTable | None:
        return self.query(ResultsTable).first(None)

    def _highlighted(self) -> ExpRun | None:
        """The run under the table's cursor."""
        table = self._table()
        if table is None or not table.row_count:
            return None
        rev = table.shown_rows[table.cursor_row]["rev"]
        return next((r for r in self.runs if r.rev == rev), None)

    def action_sort(self) -> None:
        """Sort by the column under the cursor (again: reverse)."""
        for table in self.query(ResultsTable):
            table.sort_by_cursor()

    def action_toggle_all(self) -> None:
        """Show every param and metric, or only the changed params and headline metrics."""
        self.all_columns = not self.all_columns
        self._render_table()

    def action_baseline(self) -> None:
        """Make the highlighted run the baseline (the others show their difference to it); again: no baseline."""
        run = self._highlighted()
        if run is not None:
            self.baseline = None if self.baseline == run.rev else run.rev
            self._render_table()

    def action_filter(self) -> None:
        """Ask for a filter of rows (words) and columns (``c:word``)."""

        def apply(text: str | None) -> None:
            if text is not None:
                self.query_text = text.strip()
                self._show_status()
                self._render_table()

        self.app.push_screen(InputDialog("Filter the experiments", self.query_text, "D_R -failed c:robust",
                                         FILTER_HINT), apply)

    def action_new(self, queue: bool) -> None:
        """Ask for ``key=value`` pairs, check them against the params schema, then run or queue the experiment."""
        title = "dvc exp run --queue -S" if queue else "dvc exp run -S (runs now, like a pipeline run)"

        def chosen(text: str | None) -> None:
            if text is not None:
                self._launch(exprun.parse_sets(text), queue)

        self.app.push_screen(InputDialog(title, placeholder=exprun.EXAMPLE,
                                         hint="key=value ... (checked against params.yaml) · enter: go · esc: cancel",
                                         check=lambda text: _check_sets(self.root, text)), chosen)

    @work(thread=True, exclusive=True, group="exp-launch")
    def _launch(self, pairs: list[tuple[str, str]], queue: bool) -> None:
        """Queue (a second or two of DVC) or start the experiment, off the UI thread; say what happened."""
        try:
            if queue:
                message = exprun.queue_experiment(self.root, pairs)
            else:
                live = runs.live_run(self.root)
                if live is not None:
                    deliver(self.app, self.notify, f"A run is live already ({live.what}); queue it with u instead",
                            severity="warning")
                    return
                message = f"Started {exprun.start_experiment(self.root, pairs).what}"
        except (ParamsError, RuntimeError, OSError) as err:
            deliver(self.app, self.notify, str(err), title="Not started", severity="error", timeout=15)
            return
        deliver(self.app, self.notify, message)
        deliver(self.app, self.action_reload)

    @work(thread=True, exclusive=True, group="exp-launch")
    def action_start_queue(self) -> None:
        """Run the queued experiments in the background (``dvc queue start``)."""
        try:
            message = exprun.start_queue(self.root)
        except RuntimeError as err:
            deliver(self.app, self.notify, str(err), severity="error", timeout=15)
            return
        deliver(self.app, self.notify, message)

    def action_mark(self) -> None:
        """Mark (again: unmark) the highlighted run for the curves overlay."""
        run = self._highlighted()
        if run is None:
            return
        if run.rev in self.marked:
            self.marked.remove(run.rev)
        else:
            self.marked.append(run.rev)
        self._show_status()

    def _show_plot(self, title: str, xlabel: str, series: list[Series]) -> None:
        self.plot = (title, xlabel, series)
        plot = self.query_one("#exp-plot", CurvePlot)
        plot.title, plot.xlabel = title, xlabel
        plot.show(series, empty="no run has both values")
        plot.display = True

    def _hide_plot(self) -> None:
        self.plot = None
        self.query_one("#exp-plot").display = False

    def action_plot_param(self) -> None:
        """Plot metrics against a param across the runs shown: the param under the cursor (else the first
        numeric one) and the metric under the cursor (else every metric column); again: hide the plot."""
        table = self._table()
        if self.plot is not None or table is None:
            self._hide_plot()
            return
        columns = table.table.shown_columns
        at = columns[table.cursor_column].key if columns else ""
        params = [c.key for c in columns if c.key.startswith("p:") and c.kind == "num"]
        metrics = [c.key for c in columns if c.key.startswith("m:")]
        param = at if at in params else next(iter(params), None)
        if param is None or not metrics:
            self.notify("Nothing to plot: no numeric param that differs between runs (a: all columns)",
                        severity="warning")
            return
        shown = {row["rev"] for row in table.shown_rows}
        lines = metric_vs_param([r for r in self.runs if r.rev in shown], param[2:],
                                [m[2:] for m in ([at] if at in metrics else metrics)])
        self._show_plot(f"against {param[2:]}", param[2:], lines)

    def action_overlay(self) -> None:
        """Overlay the DVCLive curves of the marked runs (the highlighted one when none is marked)."""
        revs = list(self.marked) or ([run.rev] if (run := self._highlighted()) else [])
        names = {r.rev: r.name if r.baseline is not None or r.rev == "workspace" else r.rev for r in self.runs}
        if revs:
            self.notify(f"Reading the curves of {len(revs)} run(s) (dvc plots diff) ...")
            self._read_curves([names.get(rev, rev) for rev in revs])

    @work(thread=True, exclusive=True, group="plots-diff")
    def _read_curves(self, revs: list[str]) -> None:
        worker = get_current_worker()
        try:
            plots = run_plots_diff(self.root, revs, cancelled=lambda: worker.is_cancelled)
        except (RuntimeError, ValueError, OSError) as err:
            deliver(self.app, self.notify, str(err), severity="error", timeout=15)
            return
        if not worker.is_cancelled:
            deliver(self.app, self._pick_plot, plots)

    def _pick_plot(self, plots: list[PlotData]) -> None:
        if not plots:
            self.notify("None of these runs has curve files (dvc plots diff found no data)", severity="warning")
            return

        def chosen(title: str | None) -> None:
            plot = next((p for p in plots if p.title == title), None)
            if plot is not None:
                self._show_plot(plot.title, plot.x, plot.series)

        self.app.push_screen(ChoiceDialog("Which curves?", [(p.title, p.title) for p in plots]), chosen)

    def action_export(self) -> None:
        """Write the table as shown (filtered, sorted) as CSV, Markdown or LaTeX, or the plot shown as a figure."""
        table = self._table()
        if table is None:
            self.notify("No table to export yet", severity="warning")
            return
        plot = self.plot

        def figure(fmt: str) -> list[Path]:
            from advtui.report.figures import write_line_figure  # matplotlib: only when a figure is asked for

            title, xlabel, series = plot
            return [write_line_figure(self.root / EXPORT_DIR / f"{slug(f'exp_{title}')}.{fmt}", series, title, xlabel)]

        export_view(self, self.root, table.table.grid(table.shown_rows), figure if plot is not None else None)
