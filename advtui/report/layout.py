"""How each table of the report is laid out: one description that every renderer reads.

The report (markdown and rich, :mod:`advtui.report.tables`) and the app's Results screen
(:mod:`advtui.appcore.resultsdata`) both draw a table from its :class:`TableSpec` (title, legend, columns), so
the two never show the same experiment differently. No torch, no textual: rows are the JSON-able dicts of
:func:`advtui.report.tables.collect`.

A :class:`Column` names the row value it shows (``key``, or a ``value`` function where the cell is computed,
as in Li's natural row, which shows U where the other rows show RU), its header, how its values are
formatted (``kind``), whether its cell adds the 95% interval over seeds (``interval``: ``mean ±half-width``
from the row's ``ci95``) and optionally the paper's figure shown beside ours in brackets (``paper``). A row that
has not run (``missing: true``) keeps its name and published figures and says "not run" in its first result
column, and a row that does not apply to the data (``not_applicable``) says "n/a (why)" there; a row whose
``missing`` lists paradigms shows "—" in those paradigms' cells. An experiment without a
spec gets columns derived from its rows, so a new experiment shows up everywhere without a change here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from advtui.report.usefulness import NATURAL, UNTRAINED
from advtui.catalog.names import PARADIGMS

Row = dict[str, Any]
Kind = Literal["text", "pct", "ratio", "paper", "num", "threat"]
MISSING = "—"
NOT_RUN = "not run"
#: Row keys a row goes by, in order of preference (E4 rows have a dataset, E1 rows a model, ...).
NAME_KEYS = ("dataset", "model", "name", "set", "run", "objective", "source")


def at(*path: str) -> Callable[[Row], Any]:
    """A getter of a nested row value: ``at("RU", "MIM")(row)`` is ``row["RU"]["MIM"]``, None where absent."""

    def get(row: Row) -> Any:
        value: Any = row
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def format_value(kind: Kind, value: Any) -> str:
    """One value as the tables print it: fractions as percentages with one decimal (``pct``) or three decimals
    as in Li's tables (``ratio``), published figures as printed (``paper``; a clean/robust pair as ``84/48``),
    attack settings as their threat model (``threat``); "—" when absent."""
    if value is None:
        return MISSING
    if kind == "pct" and isinstance(value, (int, float)):
        return f"{100 * value:.1f}"
    if kind == "ratio" and isinstance(value, (int, float)):
        return f"{value:.3f}"
    if kind == "paper":
        figures = [v for v in (value if isinstance(value, (tuple, list)) else (value,)) if v is not None]
        return "/".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in figures) or MISSING
    if kind == "threat":
        if not isinstance(value, dict) or not value.get("eps"):
            return "none"
        if value.get("norm") == "linf":  # Linf radii are read in 1/255 steps of the pixel range
            return f"linf eps {value['eps'] * 255:.3g}/255"
        return f"{value.get('norm')} eps {value['eps']:g}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class Column:
    """One table column: the row value it shows, its header, how it is formatted, the paper's figure beside it.

    ``key`` identifies the column (the app sorts by it) and, unless ``value`` computes the cell, is the row
    key it reads. ``optional`` columns are left out when no row has a value for them (probe agreements exist
    on synthetic data only). ``interval``: the value is a mean over seeds, and the cell adds ``±`` the half-width
    of its 95% interval (``row["ci95"][key]``, [lo, hi]) where the row has one. ``paper`` reads the published
    figure printed in brackets after ours.
    """

    key: str
    header: str
    kind: Kind = "num"
    optional: bool = False
    value: Callable[[Row], Any] | None = None
    paper: Callable[[Row], Any] | None = None
    interval: bool = False

    def get(self, row: Row) -> Any:
        """The row's value in this column (what the cell shows and the app sorts by)."""
        return self.value(row) if self.value is not None else row.get(self.key)

    def half_width(self, row: Row) -> float | None:
        """Half the width of the row's 95% interval for this column (the interval is symmetric about the mean),
        or None: not an interval column, or one run (or a row measured before seeds were recorded)."""
        bounds = at("ci95", self.key)(row) if self.interval else None
        return (bounds[1] - bounds[0]) / 2 if isinstance(bounds, list) and len(bounds) == 2 else None

    def text(self, row: Row, ours: str | None = None) -> str:
        """The cell's text: our value (or ``ours``, given) with its interval, then the paper's figure in brackets
        if there is one."""
        shown = format_value(self.kind, self.get(row)) if ours is None else ours
        half = self.half_width(row) if ours is None and self.get(row) is not None else None
        if half is not None:
            shown = f"{shown} ±{format_value(self.kind, half)}"
        published = None if self.paper is None else self.paper(row)
        return shown if published is None else f"{shown} ({format_value(self.kind, published)})"


def row_name(row: Row) -> str:
    """The name a row goes by (its dataset, model, ...), prefixed by its sub-table where an experiment has
    several (E6's 2a and 2b both have a D_R_linf row)."""
    name = next((str(row[k]) for k in NAME_KEYS if k in row), "?")
    return f"{row['table']} {name}" if "table" in row else name


def not_applicable(reason: str) -> str:
    """What a row of a set the data cannot have says in place of results (``n/a (synthetic only)``)."""
    return f"n/a ({reason})"


