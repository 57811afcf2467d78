"""PPO's clipped surrogate as a drift (Schulman et al., 2017; written as mirror learning by Kuba et al., 2022).

``D(r, A) = relu((r − clip(r, 1 − ε, 1 + ε)) · A)``, so that ``r·A − D = min(r·A, clip(r)·A)``.

With ``clip_end`` the clip range is a hand-designed schedule over the lifetime, ε(n/N) = ε + (ε_end − ε)·n/N
(linear from ``clip_eps`` at the start to ``clip_end`` at the end): the time-varying member the temporally-aware
objectives are measured against.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.errors import ConfigError
from metarl.objectives.base import Objective, drift_objective


def ppo_drift(ratio, advantages, clip_eps: float):
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantages)


def make_ppo(clip_eps: float = 0.2, clip_end: float | None = None) -> Objective:
    if not 0.0 < clip_eps < 1.0:
        raise ConfigError(f"objective_kwargs.clip_eps: must be in (0, 1), got {clip_eps}")
    if clip_end is not None and not 0.0 < clip_end < 1.0:
        raise ConfigError(f"objective_kwargs.clip_end: must be in (0, 1) (or null: a constant clip), got {clip_end}")

    def drift(meta_params, ratio, advantages, context):
        del meta_params
        if clip_end is None:
            return ppo_drift(ratio, advantages, clip_eps)
        return ppo_drift(ratio, advantages, clip_eps + (clip_end - clip_eps) * context.progress)

    return drift_objective("ppo", drift)
