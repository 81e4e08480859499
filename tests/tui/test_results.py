"""The Results screen: our numbers beside the published ones, a mark naming the stage for every missing
row, sorting by any column, and a refresh when a stage writes its metrics."""

from __future__ import annotations

import json
import threading

import pytest

from advtui.appcore.resultsdata import load_tables, metrics_stages, sort_rows, sort_value
from advtui.report.layout import Column, row_name
from advtui.report.tables import collect, markdown
from advtui.tui.screens.results import ResultsScreen
from advtui.tui.widgets.table import ResultsTable

from pilots import until
from tui_projects import E4_RESULTS
from screenhost import ScreenHost, settle

pytestmark = pytest.mark.anyio  # async tests run on asyncio through anyio's pytest plugin


def cells(table: ResultsTable, row: str) -> dict[str, str]:
    """The row's cells by column key (the report row's key; "_note" for the note column)."""
    values = table.get_row(row)
    return {str(col.key.value): str(v) for col, v in zip(table.ordered_columns, values)}


async def test_fresh_clone_shows_every_row_as_not_run_with_its_stage(fresh_project):
    app = ScreenHost(lambda: ResultsScreen(fresh_project))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.query_one("#results-hint").display  # the "no results yet" hint
        e4 = screen.query_one("#table-E4", ResultsTable)
        assert e4.row_order == ["natural", "natural_nopattern", "D_R", "D_NR", "D_rand", "D_det", "zero_robust",
                                "neg_robust"]
        for name in e4.row_order:
            assert cells(e4, name)["_note"] == f"not run: dvc repro retrain@{name}"
        d_r = cells(e4, "D_R")
        assert d_r["clean_acc"] == "not run" and d_r["robust_acc"] == "—"
        assert d_r["published"] == "84/48"  # the published clean / robust accuracy, as the report prints it
        e1 = screen.query_one("#table-E1", ResultsTable)
        assert cells(e1, "robust_l2")["_note"] == "not run: dvc repro source@robust_l2"
        # Li's tables: a set's row names the stage of every paradigm not run on it
        e5 = screen.query_one("#table-E5", ResultsTable)
        assert cells(e5, "D_R")["_note"] == "not run: dvc repro " + " ".join(
            f"probe@{p}-D_R" for p in ("MIM", "CL", "DM", "SL"))
        assert cells(e5, "D_R")["MIM"] == "— (0.896)"  # ours (paper), as in the report
        e6a = screen.query_one("#table-E6a", ResultsTable)
        assert cells(e6a, "2a D_R_linf")["_note"] == "not run: dvc repro attack_sl@SL-D_R_linf"
        e6b = screen.query_one("#table-E6b", ResultsTable)
        assert cells(e6b, "2b D_R_CL")["_note"] == "not run: dvc repro " + " ".join(
            f"{'attack_sl' if p == 'SL' else 'attack'}@{p}-D_R_CL" for p in ("MIM", "CL", "DM", "SL"))


async def test_our_numbers_beside_the_papers_and_the_missing_mark(fake_project):
    app = ScreenHost(lambda: ResultsScreen(fake_project))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#results-hint").display
        e4 = app.screen.query_one("#table-E4", ResultsTable)
        d_r = cells(e4, "D_R")
        ours = (d_r["clean_acc"], d_r["robust_acc"], d_r["robust_agreement"], d_r["nonrobust_agreement"])
        assert ours == ("86.6 ±2.5", "9.4 ±2.5", "23.3", "80.9")  # mean ±95% interval over the seeds
        headers = [str(c.label) for c in e4.ordered_columns]
        assert headers[1:5] == ["clean", "L2", "Linf", "paper"]  # the published clean/L2 pair beside ours
        assert d_r["published"] == "84/48"
        neg = cells(e4, "neg_robust")
        assert neg["clean_acc"] == "not run" and neg["_note"] == "not run: dvc repro retrain@neg_robust"
        assert cells(e4, "D_det")["_note"] == ""
        legend = str(app.screen.query_one("#legend-E4").render())
        assert "1 of 8 not run: dvc repro retrain@neg_robust" in legend
        assert "mean ±95% interval over 3 seeds (Student t)" in legend