def cells(columns: list[Column], row: Row) -> list[str]:
    """The row's cells under ``columns``. A row that has not run (``missing: true``) keeps its name and the
    published figures, and says "not run" in its first result column; a row that does not apply to the data
    (``not_applicable``) says why there."""
    mark = NOT_RUN if row.get("missing") is True else (
        not_applicable(row["not_applicable"]) if row.get("not_applicable") else None)
    if mark is None:
        return [column.text(row) for column in columns]
    out, marked = [], False
    for i, column in enumerate(columns):
        if i > 0 and not marked and column.kind not in ("text", "paper"):
            out.append(column.text(row, mark))
            marked = True
        else:
            out.append(column.text(row))
    return out


@dataclass(frozen=True)
class TableSpec:
    """One table of the report: which rows it shows, its title, legend and columns.

    ``id`` names the table (``E6a``; the app's widget ids); ``experiment`` is the report key its rows come from
    and ``keep`` picks them (E6 holds Li's Tables 2a and 2b); ``settings`` opens the caption with what the
    rows say about how they were measured (attack settings, test images).
    """

    id: str
    experiment: str
    title: str
    legend: str
    columns: tuple[Column, ...]
    keep: Callable[[Row], bool] = lambda row: True
    settings: Callable[[list[Row]], str] | None = None
    #: columns that depend on the rows (E8: one per classifier the run had), after ``columns``
    more_columns: Callable[[list[Row]], tuple[Column, ...]] | None = None


def seeds_note(rows: list[Row], measured: str) -> str:
    """What the ``±`` of ``measured`` (the interval columns) means: how many seeds the rows' means are over."""
    counts = sorted({len(row["seeds"]) for row in rows if row.get("seeds")})
    if not counts:
        return ""
    if counts == [1]:
        return f"{measured}: one seed per row, no interval"
    over = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{measured}: mean ±95% interval over {over} seeds (Student t)"


def _e4_settings(rows: list[Row]) -> str:
    for row in rows:
        if row.get("attack_l2"):
            l2, linf = row["attack_l2"], row.get("attack_linf") or {}
            seeds = seeds_note(rows, "clean, L2, Linf")
            return (f"robust = L2 PGD-{l2['steps']} eps {l2['eps']:g} (step {l2['step_size']:g}); "
                    f"Linf = PGD-{linf.get('steps')} eps {linf.get('eps', 0) * 255:.3g}/255; "
                    f"{row.get('n_test')} test images" + (f"; {seeds}" if seeds else ""))
    return "no E4 stage has run yet"


def _e6_settings(rows: list[Row]) -> str:
    for row in rows:
        attacks = row.get("attacks") or {}
        # a metrics file of another version may lack a threat: its caption then waits for a row that has both
        if attacks.get("pgd_l2") and attacks.get("pgd_linf"):
            l2, linf = attacks["pgd_l2"][0], attacks["pgd_linf"][0]
            parts = row.get("autoattack_subset")
            only = f"; AutoAttack: only {'+'.join(parts)} (e6 autoattack_skip)" if parts else ""
            return (f"L2 eps {l2['eps']:g} (PGD-{l2['steps']}), Linf eps {linf['eps'] * 255:.3g}/255 "
                    f"(PGD-{linf['steps']}); {row.get('n_test')} test images for SL{only}")
    return "attack settings: shown once a Table 2a stage (attack_sl@SL-D_R, SL-D_R_linf) has run"


def _e6b_settings(rows: list[Row]) -> str:
    versions: dict[str, str] = {}
    for row in rows:
        versions.update({p: v for p, v in (row.get("autoattack_version") or {}).items() if v})
    if not versions:
        return "AutoAttack version per paradigm: shown once a Table 2b attack stage has run"
    ran = ", ".join(f"{p} '{versions[p]}'" for p in PARADIGMS if p in versions)
    subsets = {"+".join(parts) for row in rows for parts in (row.get("autoattack_subset") or {}).values() if parts}
    only = f"; only {', '.join(sorted(subsets))} of it (e6 autoattack_skip)" if subsets else ""
    return f"AutoAttack ran as {ran} (Li A.4: 'rand' for MIM and DM){only}"


def _absolute(row: Row) -> bool:
    """Rows whose E5 cells are U itself: natural (RU is 1 by definition) and the untrained floor."""
    return row.get("dataset") in (NATURAL, UNTRAINED)


def _li_cell(relative: str, absolute: str, *path: str) -> Callable[[Row], Any]:
    """A cell of Li's Table 1: RU (or CRU) of a constructed set; on the natural row, where RU is 1 by
    definition, U (or CU) itself."""
    return lambda row: at(absolute if _absolute(row) else relative, *path)(row)


def _labelled(row: Row, detail: str) -> str:
    """``D_R (robust)``: the set and what distinguishes it, once (``natural`` is its own source)."""
    return row["dataset"] if row.get(detail) in (None, row["dataset"]) else f"{row['dataset']} ({row[detail]})"


