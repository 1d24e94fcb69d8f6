"""Tensor summaries: filter statistics (8-bit rows, deflated), trust figures and faithfulness
(float32)."""

import zlib

import numpy as np

from tb_cnnviz.storage import codec
from tb_cnnviz.storage.metadata import FormatError

# Rows of a STATS tensor, shape (len(STAT_NAMES), filters).
STAT_NAMES = ("norm", "cos_to_first", "cos_to_prev", "mean_activation", "dead_fraction")
# Rows of a METRICS tensor, shape (len(METRIC_NAMES), probes), NaN where an event did not
# compute one (`tb_cnnviz.explanations.trust` defines them).
METRIC_NAMES = ("faithfulness", "deletion_auc", "deletion_auc_random", "insertion_auc", "insertion_auc_random",
                "sanity_rank_corr", "pointing_game", "energy_in_mask")

# A STATS tensor (format 2) is a uint8 zlib stream of len(STAT_NAMES) 8-bit rows: each row its
# float32 [lo, hi] range (8 bytes, little-endian), then one level per filter: 0-254 over the
# range (a value is within (hi - lo) / 508 of the logged one), STATS_NONFINITE for NaN or
# infinite (read back as NaN). Deflate saves about a third, half of that on dead_fraction.
STATS_RANGE_BYTES = 8
STATS_NONFINITE = 255


def pack_tensor(values) -> np.ndarray:
    return np.asarray(values, np.float32)


def pack_stats(stats: np.ndarray) -> np.ndarray:
    """The STATS tensor of float (len(STAT_NAMES), filters) statistics: each row quantised over
    its own finite range, deflated."""
    stats = np.asarray(stats, np.float32)
    finite = np.isfinite(stats)
    lo, hi = codec.finite_range(stats, finite)
    span = np.where(hi > lo, hi - lo, np.float32(1))[:, None]
    with np.errstate(invalid="ignore"):
        levels = np.where(finite, np.round((stats - lo[:, None]) / span * 254), STATS_NONFINITE)
    ranges = np.stack([lo, hi], axis=1).astype("<f4").view(np.uint8)
    rows = np.concatenate([ranges, levels.astype(np.uint8)], axis=1)
    return np.frombuffer(zlib.compress(rows.tobytes(), 1), np.uint8)


def _unpack_stats(values: np.ndarray, where: str) -> np.ndarray:
    try:
        rows = np.frombuffer(zlib.decompress(values.tobytes()), np.uint8) if values.ndim == 1 else None
    except zlib.error:
        rows = None
    if rows is None or rows.size % len(STAT_NAMES) or rows.size // len(STAT_NAMES) < STATS_RANGE_BYTES:
        raise FormatError(f"{where} holds 8-bit data that is not cnnviz statistics")
    values = rows.reshape(len(STAT_NAMES), -1)
    lo, hi = np.ascontiguousarray(values[:, :STATS_RANGE_BYTES]).view("<f4").T
    levels = values[:, STATS_RANGE_BYTES:]
    stats = lo[:, None] + levels.astype(np.float32) * ((hi - lo) / np.float32(254))[:, None]
    stats[levels == STATS_NONFINITE] = np.nan
    return stats.astype(np.float32)


def unpack_tensor(values: np.ndarray, where: str) -> np.ndarray:
    """A STATS, FAITHFULNESS or METRICS tensor as read (8-bit statistics as float32); FormatError if
    another writer put other data there."""
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _unpack_stats(values, where)
    if not np.issubdtype(values.dtype, np.number):
        raise FormatError(f"{where} holds non-numeric data: not written by cnnviz")
    return values


def stats_by_name(values: np.ndarray) -> dict:
    """{stat name: (filters,)} of a STATS tensor."""
    return dict(zip(STAT_NAMES, values))

def metric_means(values: np.ndarray) -> np.ndarray:
    """(len(METRIC_NAMES),) means over probes of one METRICS tensor, ignoring NaN (NaN where
    every probe's is)."""
    if values.ndim != 2 or values.shape[0] != len(METRIC_NAMES):
        raise FormatError(f"cnnviz metrics of shape {values.shape}, not ({len(METRIC_NAMES)}, probes)")
    finite = np.isfinite(values)
    with np.errstate(invalid="ignore"):
        return (np.where(finite, values, 0).sum(axis=1) / finite.sum(axis=1)).astype(np.float32)


