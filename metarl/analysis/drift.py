"""What a learned drift does over the lifetime: D(r, A) on a fixed grid at several n/N, and one number for how
much it changes between the start and the end of the lifetime.

The *temporal variation* of a drift objective is

    mean over the grid of |D(r, A, n/N = 1) − D(r, A, n/N = 0)|  /  mean over the grid and the progress values of |D|,

0 for a drift that ignores n/N (LPO, PPO), 2 for D = (n/N)·g(r, A) with g ≥ 0, and large when a drift that is
small on average switches on or off over the lifetime. It is a measurement of "it learned a schedule"; the grid is
fixed (:data:`RATIOS` x :data:`ADVANTAGES`), so numbers of different files compare.
"""

from __future__ import annotations

import numpy as np

RATIOS = np.linspace(0.5, 1.5, 41)
ADVANTAGES = np.linspace(-2.0, 2.0, 21)
PROGRESS = (0.0, 0.25, 0.5, 0.75, 1.0)


def drift_grid(objective, params, progress=PROGRESS, num_updates: int = 100, ratios=RATIOS, advantages=ADVANTAGES):
    """D at every (n/N, A, r): an array of shape (len(progress), len(advantages), len(ratios)).

    n/N = 1 is evaluated as update N of N (one past the last update a lifetime runs), the end point of the
    feature's range."""
    import jax.numpy as jnp

    from metarl.types import LifetimeContext

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
    from metarl import objectives

    objective, params, _ = objectives.load(path)
    grid = drift_grid(objective, params, PROGRESS, num_updates)
    return {"file": str(path), "objective": objective.name, "mean_abs_drift": float(np.mean(np.abs(grid))),
            "temporal_variation": temporal_variation(objective, params, num_updates), "num_updates": num_updates}