E1 = TableSpec(
    id="E1", experiment="E1", title="E1 source models (natural test set)",
    legend="clean / robust L2 / robust Linf: accuracy (%) on the natural test set, clean and under PGD",
    columns=(
        Column("model", "model", "text"), Column("adversarial", "adversarial training", "threat"),
        Column("clean_acc", "clean %", "pct"), Column("robust_acc", "robust L2 %", "pct"),
        Column("robust_acc_linf", "robust Linf %", "pct"),
    ),
)
# Short headers so the table fits an 80-column terminal; the legend and the README spell them out.
E4 = TableSpec(
    id="E4", experiment="E4", title="E4 train on constructed sets, test on natural data",
    legend=("clean / L2 / Linf: accuracy (%) on natural test data, clean and under PGD; paper: published clean/L2 "
            "robust; shape, colour, pattern: ground-truth probe agreement (%) with the set's labels; start shape: the shape "
            "probe's agreement with the start image's class (inverted sets: did the start's shape survive?); hit %: "
            "relabelled images the source model assigns their new label; ΔL2: mean L2 change from the start image; "
            "natural_nopattern (control, synthetic data only): the natural images without their planted pattern, "
            "so its models can read only shape and colour (pattern agreement at chance)"),
    columns=(
        Column("dataset", "set", "text"), Column("clean_acc", "clean", "pct", interval=True),
        Column("robust_acc", "L2", "pct", interval=True), Column("robust_acc_linf", "Linf", "pct", interval=True),
        Column("published", "paper", "paper", value=lambda row: (row.get("published_clean_acc"),
                                                                 row.get("published_robust_acc"))),
        Column("robust_agreement", "shape", "pct"), Column("colour_agreement", "colour", "pct"),
        Column("nonrobust_agreement", "pattern", "pct"),
        Column("start_robust_agreement", "start shape", "pct", optional=True),
        Column("target_hit_rate", "hit %", "pct", optional=True),
        Column("mean_l2_change", "ΔL2", "num", optional=True),
    ),
    settings=_e4_settings,
)
E5 = TableSpec(
    id="E5", experiment="E5", title="E5 cross-paradigm relative usefulness, ours (paper)",
    legend=("ours (paper: Li et al. Table 1, CIFAR-10); cells: relative usefulness RU = U(set)/U(natural) of a "
            "linear probe on each paradigm's encoder, natural row: U itself (probe accuracy); untrained row: U of "
            "each encoder before pretraining (the floor U is read against; not in Li); CRU = min over "
            "paradigms; Ilyas: the SL usefulness Ilyas et al. reported; — = stage not run"),
    columns=(
        Column("dataset", "set", "text",
               value=lambda row: f"{row['dataset']} (U)" if _absolute(row) else _labelled(row, "feature")),
        *(Column(p, p, "ratio", value=_li_cell("RU", "U", p), paper=at("published_RU", p)) for p in PARADIGMS),
        Column("CRU", "CRU", "ratio", value=_li_cell("CRU", "CU"), paper=at("published_CRU")),
        Column("published_ilyas", "Ilyas", "ratio"),
    ),
)
E6A = TableSpec(
    id="E6a", experiment="E6", title="E6 (2a) SL on robust sets: PGD vs AutoAttack, ours (paper)",
    legend=("ours (paper: Li et al. Table 2a, CIFAR-10): robust accuracy of encoder + linear probe on natural "
            "test images; AA = AutoAttack; worst: per point, broken by PGD or AutoAttack (ours only: Li reports each "
            "alone); — = stage not run"),
    columns=(
        Column("dataset", "SL trained on", "text", value=lambda row: _labelled(row, "source")),
        *(Column(t, header, "ratio", paper=at("published", t)) for t, header in (
            ("pgd_l2", "L2 PGD"), ("autoattack_l2", "L2 AA"), ("pgd_linf", "Linf PGD"), ("autoattack_linf", "Linf AA"))),
        Column("worst_l2", "L2 worst", "ratio", optional=True), Column("worst_linf", "Linf worst", "ratio", optional=True),
    ),
    keep=lambda row: row.get("table") == "2a", settings=_e6_settings,
)
E6B = TableSpec(
    id="E6b", experiment="E6", title="E6 (2b) AutoAttack Linf robustness per paradigm, ours (paper)",
    legend=("ours (paper: Li et al. Table 2b, CIFAR-10): AutoAttack Linf robust accuracy R of encoder + linear "
            "probe on natural test images, 'rand' = AutoAttack with EOT; CR = min over paradigms; CR worst: the "
            "same with each point broken by PGD or AutoAttack (ours only); SL PGD: "
            "SL under Linf PGD; — = stage not run"),
    columns=(
        Column("dataset", "set", "text", value=lambda row: _labelled(row, "source")),
        *(Column(p, p, "ratio", value=at("R", p), paper=at("published_R", p)) for p in PARADIGMS),
        Column("CR", "CR", "ratio", paper=at("published_CR")),
        Column("CR_worst", "CR worst", "ratio", optional=True),
        Column("sl_pgd_linf", "SL PGD", "ratio", paper=at("published_sl_pgd_linf")),
    ),
    keep=lambda row: row.get("table") == "2b", settings=_e6b_settings,
)
def stays_above(rows: list[Row], upper: str, lower: str, norm: str) -> str:
    """Whether run ``upper``'s curve stays above ``lower``'s at every radius from the planted pattern's flip
    radius on (synthetic data: a model reading the robust shape must outlast one reading the pattern).

    Radii where both curves reach 0 are not counted against ``upper``: both models are broken there, so the
    verdict says how far past the flip radius ``upper`` stayed above before that."""
    by_run = {row.get("run"): row for row in rows if row.get("missing") is False}
    a, b = by_run.get(upper), by_run.get(lower)
    if a is None or b is None or not a.get("pattern_flip"):
        return ""
    flip = a["pattern_flip"][norm]
    past = [(e, x, y) for (e, x), (_, y) in zip(a[norm], b[norm]) if e >= flip]
    if not past:
        return f"no {norm} radius past the pattern's flip radius {flip:.3g}"
    below = [(e, x, y) for e, x, y in past if x <= y]
    if not below:
        return f"{upper} stays above {lower} at every {norm} eps >= the planted pattern's flip radius {flip:.3g}"
    first, x, y = below[0]
    above = [e for e, _, _ in past if e < first]
    if x <= 0:
        if not above:
            return (f"{upper} does NOT stay above {lower} past the planted pattern's flip radius {flip:.3g}: "
                    f"from eps {first:g} on both are broken (0%)")
        return (f"{upper} stays above {lower} past the planted pattern's flip radius {flip:.3g} up to eps "
                f"{above[-1]:g} ({above[-1] / flip:.1f}x the flip radius); from eps {first:g} on both are broken (0%)")
    return (f"{upper} does NOT stay above (first at eps {first:g}: {100 * x:.1f}% against {100 * y:.1f}%) {lower} "
            f"past the planted pattern's flip radius {flip:.3g}")