async def test_sorting_a_column_reorders_rows_and_a_second_press_reverses(fake_project):
    app = ScreenHost(lambda: ResultsScreen(fake_project))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        e4 = app.screen.query_one("#table-E4", ResultsTable)
        e4.focus()
        await pilot.press("right", "right", "s")  # the "L2" column
        await pilot.pause()
        # ascending; ties keep the report order; the row that has not run stays last
        assert e4.row_order == ["D_NR", "D_rand", "D_det", "zero_robust", "natural", "D_R", "natural_nopattern",
                                "neg_robust"]
        assert str(e4.ordered_columns[2].label) == "L2 ▲"
        await pilot.press("s")
        await pilot.pause()
        assert e4.row_order == ["natural_nopattern", "D_R", "natural", "D_NR", "D_rand", "D_det", "zero_robust",
                                "neg_robust"]
        assert str(e4.ordered_columns[2].label) == "L2 ▼"


async def test_clicking_a_header_sorts_by_it(fake_project):
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        e4 = app.screen.query_one("#table-E4", ResultsTable)
        x = sum(col.get_render_width(e4) for col in e4.ordered_columns[:2]) + 1  # inside the "L2" header
        await pilot.click("#table-E4", offset=(x, 0))
        await pilot.pause()
        assert e4.sort_key == "robust_acc" and e4.row_order[-4:] == ["natural", "D_R", "natural_nopattern", "neg_robust"]


async def test_a_stage_that_finishes_appears_without_a_key_press(fake_project):
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0.05))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        e4 = app.screen.query_one("#table-E4", ResultsTable)
        e4.sort_by("clean_acc")
        metrics = fake_project / "data" / "metrics" / "E4" / "neg_robust.json"
        metrics.write_text(json.dumps({"dataset": "neg_robust", "clean_acc": 0.219, "robust_acc_l2": 0.0}))
        await until(pilot, lambda: cells(e4, "neg_robust")["clean_acc"] == "21.9", what="the new row")
        assert e4.row_order[0] == "neg_robust"  # the sort survives the refresh
        assert "_note" not in cells(e4, "neg_robust")  # nothing is missing any more


def test_unknown_experiments_get_columns_from_their_rows(fake_project, monkeypatch):
    rows = [{"model": "a", "missing": False, "clean_acc": 0.5, "published_clean_acc": 61.0, "eps": 0.5, "how": {"x": 1}},
            {"model": "b", "missing": True, "published_clean_acc": 70.0}]
    monkeypatch.setattr("advtui.appcore.resultsdata.collect", lambda data: {"E4": [], "E99": rows})
    (table,) = [t for t in load_tables(fake_project) if t.id == "E99"]
    assert [(c.key, c.kind) for c in table.columns] == [
        ("model", "text"), ("clean_acc", "pct"), ("published_clean_acc", "paper"), ("eps", "num")]
    assert table.cells(rows[0]) == ["a", "50.0", "61", "0.5", ""]
    assert table.cells(rows[1]) == ["b", "not run", "70", "—", "not run"]  # E99 has no stage in this dvc.yaml


def test_missing_marks_come_from_dvc_yaml(fresh_project):
    stages = metrics_stages(fresh_project)
    assert stages["data/metrics/E4/D_det.json"] == "retrain@D_det"
    assert stages["data/metrics/construct/D_R.json"] == "construct@D_R"
    rows = [{"dataset": n, "clean_acc": v[0]} for n, v in E4_RESULTS.items()] + [{"dataset": "x", "clean_acc": None}]
    by_clean = Column("clean_acc", "clean", "pct")
    assert [r["dataset"] for r in sort_rows(rows, by_clean, reverse=True)][-2:] == ["D_R", "x"]


def test_the_screen_and_the_report_lay_out_the_same_tables(fake_project):
    """One description per table: the app's headers and cells are the report's, row for row (plus its note)."""
    report = markdown(collect(fake_project / "data"))
    tables = load_tables(fake_project)
    assert [t.id for t in tables] == ["E1", "E4", "curves", "E5", "E6a", "E6b", "E7", "E8", "E13", "E14", "E16", "E18",
                                      "E18w", "E9", "E9leak", "E10", "E11", "E12", "E15", "E17"]
    for table in tables:
        assert f"## {table.title}" in report
        assert "| " + " | ".join(c.header for c in table.columns) + " |" in report
        for row in table.rows:
            # markdown escapes a cell's own "|" (E7's "||f(x) - f(x')||^2"), which would end the cell
            cells = [cell.replace("|", r"\|") for cell in table.cells(row)[:len(table.columns)]]
            assert "| " + " | ".join(cells) + " |" in report


