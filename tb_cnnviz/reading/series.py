"""Series over steps: one filter statistic of a layer, one filter's statistics, a layer's health,
the trust figures and faithfulness. Plain functions of {step: tensor} dicts, as both readers
(`reader.Run` and the plugin) hold them."""

import numpy as np

from tb_cnnviz.storage.metadata import FormatError
from tb_cnnviz.storage.run_header import RunHeader
from tb_cnnviz.storage.tensors import METRIC_NAMES, STAT_NAMES, metric_means

# A filter is dead at a step when it is <= 0 on every probe: its dead_fraction reads 1 within
# the 8-bit statistics' error (a filter dead on N - 1 of N <= 256 probes reads at most
# 0.9961 + 1/508 = 0.9981). The tab takes this threshold from the runs route.
DEAD_AT = 1 - 1e-4


def filter_drift(run: RunHeader, path: str, steps: list, stats: dict, stat: str) -> tuple:
    """(steps, (filters, steps) matrix) of one filter statistic of the conv layer at `path`
    over the `steps` of complete events; `stats` is {step: STATS tensor}. Steps without
    statistics are left out; with none the matrix has no columns. A layer whose filter count
    changed between events (a model widened and run again into the logdir) has as many rows as
    its widest step, NaN where a step had fewer (a layer removed since: its widest step's, with
    statistics at the steps it had). Raises KeyError for an unknown statistic."""
    if stat not in STAT_NAMES:
        raise KeyError(f"unknown stat {stat!r}; choose one of {STAT_NAMES}")
    steps = [step for step in steps if step in stats]
    rows = [_checked_stats(stats[step], step)[STAT_NAMES.index(stat)] for step in steps]
    matrix = np.full((widest(run, path, [stats[step] for step in steps]), len(steps)), np.nan, np.float32)
    for column, row in enumerate(rows):
        matrix[:len(row), column] = row
    return np.asarray(steps, np.int64), matrix


def widest(run: RunHeader, path: str, stats) -> int:
    """How many filters conv layer `path` has at its widest: in the run header (if it names the
    layer: a layer removed since has only statistics) or in any of its `stats` tensors."""
    counts = [values.shape[1] for values in stats if np.ndim(values) == 2]
    return max([run.filters(path) if path in run.conv_layers else 0, *counts])


def metric_series(steps: list, metrics: dict) -> tuple:
    """(steps, {name: mean over the probes per step, NaN where not computed}) over the `steps`
    of complete events that have METRICS tensors ({step: tensor})."""
    steps = [step for step in steps if step in metrics]
    rows = np.stack([metric_means(metrics[step]) for step in steps]) if steps else \
        np.empty((0, len(METRIC_NAMES)), np.float32)
    return steps, {name: rows[:, i] for i, name in enumerate(METRIC_NAMES)}


def scalar_series(steps: list, values: dict) -> tuple:
    """(steps, values) of a scalar per step over the `steps` of complete events that have one."""
    steps = [step for step in steps if step in values]
    return steps, [float(values[step]) for step in steps]


def filter_stats(steps: list, stats: dict, channel: int) -> tuple:
    """(steps, (len(STAT_NAMES), steps) matrix) of every statistic of one filter over the
    `steps` of complete events that have statistics ({step: STATS tensor})."""
    steps = [step for step in steps if step in stats]
    matrix = np.full((len(STAT_NAMES), len(steps)), np.nan, np.float32)  # NaN where a step had fewer filters
    for i, step in enumerate(steps):
        values = _checked_stats(stats[step], step)
        if channel < values.shape[1]:
            matrix[:, i] = values[:, channel]
    return np.asarray(steps, np.int64), matrix


def _checked_stats(values: np.ndarray, step) -> np.ndarray:
    if values.ndim != 2 or values.shape[0] != len(STAT_NAMES):
        raise FormatError(f"cnnviz statistics at step {step} of shape {values.shape}, not ({len(STAT_NAMES)}, filters)")
    return values


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return np.where(finite, values, 0).sum(axis=-1) / finite.sum(axis=-1)


def layer_summary(steps: list, stats: dict) -> dict:
    """Per-step health of one conv layer from its {step: STATS tensor} at the `steps` of complete
    events: "dead_fraction" (share of its filters dead on every probe, `DEAD_AT`), "drift" and
    "change" (mean cosine distance of its filters to the first event and to the previous one),
    "norm_trend" (mean filter norm over that at the layer's first step with statistics); NaN
    where a step has none."""
    columns = np.full((len(STAT_NAMES), len(steps)), np.nan, np.float32)
    dead = np.full(len(steps), np.nan, np.float32)
    for i, step in enumerate(steps):
        if step in stats:
            values = _checked_stats(stats[step], step)
            columns[:, i] = _nanmean_rows(values)
            dead_row = values[STAT_NAMES.index("dead_fraction")]
            dead[i] = np.mean(np.nan_to_num(dead_row, nan=0.0) >= DEAD_AT)
    norms = columns[STAT_NAMES.index("norm")]
    first = norms[np.isfinite(norms)][:1]
    with np.errstate(invalid="ignore", divide="ignore"):
        trend = norms / first[0] if len(first) and first[0] > 0 else np.full_like(norms, np.nan)
    return {"dead_fraction": dead, "drift": columns[STAT_NAMES.index("cos_to_first")],
            "change": columns[STAT_NAMES.index("cos_to_prev")], "norm_trend": trend}