#: The radii the curves table shows as columns (the figure files and ``dvc plots`` show every radius).
CURVE_COLUMNS = {"l2": (0.25, 0.5, 1.0), "linf": (4 / 255, 8 / 255)}


def curve_key(norm: str, eps: float) -> str:
    """The row key of a curve's accuracy at one radius (``l2_0.25``)."""
    return f"{norm}_{eps:.4g}"


def _curve_settings(rows: list[Row]) -> str:
    done = [row for row in rows if row.get("missing") is False and not row.get("not_applicable")]
    if not done:
        return "no curve stage has run yet"
    first = done[0]
    flip = first.get("pattern_flip")
    truth = (f"; ground truth: the planted pattern flips at L2 {flip['l2']:.3g}, Linf {flip['linf'] * 255:.3g}/255"
             if flip else "")
    verdict = stays_above(rows, "E4-D_R", "E4-D_NR", "l2")
    seeds = seeds_note(rows, "E4 rows")
    return f"PGD-{first.get('steps')} per radius on {first.get('n_test')} test images{truth}" + (
        f"; {seeds}" if seeds else "") + (f". {verdict}" if verdict else "")


CURVES = TableSpec(
    id="curves", experiment="curves", title="Robust accuracy against eps (E1 and E4 models)",
    legend=("accuracy (%) under PGD at each radius (a point broken at a radius counts as broken at every larger "
            "one); ½ clean: the radius where accuracy falls to half the clean accuracy (— = never in the sweep); "
            "every radius: data/figures, `dvc plots show`"),
    columns=(
        Column("run", "model", "text"), Column("clean_acc", "clean", "pct", interval=True),
        *(Column(curve_key("l2", e), f"L2 {e:g}", "pct", interval=True) for e in CURVE_COLUMNS["l2"]),
        Column("half_clean_eps_l2", "L2 ½", "num"),
        *(Column(curve_key("linf", e), f"Linf {e * 255:.0f}/255", "pct", interval=True) for e in CURVE_COLUMNS["linf"]),
        Column("half_clean_eps_linf", "Linf ½ (/255)", "num", value=lambda row: None if row.get(
            "half_clean_eps_linf") is None else row["half_clean_eps_linf"] * 255),
    ),
    settings=_curve_settings,
)

def _first_done(rows: list[Row]) -> Row | None:
    """The first row of a stage that has run (a stage not yet run leaves one row marked missing), or None."""
    return next((row for row in rows if row.get("missing") is False), None)


def _e13_settings(rows: list[Row]) -> str:
    done = [row for row in rows if row.get("missing") is False]
    if not done:
        return "the gaussian stage has not run yet"
    first = done[0]
    agree = all(row["cov_error"] <= row["cov_tolerance"] for row in done)
    return (f"x ~ N(y mu*, Sigma*) in {first.get('dim')} dimensions, kappa(Sigma*) {first.get('condition_true'):.3g}, "
            f"{first.get('n_samples')} samples; simulated {'within' if agree else 'OUTSIDE'} the sampling tolerance "
            "of the closed form at every eps")


E13 = TableSpec(
    id="E13", experiment="E13", title="E13 Gaussian model (Ilyas section 4): simulated MLE (closed form)",
    legend=("simulated: Adam on the empirical (robust) likelihood, the adversary answering each step; in brackets "
            "the closed form Sigma_r = Sigma*/2 + I/lambda + sqrt(Sigma*/lambda + Sigma*^2/4); lambda: the "
            "multiplier whose adversary spends rms ||delta|| = eps; kappa: condition number of Sigma (1 = a "
            "multiple of I); align: cosine of the gradient Sigma^-1 mu with the inter-class direction mu*; "
            "error: ||Sigma_sim - Sigma_r||_F / ||Sigma_r||_F beside the tolerance 3 standard errors of the "
            "sample allow"),
    columns=(
        Column("name", "MLE", "text"), Column("eps", "eps", "num"), Column("multiplier", "lambda", "num"),
        Column("condition_simulated", "kappa", "num", paper=at("condition_analytic")),
        Column("alignment_simulated", "align", "ratio", paper=at("alignment_analytic")),
        Column("cov_error", "error", "ratio"), Column("cov_tolerance", "tolerance", "ratio"),
        Column("rms_delta", "rms delta", "num"),
    ),
    settings=_e13_settings,
)

def _e14_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the leakage stage has not run yet (it needs construct@D_rand and construct@D_det)"
    return (f"chance {100 * first['chance']:.1f}%; linear bound: a linear model adversarially trained at L2 eps "
            f"{first.get('linear_eps')} ({100 * first['linear_clean_acc']:.1f}% on natural test data), then a classifier "
            f"on its weight vectors alone trained on the set's labels, tested on {first.get('n_test')} natural images")


