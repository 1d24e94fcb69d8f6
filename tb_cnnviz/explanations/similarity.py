"""Spearman's rank correlation of maps, ties sharing their average rank: how alike two maps are
in what they rank first, whatever their scales (the sanity check's measure, Adebayo et al. 2018)."""

import numpy as np


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """(N, M) ranks of each row's values, ties sharing their average rank."""
    rows, size = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    ordered = np.take_along_axis(values, order, axis=1)
    starts = np.ones((rows, size), bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = np.cumsum(starts.ravel()) - 1  # each run of equal values, numbered over all rows
    position = np.tile(np.arange(size, dtype=np.float64), rows)
    average = np.bincount(group, position) / np.bincount(group)
    ranks = np.empty((rows, size))
    np.put_along_axis(ranks, order, average[group].reshape(rows, size), axis=1)
    return ranks


def rank_correlations(a, b) -> np.ndarray:
    """(N,) Spearman rank correlation of a[i] and b[i], each flattened: ties take their average
    rank, and a constant item (either side) correlates 0 with anything."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim == 0:
        raise ValueError(f"rank_correlations needs two arrays of one shape (N, ...), got {a.shape} and {b.shape}")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    constant = np.all(a == a[:, :1], axis=1) | np.all(b == b[:, :1], axis=1)
    ranks_a, ranks_b = _average_ranks(a), _average_ranks(b)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.sum(ranks_a ** 2, axis=1) * np.sum(ranks_b ** 2, axis=1))
    correlation = np.sum(ranks_a * ranks_b, axis=1) / np.where(constant, 1.0, norms)
    return np.where(constant, 0.0, np.clip(correlation, -1.0, 1.0))


def rank_correlation(a, b) -> float:
    """Spearman rank correlation of two arrays of one size, flattened (`rank_correlations`)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.size != b.size:
        raise ValueError(f"rank_correlation needs two arrays of one size, got {a.size} and {b.size} values")
    return float(rank_correlations(a.reshape(1, -1), b.reshape(1, -1))[0])