def test_missing_marks_follow_vars_and_matrix_as_dvc_does(tmp_path):
    """The marks come from the app's one dvc.yaml reader, so vars and matrix stages name their targets too."""
    (tmp_path / "dvc.yaml").write_text(
        "vars:\n  - folder: data/metrics/E5\nstages:\n  probe:\n    matrix:\n      p: [MIM, SL]\n      d: [D_R]\n"
        "    cmd: probe ${item.p}-${item.d}\n    metrics:\n      - ${folder}/${item.p}-${item.d}.json\n")
    assert metrics_stages(tmp_path) == {"data/metrics/E5/MIM-D_R.json": "probe@MIM-D_R",
                                        "data/metrics/E5/SL-D_R.json": "probe@SL-D_R"}
    (tmp_path / "dvc.yaml").write_text("stages: [unclosed\n")
    assert metrics_stages(tmp_path) == {}  # rows still show, marked "not run" without a stage


def test_snapshot_80x24(fake_project, snap_compare):
    # the tables are read in a worker: the snapshot is taken once they are drawn (and the first one focused)
    assert snap_compare(ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0)), terminal_size=(80, 24),
                        run_before=settle)


def test_snapshot_120x40(fake_project, snap_compare):
    assert snap_compare(ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0)), terminal_size=(120, 40),
                        run_before=settle)


def _li_metrics(root) -> None:
    """Probe and attack metrics of two paradigms, as the E5 / E6 stages write them (Li's tables part-filled)."""
    folder = root / "data" / "metrics"
    for paradigm, natural, d_r in (("MIM", 0.61, 0.603), ("SL", 0.877, 0.797)):
        for dataset, acc in (("natural", natural), ("D_R", d_r)):
            (folder / "E5").mkdir(parents=True, exist_ok=True)
            (folder / "E5" / f"{paradigm}-{dataset}.json").write_text(json.dumps(
                {"paradigm": paradigm, "dataset": dataset, "clean_acc": acc, "n_test": 1000}))
    (folder / "E6").mkdir(parents=True, exist_ok=True)
    (folder / "E6" / "MIM-natural.json").write_text(json.dumps(
        {"paradigm": "MIM", "dataset": "natural", "clean_acc": 0.58, "n": 50, "autoattack_version": "standard",
         "robust_acc_autoattack_linf": 0.28, "robust_acc_pgd_linf": 0.32, "robust_acc_worst_linf": 0.28}))


async def test_li_tables_show_our_values_beside_the_papers(fake_project):
    """E5 and E6 are laid out like the report: readable titles and headers, each value with Li's figure."""
    _li_metrics(fake_project)
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        e5 = app.screen.query_one("#table-E5", ResultsTable)
        assert e5.table.title == "E5 cross-paradigm relative usefulness, ours (paper)"
        assert [c.header for c in e5.table.shown_columns] == ["set", "MIM", "CL", "DM", "SL", "CRU", "Ilyas", "note"]
        assert cells(e5, "natural")["MIM"] == "0.610"  # the natural row: U itself
        assert cells(e5, "D_R")["MIM"] == f"{0.603 / 0.61:.3f} (0.896)"  # RU (Li's RU)
        assert cells(e5, "D_R")["SL"] == f"{0.797 / 0.877:.3f} (0.880)"
        assert cells(e5, "D_R")["CL"] == "— (0.791)"
        e6b = app.screen.query_one("#table-E6b", ResultsTable)
        assert [c.header for c in e6b.table.shown_columns][:7] == ["set", "MIM", "CL", "DM", "SL", "CR", "SL PGD"]
        assert cells(e6b, "2b natural")["MIM"] == "0.280 (0.008)"