E14 = TableSpec(
    id="E14", experiment="E14", title="E14 robust feature leakage in D_rand and D_det (Goh)",
    legend=("shape: ground-truth shape probe's agreement (%) with the assigned labels (synthetic data only); start: "
            "the same on the start images; excess: shape minus chance; leakage: shape minus start, what the attack "
            "itself added; expected: what the planted truth predicts for excess; bound: natural test accuracy (%) of "
            "the restricted linear classifier (Goh's lower bound), excess: minus chance"),
    columns=(
        Column("set", "set", "text"), Column("expected", "expected", "text", optional=True),
        Column("robust_agreement", "shape", "pct", optional=True),
        Column("start_robust_agreement", "start", "pct", optional=True),
        Column("excess_over_chance", "excess", "pct", optional=True), Column("leakage", "leakage", "pct", optional=True),
        Column("linear_bound_acc", "bound", "pct"), Column("linear_bound_excess", "excess", "pct"),
    ),
    settings=_e14_settings,
)


def _e16_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the mislabelled stage has not run yet"
    return (f"natural test accuracy on {first.get('n_test')} images (chance {100 * first['chance']:.1f}%); every "
            "label of the errors set is wrong")


E16 = TableSpec(
    id="E16", experiment="E16", title="E16 learning from mislabelled data (Wallace), ours (paper)",
    legend=("weak model: trained briefly, it relabels the natural training images; errors: a fresh model trained only "
            "on the images it got wrong, with its labels; noise: trained on uniform noise labelled by the weak model "
            "(control); clean: natural test accuracy (%); n: training images; weak agree: the fresh model's agreement "
            "with the weak one on natural test images; shape / pattern: ground-truth probes' agreement with the "
            "errors' labels, true shape / true pattern: with their true classes (synthetic data only)"),
    columns=(
        Column("set", "set", "text"),
        Column("clean_acc", "clean", "pct", paper=at("published_clean_acc")),
        Column("n_train", "n", "num", paper=at("published_n_train")),
        Column("weak_agreement", "weak agree", "pct", optional=True),
        Column("robust_agreement", "shape", "pct", optional=True),
        Column("nonrobust_agreement", "pattern", "pct", optional=True),
        Column("true_robust_agreement", "true shape", "pct", optional=True),
        Column("true_nonrobust_agreement", "true pattern", "pct", optional=True),
    ),
    settings=_e16_settings,
)

def _e18_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the frequency stage has not run yet"
    probes = (f"; on its high-passed training images the shape probe reads {100 * first['train_robust_agreement']:.1f}%, "
              f"the pattern probe {100 * first['train_nonrobust_agreement']:.1f}%" if "train_robust_agreement" in first else "")
    return (f"trained on {first.get('n_train')} natural images high-passed at sigma {first.get('sigma')} px, tested on "
            f"{first.get('n_test')} images (chance {100 * first['chance']:.1f}%){probes}")


E18 = TableSpec(
    id="E18", experiment="E18", title="E18 frequency control: trained on high-passed images only",
    legend=("clean: accuracy (%) of the model trained on high-passed images on each test set: natural, high-passed, "
            "and (synthetic data) pattern-free, the same images drawn without their planted pattern; expected: what "
            "the planted truth predicts"),
    columns=(Column("set", "test set", "text"), Column("clean_acc", "clean", "pct"),
             Column("expected", "expected", "text", optional=True)),
    settings=_e18_settings, keep=lambda row: row.get("name") == "frequency" or "clean_acc" in row,
)


def _world1_settings(rows: list[Row]) -> str:
    done = [row for row in rows if row.get("missing") is False and not row.get("not_applicable")]
    if not done:
        return "the world1 stage has not run yet (it needs retrain@natural, retrain@D_rand, retrain@D_det)"
    first = done[0]
    return (f"E4's classifiers ({first.get('n_seeds')} seeds each, mean ±95% interval) on {first.get('n_test')} test "
            f"images, chance {100 * first['chance']:.1f}%")


E18_WORLD1 = TableSpec(
    id="E18w", experiment="E18", title="E18 World-1 control: E4 classifiers on test data without the planted pattern",
    legend=("World 2: the natural test set (the pattern a feature of the data); World 1: the same images drawn without "
            "the pattern, as if it were an artefact of the training set; expected: what the planted truth predicts for "
            "World 1"),
    columns=(Column("set", "trained on", "text"), Column("world2_acc", "World 2", "pct", interval=True),
             Column("world1_acc", "World 1", "pct", interval=True), Column("expected", "expected", "text")),
    settings=_world1_settings, keep=lambda row: row.get("name") == "world1" or "world1_acc" in row,
)

#: Every known table, in the order the report and the app show them.
def _e7_settings(rows: list[Row]) -> str:
    first = next((row for row in rows if row.get("n_test")), None)
    if first is None:
        return "no E7 stage has run yet"
    radius = format_value("threat", {"norm": first.get("norm"), "eps": first.get("eps")})
    return (f"APGD (pyautoattack, default settings: {first.get('n_iter')} iterations) at {radius} on each objective, "
            f"{first['n_test']} test images; SL's InfoNCE uses a projection head trained on the frozen encoder")


E7 = TableSpec(
    id="E7", experiment="E7", title="E7 attack-objective transfer: accuracy (%) under each objective, ours (paper)",
    legend=("ours (paper: Li et al. Table 7, CL only): accuracy of encoder + linear probe on adversarial images "
            "made by maximising each objective on the encoder; projector: SimCLR's projection head; augmentation: "
            "SimCLR's views differentiated with kornia; alignment: ||f(x) - f(x')||^2; CE: the probe's cross-entropy; "
            "loss curves (Fig. 2): data/figures/E7_curves.{png,svg}, `dvc plots show`; — = stage not run"),
    columns=(
        Column("attack", "attack objective", "text"),
        *(Column(p, p, "pct", paper=at("published", p)) for p in ("SL", "CL")),
    ),
    settings=_e7_settings,
)


