"""What a learned drift does over the lifetime: D(r, A) on a fixed grid at several n/N, and one number for how
much it changes between the start and the end of the lifetime.

The *temporal variation* of a drift objective is

    mean over the grid of |D(r, A, n/N = 1) − D(r, A, n/N = 0)|  /  mean over the grid and the progress values of |D|,

0 for a drift that ignores n/N (LPO, PPO), 2 for D = (n/N)·g(r, A) with g ≥ 0, and large when a drift that is
small on average switches on or off over the lifetime. It is a measurement of "it learned a schedule"; the grid is
fixed (:data:`RATIOS` x :data:`ADVANTAGES`), so numbers of different files compare.

The *schedule profile* says what kind of schedule it is, in the terms of the temporally-aware paper (Jackson, Lu et
al., 2024: permissive early, strict late, and "rollback" — an objective that pushes the ratio back towards 1 once it
has moved too far): per n/N, the mean drift where A > 0 and where A < 0 (how strictly each side is held), and the
share of the grid where the objective's slope in r, A − ∂D/∂r, has the opposite sign of A, by more than 1 % of |A|
(rollback: the update moves r back; PPO's clip only stops it, slope 0, and rolls nothing back).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from metarl import objectives
from metarl.types import LifetimeContext

RATIOS = np.linspace(0.5, 1.5, 41)
ADVANTAGES = np.linspace(-2.0, 2.0, 21)
PROGRESS = (0.0, 0.25, 0.5, 0.75, 1.0)
ROLLBACK_TOLERANCE = 0.01


def drift_grid(objective, params, progress=PROGRESS, num_updates: int = 100, ratios=RATIOS, advantages=ADVANTAGES):
    """D at every (n/N, A, r): an array of shape (len(progress), len(advantages), len(ratios)).

    n/N = 1 is evaluated as update N of N (one past the last update a lifetime runs), the end point of the
    feature's range."""
    if objective.drift is None:
        raise ValueError(f"objective {objective.name!r} has no drift (a target objective); see plot_targets")
    r, a = jnp.meshgrid(jnp.asarray(ratios, jnp.float32), jnp.asarray(advantages, jnp.float32))
    rows = [objective.drift(params, r, a, LifetimeContext(jnp.float32(p * num_updates), jnp.float32(num_updates)))
            for p in progress]
    return np.asarray(jnp.stack(rows))


def temporal_variation(objective, params, num_updates: int = 100) -> float:
    """The module's number: mean |D(·, 1) − D(·, 0)| relative to the mean |D| (0 where D is zero everywhere)."""
    grid = drift_grid(objective, params, PROGRESS, num_updates)
    scale = float(np.mean(np.abs(grid)))
    change = float(np.mean(np.abs(grid[-1] - grid[0])))
    return change / scale if scale > 0 else 0.0


def describe_file(path, num_updates: int = 100) -> dict:
    """The numbers of one learned objective file: its objective, mean |D| and temporal variation."""
    objective, params, _ = objectives.load(path)
    grid = drift_grid(objective, params, PROGRESS, num_updates)
    described = {"file": str(path), "objective": objective.name, "mean_abs_drift": float(np.mean(np.abs(grid))),
                 "temporal_variation": temporal_variation(objective, params, num_updates), "num_updates": num_updates}
    if objective.step_scale is not None:  # the learned step-size schedule: the factor on the lr at each n/N of PROGRESS
        described["step_scale"] = [float(objective.step_scale(params, LifetimeContext(jnp.float32(p * num_updates),
                                                                                     jnp.float32(num_updates))))
                                   for p in PROGRESS]
    return described


def schedule_profile(objective, params, num_updates: int = 100) -> dict:
    """Per n/N in :data:`PROGRESS`: mean D where A > 0 and where A < 0, and the rollback share (module docstring).
    The slope ∂D/∂r is a central difference on the ratio grid (its interior points)."""
    grid = drift_grid(objective, params, PROGRESS, num_updates)
    advantages = ADVANTAGES[:, None]
    step = RATIOS[1] - RATIOS[0]
    slope = advantages - (grid[:, :, 2:] - grid[:, :, :-2]) / (2.0 * step)  # d(rA - D)/dr at the interior ratios
    # Rollback: the slope against A by more than 1 % of the surrogate's own |A| (float rounding at a clip's flat part
    # is not a push back).
    reversed_sign = (slope * np.sign(advantages) < -ROLLBACK_TOLERANCE * np.abs(advantages)) & (advantages != 0)
    moving = np.broadcast_to(advantages != 0, reversed_sign.shape[1:])
    return {"progress": list(PROGRESS),
            "penalty_positive_advantage": [float(g[ADVANTAGES > 0].mean()) for g in grid],
            "penalty_negative_advantage": [float(g[ADVANTAGES < 0].mean()) for g in grid],
            "rollback_share": [float(r[moving].mean()) for r in reversed_sign]}
