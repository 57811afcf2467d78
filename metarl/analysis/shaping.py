"""What a learned shaping does over the lifetime: its heuristic weight and bonus at training progress n/N, on the
transitions of a fixed random-policy rollout (the same for every file, so files compare)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.envs.spec import EnvSpec
from metarl.shaping.base import ShapingInputs
from metarl.shaping.heuristics import Heuristic
from metarl.shaping.shapings import learned_weight_and_bonus

PROGRESS_POINTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def random_rollout(spec: EnvSpec, heuristic: Heuristic, steps: int = 1024, seed: int = 0) -> ShapingInputs:
    """``steps`` transitions (T = steps, E = 1) of a uniform-random policy on ``spec`` (discrete actions), with the
    heuristic's r_aux: the states an untrained agent visits."""
    if spec.action_kind != "discrete":
        raise ValueError(f"{spec.name}: the shaping report rolls out a random discrete policy; this env's actions are {spec.action_kind}")
    params = spec.level(jax.random.PRNGKey(seed))
    obs, state = spec.reset(jax.random.PRNGKey(seed), params)

    def step(carry, key):
        obs, state = carry
        action_key, step_key = jax.random.split(key)
        action = jax.random.randint(action_key, (), 0, spec.action_dim)
        next_obs, state, reward, terminated, truncated, stats = spec.step(step_key, state, action, params)
        reached = stats["final_observation"]
        return (next_obs, state), (obs, action, reached, reward, terminated, terminated | truncated)

    keys = jax.random.split(jax.random.PRNGKey(seed + 1), steps)
    _, (o, a, reached, r, terminated, ended) = jax.lax.scan(step, (obs, state), keys)
    aux = heuristic.aux(o, a, reached)
    column = lambda x: jnp.asarray(x)[:, None]  # noqa: E731  (T,) -> (T, E = 1)
    return ShapingInputs(column(o), column(a), column(reached), column(r).astype(jnp.float32), column(aux).astype(jnp.float32),
                         column(terminated), column(ended))


def learned_over_progress(params, inputs: ShapingInputs, kwargs: dict[str, Any], points=PROGRESS_POINTS) -> list[dict[str, float]]:
    """Per n/N in ``points``: the mean heuristic weight w (with its 10th and 90th percentile over the transitions), the
    mean bonus b and the mean shaping term w · r_aux + b of a ``learned`` shaping with factory ``kwargs``."""
    progress, init_aux_weight = bool(kwargs.get("progress", True)), float(kwargs.get("init_aux_weight", 1.0))
    rows = []
    for p in points:
        weight, bonus = learned_weight_and_bonus(params, inputs, jnp.float32(p), progress, init_aux_weight)
        weight, bonus = np.asarray(weight, np.float64), np.asarray(bonus, np.float64)
        term = weight * np.asarray(inputs.aux_reward) + bonus
        rows.append({"progress": float(p), "aux_weight_mean": round(float(weight.mean()), 5),
                     "aux_weight_p10": round(float(np.percentile(weight, 10)), 5),
                     "aux_weight_p90": round(float(np.percentile(weight, 90)), 5),
                     "bonus_mean": round(float(bonus.mean()), 5), "shaping_term_mean": round(float(term.mean()), 5)})
    return rows