def _e8_columns(rows: list[Row]) -> tuple[Column, ...]:
    targets = next((row["targets"] for row in rows if row.get("targets")), [])
    return (*(Column(f"to_{t}", f"→ {t}", "pct", value=at("acc", t)) for t in targets),
            Column("pattern_added", "pattern added", "pct", optional=True),
            Column("shape_kept", "shape kept", "pct", optional=True))


def _test_images(rows: list[Row]) -> str:
    """"50 test images (DM: 10)": the most any source was attacked on, and the sources attacked on fewer
    (e8.rand_test_size)."""
    sizes = [row["n_test"] for row in rows if isinstance(row.get("n_test"), int)]
    most = max(sizes, default=None)
    fewer = [f"{row['source']}: {row['n_test']}" for row in rows if row.get("n_test") not in (None, most)]
    return f"{most} test images" + (f" ({', '.join(fewer)})" if fewer else "")


def _e8_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the transfer stage has not run yet"
    radius = format_value("threat", {"norm": first.get("norm"), "eps": first.get("eps")})
    rand = [row["source"] for row in rows if row.get("autoattack_version") == "rand"]
    summary = first.get("transfer") or {}
    mean = " / ".join(format_value("pct", summary.get(k)) for k in ("within", "across"))
    return (f"AutoAttack's APGD-CE at {radius} on each source ({', '.join(rand)}: 'rand', with EOT)" if rand else
            f"AutoAttack's APGD-CE at {radius} on each source") + (
        f", {_test_images(rows)}; mean accuracy on transferred images within SL / across paradigms: {mean}")


E8 = TableSpec(
    id="E8", experiment="E8", title="E8 transfer matrix: accuracy (%) of each classifier on each source's adversarial images",
    legend=("rows: the attacked classifier (encoder + linear probe, natural images); columns: the classifier evaluated; "
            "the diagonal is white-box; SL-<arch>: the extra SL backbones (e8.backbones); paper: Li et al. Fig. 3 "
            "(a heatmap without numbers): low accuracy within SL, high across paradigms; heatmap: "
            "data/figures/E8_transfer.{png,svg}; pattern added / shape kept (synthetic data): of the source's "
            "adversarial images it changed, the share whose perturbation carries the planted pattern of the class "
            "the source now predicts (chance ~1/9) / whose shape still reads the clean image's class (ground "
            "truth: images that add a pattern should fool the classifiers that read it, SL, and not the others)"),
    columns=(Column("source", "source", "text"), Column("clean_acc", "clean", "pct")),
    more_columns=_e8_columns, settings=_e8_settings,
)

def _sweep(rows: list[Row]) -> dict[str, float]:
    return next((row["sweep"] for row in rows if row.get("sweep")), {})


def _e9_columns(rows: list[Row]) -> tuple[Column, ...]:
    return tuple(Column(f"R:{name}", f"R_{eps:g}", "pct", interval=True, paper=at(f"published_R:{name}"))
                 for name, eps in _sweep(rows).items())


