"""PPO's clipped surrogate as a drift (Schulman et al., 2017; written as mirror learning by Kuba et al., 2022).

``D(r, A) = relu((r − clip(r, 1 − ε, 1 + ε)) · A)``, so that ``r·A − D = min(r·A, clip(r)·A)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.errors import ConfigError
from metarl.objectives.base import Objective, drift_objective


def ppo_drift(ratio, advantages, clip_eps: float):
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantages)


def make_ppo(clip_eps: float = 0.2) -> Objective:
    if not 0.0 < clip_eps < 1.0:
        raise ConfigError(f"objective_kwargs.clip_eps: must be in (0, 1), got {clip_eps}")

    def drift(meta_params, ratio, advantages, context):
        del meta_params, context
        return ppo_drift(ratio, advantages, clip_eps)

    return drift_objective("ppo", drift)