async def test_tab_and_arrows_move_focus_between_every_table(fake_project):
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        tables = list(screen.query(ResultsTable))
        assert [t.id for t in tables] == [f"table-{i}" for i in ("E1", "E4", "curves", "E5", "E6a", "E6b", "E7", "E8", "E13",
                                                                 "E14", "E16", "E18", "E18w", "E9", "E9leak", "E10",
                                                                 "E11", "E12", "E15", "E17")]
        assert screen.focused is tables[0]
        for table in [*tables[1:], tables[0]]:  # tab walks every table, then wraps around
            await pilot.press("tab")
            assert screen.focused is table
            # the focused table's title stands out, and the body scrolled to it
            block = screen.query_one(f"#block-{table.table.id}")
            assert block.has_pseudo_class("focus-within") and block.has_class("-focused")
            assert block.query_one(".results-title").styles.background.a > 0  # highlighted
            assert len(screen.query(".results-block.-focused")) == 1
        await pilot.press("shift+tab")
        assert screen.focused is tables[-1]
        await pilot.press("tab", "right")  # E1, second column
        e1, e4 = tables[0], tables[1]
        await pilot.press(*["down"] * (e1.row_count - 1))
        assert screen.focused is e1 and e1.cursor_coordinate == (e1.row_count - 1, 1)
        await pilot.press("down")  # past E1's last row: E4's first, same column
        assert screen.focused is e4 and e4.cursor_coordinate == (0, 1)
        await pilot.press("up")  # and back to E1's last row
        assert screen.focused is e1 and e1.cursor_row == e1.row_count - 1
        for _ in range(e1.row_count + 2):  # past the first table's top: stays there
            await pilot.press("up")
        assert screen.focused is e1 and e1.cursor_row == 0


async def test_every_table_sorts_by_every_column_from_the_keyboard(fake_project):
    """On each table in turn (tab), each column (right) sorts with s: its values read in order top to bottom, the
    rows without one last; the other tables keep their order."""
    _li_metrics(fake_project)
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        tables = list(app.screen.query(ResultsTable))
        for n, table in enumerate(tables):
            assert app.screen.focused is table
            by_name = {row_name(r): r for r in table.table.rows}
            for index, column in enumerate(table.table.shown_columns):
                await pilot.press("s")
                assert table.sort_key == column.key and not table.reverse
                assert str(table.ordered_columns[index].label).endswith("▲")
                values = [sort_value(column.get(by_name[name])) for name in table.row_order]
                have = [v for v in values if v is not None]
                assert values[:len(have)] == have, f"{table.id} by {column.key}: a row without a value sorted first"
                assert have == sorted(have, key=str if len({type(v) for v in have}) > 1 else None), (
                    f"{table.id} by {column.key}: {values}")
                await pilot.press("right")
            assert all(other.sort_key is None for other in tables[n + 1:])
            await pilot.press("tab")


async def test_the_tables_are_read_off_the_ui_thread(fake_project, monkeypatch):
    """Opening the screen (and ^r) reads the metrics files in a worker: keys are answered meanwhile."""
    threads = []

    def recording(root):
        threads.append(threading.current_thread() is threading.main_thread())
        return load_tables(root)

    monkeypatch.setattr("advtui.tui.screens.results.load_tables", recording)
    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert app.screen.query_one("#table-E4", ResultsTable).row_count == 8
    assert threads == [False, False]


async def test_x_exports_the_focused_table_as_shown_and_names_the_file(fake_project):
    """The focused table, in the order it is sorted, goes to a file; a notification names it."""
    import csv

    app = ScreenHost(lambda: ResultsScreen(fake_project, poll_s=0))
    notes: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.notify = lambda message, **kwargs: notes.append(message)  # what the reader is told
        e4 = app.screen.query_one("#table-E4", ResultsTable)
        e4.focus()
        await pilot.press("right", "right", "s")  # sorted by L2
        await pilot.press("x")
        await until(pilot, lambda: app.screen.query("OptionList"), "the format dialog")
        await pilot.press("enter")  # the first format: CSV
        await until(pilot, lambda: notes, "the notification")
    path = fake_project / ".advtui/exports/E4.csv"
    assert notes == ["Wrote .advtui/exports/E4.csv"]
    rows = list(csv.reader(path.read_text().splitlines()))
    assert rows[0][:3] == ["set", "clean", "L2"] and rows[0][-1] == "note"
    assert [r[0] for r in rows[1:]] == e4.row_order  # the sorted order the reader saw