def _e9_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the robustified stage has not run yet (it needs source@standard, source@robust_l2 and E4's natural, zero_robust, neg_robust)"
    return (f"R_eps: {first.get('n_test')} test images, each inverted (unbounded, {first.get('steps')} L2 steps of "
            f"{first.get('step_size')}, from a random {'other-class ' if first.get('start') == 'other' else ''}image) "
            f"through the eps-robust source; chance {100 * first['chance']:.1f}%; leak control: {first.get('control')}")


E9 = TableSpec(
    id="E9", experiment="E9", title="E9 robustified test sets: accuracy (%) on R_eps, ours (Springer Table 5)",
    legend=("rows: standard = E4's natural-data classifiers, robust = E1 robust_l2 (paper: eps 0.5), zero-/negative-"
            "robust = E4's (mean ±95% interval over seeds); ', projected': the same images with the non-robust subspace "
            "projected out (synthetic: the planted tile repeated at every shift, and per image the class-tile windows "
            "that best match what the inversion added, as many as the settings line says; real data: the zero-robust "
            "classifiers' top input-gradient directions), the leak control the paper lacks: zero-robust above "
            "chance on R_eps is Springer's evidence of Type B (entangled) features only where it survives the projection"),
    columns=(Column("name", "classifier", "text"), Column("test", "test", "pct", interval=True, paper=at("published_test"))),
    more_columns=_e9_columns, settings=_e9_settings, keep=lambda row: "leak" not in row,
)
E9_LEAK = TableSpec(
    id="E9leak", experiment="E9", title="E9 leak: what each R_eps carries of the planted truth",
    legend=("shape / colour: share of R_eps whose shape / colour probe reads the test label (robust features drawn); "
            "pattern: share "
            "whose added part (R_eps minus its start) carries the label's planted pattern at any shift (the leak; "
            "chance 10%); in subspace: share of the added energy the leak control removes; local copy left: share whose "
            "added part, after the control, still holds a single, non-repeating copy of the label's tile somewhere "
            "(chance 10%); repr error: relative "
            "distance of R_eps's representation from the test image's"),
    columns=(Column("leak", "source", "text"), Column("origin", "from", "text"),
             Column("shape_agreement", "shape", "pct", optional=True),
             Column("colour_agreement", "colour", "pct", optional=True),
             Column("pattern_agreement", "pattern", "pct", optional=True),
             Column("pattern_fraction", "in subspace", "pct", optional=True),
             Column("local_pattern_agreement", "local copy left", "pct", optional=True),
             Column("repr_error", "repr error", "ratio")),
    keep=lambda row: "leak" in row or row.get("missing") is True,  # before the stage runs: its "not run" row
)


def _e10_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the robustified stage has not run yet"
    return (f"standard on R_eps: mean ±95% interval over {first.get('n_seeds')} seeds on {first.get('n_test')} images; "
            f"source clean: one model on {first.get('n_clean')} test images, Wilson 95% interval; figure: "
            f"data/figures/E10_universality.{{png,svg}}; Springer: {first.get('published_finding')}")


E10 = TableSpec(
    id="E10", experiment="E10", title="E10 universality: the standard classifier on R_eps, each source's clean accuracy (%)",
    legend="paper: Table 5's standard row (Fig. 3); Fig. 4 prints no numbers",
    columns=(Column("source", "source", "text"), Column("origin", "from", "text"),
             Column("standard_on_R", "standard on R_eps", "pct", interval=True, paper=at("published_standard_on_R")),
             Column("source_clean", "source clean", "pct", interval=True)),
    settings=_e10_settings,
)


def _e11_columns(rows: list[Row]) -> tuple[Column, ...]:
    victims = next((row["victims"] for row in rows if row.get("victims")), [])
    return tuple(Column(f"{mode}:{v}", f"{label} {v.replace('white_box', 'source')}", "pct", interval=True)
                 for mode, label in (("untargeted", "error"), ("targeted", "hit")) for v in victims)


def _e11_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the slight_transfer stage has not run yet (it needs the robustified stage's sources and E8's backbones)"
    return (f"L2 PGD eps {first.get('attack_eps'):g}, {first.get('steps')} steps of {first.get('step_size'):g}, on "
            f"{first.get('n_test')} test images (Wilson 95% intervals); targets: a uniformly drawn other class; "
            f"curves: data/figures/E11_transfer.{{png,svg}}; Springer: {first.get('published_finding')}")


E11 = TableSpec(
    id="E11", experiment="E11", title="E11 transfer from slightly robust sources: error / target hit rate (%)",
    legend=("rows: the eps-robust source attacked; error: untargeted error rate on the true label; hit: targeted "
            "attacks' target hit rate; source: white box; SL-<arch>: E8's SL backbones (other architectures); "
            "E4-natural: E4's first natural-data classifier (the sources' architecture, trained apart)"),
    columns=(Column("source", "source", "text"),),
    more_columns=_e11_columns, settings=_e11_settings,
)




def _e12_settings(rows: list[Row]) -> str:
    first = next((row for row in rows if row.get("missing") is False and row.get("source_hit") is not None), None)
    if first is None:
        return "the learnability stage has not run yet (it needs construct@D_det, E4's natural and D_det classifiers, E8's backbones)"
    projection = first.get("pattern_projection")
    pattern = (f"; {100 * first['pattern_added']:.1f}% of them carry the target's planted pattern"
               + (f" (L2 projection {projection:.2f})" if projection is not None else "")
               if first.get("pattern_added") is not None else "")
    return (f"the standard source's targeted (y+1) examples of {first.get('n')} test images, made as D_det's; it hits "
            f"the target on {100 * first['source_hit']:.1f}%{pattern}; chance {100 * first['chance']:.1f}%")


E12 = TableSpec(
    id="E12", experiment="E12", title="E12 learnability vs transferability (Ilyas Fig. 3): per architecture",
    legend=("D_det acc: natural test accuracy (%) of the architecture trained on D_det (E4's seeds for model.arch, "
            "mean ±95% interval); transfer: share (%) of the source's successful examples its naturally trained model "
            "labels as the target; natural / no pattern: that model's accuracy on the natural test set and (synthetic "
            "data) on the same images without the planted pattern (a drop: it reads the pattern); the E15 row: the "
            "bugs-only set's model and its examples' transfer to a held-out model; figure: "
            "data/figures/E12_learnability.{png,svg}; paper: accuracy rises with transfer"),
    columns=(
        Column("arch", "architecture", "text"), Column("det_acc", "D_det acc", "pct", interval=True),
        Column("transfer_success", "transfer", "pct", interval=True), Column("natural_acc", "natural", "pct"),
        Column("pattern_free_acc", "no pattern", "pct", optional=True), Column("det_from", "D_det model", "text"),
        Column("natural_from", "natural model", "text"),
    ),
    settings=_e12_settings,
)


def _e15_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the bugs_only stage has not run yet (it needs the standard source and E4's natural classifiers)"
    attack = first.get("attack") or {}
    return (f"targeted (y+1) L2 PGD, eps {attack.get('eps')}, {attack.get('steps')} steps of {attack.get('step_size')}, "
            f"on {first.get('n')} training images, keeping {first.get('references')} E4 natural classifiers on the true "
            f"label; chance {100 * first['chance']:.1f}%")


E15 = TableSpec(
    id="E15", experiment="E15", title="E15 bugs-only examples (Nakkiran): non-transferable, and what a model learns from them",
    legend=("joint: share (%) where the source says y+1 and every reference y; source / references / held-out: share "
            "labelled y+1 by the source, the references (mean) and a held-out natural model (transfer); pattern added: "
            "the planted probe on what the attack added reads y+1 (D_det's attack: most); pattern L2: how much of the y+1 "
            "pattern it added (L2 projection; E12's settings give D_det's attack's); shape kept: the shape still "
            "reads y; clean: natural test accuracy (%) of a model trained on the set relabelled y+1; y+1: share of "
            "natural test images it labels y+1 (what robust features would give); expected: the planted truth"),
    columns=(
        Column("name", "set", "text"), Column("joint_success", "joint", "pct"), Column("source_hit", "source", "pct"),
        Column("reference_hit", "references", "pct"), Column("transfer_success", "held-out", "pct"),
        Column("pattern_added", "pattern added", "pct", optional=True),
        Column("pattern_projection", "pattern L2", "ratio", optional=True),
        Column("shape_kept", "shape kept", "pct", optional=True), Column("clean_acc", "clean", "pct"),
        Column("next_class_rate", "y+1", "pct"), Column("expected", "expected", "text", optional=True),
    ),
    settings=_e15_settings,
)


def _e17_columns(rows: list[Row]) -> tuple[Column, ...]:
    models = next((row["models"] for row in rows if row.get("models")), [])
    return (*(Column(f"ratio_{m}", m, "ratio", value=at("ratio", m)) for m in models),
            Column("robust_lower", "robust lower", "text",
                   value=lambda row: None if row.get("robust_lower") is None else ("yes" if row["robust_lower"] else "NO")))


def _e17_settings(rows: list[Row]) -> str:
    first = _first_done(rows)
    if first is None:
        return "the layers stage has not run yet (it needs E1's source models)"
    return (f"r = E max over ||d||_2 <= {first.get('eps')} of ||f(x+d) - f(x)|| / E ||f(x) - f(x')||, the max by "
            f"{first.get('steps')} L2 PGD steps, on {first.get('n')} test images, x' another of them")


E17 = TableSpec(
    id="E17", experiment="E17", title="E17 layer robustness (Nakano): ratio r per block",
    legend=("one row per block of the E1 sources, in forward order (backbone.i: the output after the backbone's i-th "
            "child; head: the logits); lower r = a more robust layer; robust lower: the second model's r is below the "
            "first's, as the planted truth expects at every block; figure: data/figures/E17_layers.{png,svg}"),
    columns=(Column("block", "block", "text"),),
    more_columns=_e17_columns, settings=_e17_settings,
)

#: Every known table, in the order the report and the app show them.
TABLES: tuple[TableSpec, ...] = (E1, E4, CURVES, E5, E6A, E6B, E7, E8, E13, E14, E16, E18, E18_WORLD1, E9, E9_LEAK,
                                E10, E11, E12, E15, E17)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _guess_kind(key: str, values: list[Any]) -> Kind:
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if key.startswith("published_"):
        return "paper"
    if not numbers and any(isinstance(v, str) for v in values):
        return "text"
    fraction = all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in numbers)
    if numbers and fraction and re.search(r"(acc|agreement|rate)", key):
        return "pct"
    return "num"


def derived_spec(experiment: str, rows: list[Row]) -> TableSpec:
    """A table for an experiment without a spec: its rows' scalar keys, the name first, each ``published_<k>``
    right after ``<k>`` (the paper's figure beside ours)."""
    keys: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in keys and key not in ("missing", "published_source") and _is_scalar(value):
                keys.append(key)
    name = next((k for k in NAME_KEYS if k in keys), None)
    ordered = [name] if name else []
    for key in keys:
        if key == name or key.startswith("published_"):
            continue
        ordered.append(key)
        if f"published_{key}" in keys:
            ordered.append(f"published_{key}")
    ordered += [k for k in keys if k.startswith("published_") and k not in ordered]
    columns = tuple(Column(k, k.removesuffix("_acc").replace("_", " "), _guess_kind(k, [r.get(k) for r in rows]))
                    for k in ordered)
    return TableSpec(id=experiment, experiment=experiment, title=experiment, legend="", columns=columns)


@dataclass(frozen=True)
class LaidOut:
    """One table ready to draw: its spec, its rows, the columns they fill and its caption."""

    spec: TableSpec
    rows: list[Row]
    columns: list[Column]
    caption: str

    def cells(self, row: Row) -> list[str]:
        """The row's cells (see :func:`cells`)."""
        return cells(self.columns, row)


def _sources(rows: list[Row]) -> str:
    names = sorted({r["published_source"] for r in rows if r.get("published_source")})
    return f"Published: {'; '.join(names)}" if names else ""


def lay_out(spec: TableSpec, rows: list[Row]) -> LaidOut:
    """``spec`` filled with ``rows``: optional columns no row has are left out; the caption is the settings the
    rows were measured with, the legend and the papers the published figures come from."""
    every = spec.columns + (spec.more_columns(rows) if spec.more_columns else ())
    columns = [c for c in every if not c.optional or any(c.get(row) is not None for row in rows)]
    parts = [spec.settings(rows) if spec.settings else "", spec.legend, _sources(rows)]
    return LaidOut(spec, rows, columns, " ".join(f"{part}." for part in parts if part))


def report_tables(report: dict[str, list[Row]]) -> list[LaidOut]:
    """Every table of ``report`` (as :func:`advtui.report.tables.collect` returns it): the known tables in
    their order, then any other experiment with columns derived from its rows."""
    known = {spec.experiment for spec in TABLES}
    tables = [lay_out(spec, [row for row in report[spec.experiment] if spec.keep(row)])
              for spec in TABLES if spec.experiment in report]
    tables += [lay_out(derived_spec(experiment, report[experiment]), report[experiment])
               for experiment in sorted(report) if experiment not in known]
    return tables
