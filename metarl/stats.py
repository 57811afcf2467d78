"""Aggregate statistics over seeds: interquartile mean and stratified-free percentile bootstrap CIs.

Computed here (~30 lines) because rliable 1.2 does not import with pandas 3.
"""

from __future__ import annotations

import numpy as np


def iqm_weights(n: int) -> np.ndarray:
    """The weight of each of ``n`` sorted values in their IQM: 0 in the lowest and highest quarter, 1 in the middle
    half, fractional where a quarter boundary cuts a value (n = 4: 0, 1, 1, 0)."""
    positions = (np.arange(n) + 0.5) / n  # each sample's quantile mid-point
    return np.clip(np.minimum(positions - 0.25, 0.75 - positions) * n + 0.5, 0.0, 1.0)


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean of the middle 50 % (the lowest and highest quarter trimmed; fractional trimming by weights)."""
    values = np.sort(np.asarray(values, np.float64), axis=axis)
    n = values.shape[axis]
    weights = iqm_weights(n)
    shape = [1] * values.ndim
    shape[axis] = n
    weights = weights.reshape(shape)
    return np.sum(values * weights, axis=axis) / np.sum(weights)


def mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """The plain mean: for a success-like score (most seeds at 0 or at the top), where fewer than a quarter of the seeds
    succeeding leaves the IQM at 0 on both sides of a comparison whatever their success rates."""
    return np.mean(np.asarray(values, np.float64), axis=axis)


STATISTICS = {"iqm": iqm, "mean": mean}  # the aggregates over seeds a verdict may compare (iqm: the field's default)
STATISTIC_LABELS = {"iqm": "IQM", "mean": "mean"}  # as tables and verdict lines print them


def bootstrap_ci(values: np.ndarray, statistic=iqm, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Percentile bootstrap CI of ``statistic`` over the last axis (the seeds)."""
    values = np.asarray(values, np.float64)
    rng = np.random.default_rng(seed)
    n = values.shape[-1]
    idx = rng.integers(0, n, size=(num_resamples, n))
    resampled = statistic(values[..., idx], axis=-1)  # (..., num_resamples)
    alpha = (1 - confidence) / 2
    return np.quantile(resampled, alpha, axis=-1), np.quantile(resampled, 1 - alpha, axis=-1)
