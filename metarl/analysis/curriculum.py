"""What a learned curriculum does over the lifetime: the logit its scorer gives a level (the residual it adds to its
base sampler's log-probability, where it has one) as a function of the level's running success p and of training
progress n/N, at fixed other features (the same grid for every file, so files compare).

The features besides p and n/N are held at a level that has been seen, drawn at this update (staleness 0) and whose
rollouts gave mean |Â| ``abs_advantage``; difficulty at the values in ``DIFFICULTIES``. On ``Maze-pocket`` a pocket
start and the farthest solvable starts both have difficulty 1: what tells them apart is p (0 on the pocket for good,
rising on a far start once the agent learns it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl.curricula.learned import feature_rows, scorer

PROGRESS_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)
SUCCESS_POINTS = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
DIFFICULTIES = (0.0, 1.0)
ABS_ADVANTAGE = 0.5


def held_features(abs_advantage: float = ABS_ADVANTAGE, difficulties=DIFFICULTIES) -> str:
    """What :func:`scorer_grid` holds fixed, in words (stored beside the grid)."""
    return f"seen, staleness 0, mean |A| {abs_advantage}; difficulty {', '.join(str(d) for d in difficulties)}"


def scorer_grid(params, kwargs: dict[str, Any], abs_advantage: float = ABS_ADVANTAGE, progress_points=PROGRESS_POINTS,
                success_points=SUCCESS_POINTS, difficulties=DIFFICULTIES) -> list[dict[str, Any]]:
    """Per difficulty and n/N: the scorer's logit at each running success in ``success_points`` (a row each), and
    the spread over n/N (max − min of the logit over ``progress_points``, at each p) — 0 for a scorer without n/N."""
    use_progress = bool(kwargs.get("progress", True))
    rows = []
    for difficulty in difficulties:
        grid = []
        for progress in progress_points:
            ones = np.ones(len(success_points))
            features = feature_rows(difficulty * ones, np.asarray(success_points), abs_advantage * ones, ones, 0 * ones,
                                    progress, use_progress)
            grid.append(np.asarray(scorer(params, features), np.float64))
        grid = np.stack(grid)  # (progress, success)
        for i, progress in enumerate(progress_points):
            rows.append({"difficulty": float(difficulty), "progress": float(progress),
                         "logit_at_success": {str(p): round(float(v), 4) for p, v in zip(success_points, grid[i], strict=True)}})
        rows.append({"difficulty": float(difficulty), "spread_over_progress": {
            str(p): round(float(v), 4) for p, v in zip(success_points, grid.max(0) - grid.min(0), strict=True)}})
    return rows
