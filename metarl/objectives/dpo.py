"""DPO: the closed-form drift distilled from LPO (Lu et al., NeurIPS 2022).

For A ≥ 0: ``D = relu((r − 1)·A − α·tanh((r − 1)·A / α))``;
for A < 0: ``D = relu(log(r)·A − β·tanh(log(r)·A / β))``. Defaults α = 2, β = 0.6.
Both branches vanish with zero gradient at r = 1 (x − c·tanh(x/c) is O(x³)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.errors import ConfigError
from metarl.objectives.base import Objective, drift_objective


def dpo_drift(ratio, advantages, alpha: float, beta: float):
    positive = (ratio - 1.0) * advantages
    negative = jnp.log(ratio) * advantages
    return jnp.where(
        advantages >= 0,
        jax.nn.relu(positive - alpha * jnp.tanh(positive / alpha)),
        jax.nn.relu(negative - beta * jnp.tanh(negative / beta)),
    )


def make_dpo(alpha: float = 2.0, beta: float = 0.6) -> Objective:
    for field_name, value in (("alpha", alpha), ("beta", beta)):
        if not value > 0:
            raise ConfigError(f"objective_kwargs.{field_name}: must be > 0, got {value}")

    def drift(meta_params, ratio, advantages, context):
        del meta_params, context
        return dpo_drift(ratio, advantages, alpha, beta)

    return drift_objective("dpo", drift)
