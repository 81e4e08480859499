"""Means and 95% intervals over repeated runs of one measurement: the one home of this arithmetic.

E4 trains ``retrain.seeds`` models per training set (and the E4 curves attack each of them); a single run is
one draw, and only an interval over runs says whether two numbers differ. The interval is Student's t
interval of the mean, ``mean ± t(0.975; n-1) · s / sqrt(n)`` with ``s`` the sample standard deviation
(denominator n - 1): where the mean would fall if the seeds were drawn again, assuming roughly normal
per-seed values. With 3 seeds t is 4.30, so the interval is wide; that width is what 3 runs can tell. One run
has no interval (None). Values are not clamped to [0, 1]: an accuracy's interval may cross the bounds when
the spread is large, which says the spread is large.

No torch; the quantile comes from ``scipy.special`` (a fraction of ``scipy.stats``'s import time, which every
stage process would pay).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from scipy.special import stdtrit

#: The coverage of every interval the pipeline reports.
CONFIDENCE = 0.95


def interval95(values: Sequence[float]) -> list[float] | None:
    """Student's t 95% interval ``[lo, hi]`` of the mean of ``values`` (a list, as metrics files store it); None
    for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    half = float(stdtrit(n - 1, 0.5 + CONFIDENCE / 2)) * statistics.stdev(values) / math.sqrt(n)
    return [mean - half, mean + half]


def _is_real(value: Any) -> bool:
    # counts (n, n_train) are ints and must agree between runs; measurements are floats
    return isinstance(value, float)


def _mean_of(key: str, values: list[Any]) -> Any:
    """The mean of one key's per-run values: floats averaged, mappings key by key, anything else must agree."""
    if all(_is_real(v) for v in values):
        return statistics.fmean(values)
    if all(isinstance(v, dict) for v in values) and all(v.keys() == values[0].keys() for v in values):
        return {k: _mean_of(f"{key}.{k}", [v[k] for v in values]) for k in values[0]}
    if any(v != values[0] for v in values[1:]):
        raise ValueError(f"{key}: differs between runs ({values[0]!r} vs {values[1:]!r}); only measurements may differ")
    return values[0]


def summarise_runs(rows: Sequence[Mapping[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """One metrics row from the rows of several runs (one per seed, in ``seeds`` order).

    Every float (a measurement) becomes its mean over the runs, nested mappings key by key (per-attack
    accuracies), so old readers see the keys they know; anything else (counts, settings) must be the same in
    every run and is kept. Added: ``seeds``, ``per_seed`` (top-level float key -> the per-run values) and
    ``ci95`` (the same keys -> [lo, hi] by :func:`interval95`, or None with one run).
    """
    if not rows or len(rows) != len(seeds):
        raise ValueError(f"seeds: {len(seeds)} seeds for {len(rows)} runs; pass one seed per run")
    keys = list(rows[0])
    if any(list(row) != keys for row in rows[1:]):
        raise ValueError("runs: the runs' rows have different keys; every run must measure the same things")
    summary = {key: _mean_of(key, [row[key] for row in rows]) for key in keys}
    per_seed = {key: [row[key] for row in rows] for key in keys if all(_is_real(row[key]) for row in rows)}
    ci95 = {key: interval95(values) for key, values in per_seed.items()}
    return {**summary, "seeds": list(seeds), "per_seed": per_seed, "ci95": ci95}
