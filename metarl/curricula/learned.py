"""A learned curriculum: a small scorer of each level's features whose parameters the outer loop evolves.

Per level, the scorer reads ``[difficulty, running success, running |Â|, seen, staleness]`` and, with
``progress=True``, the agent's training progress n/N; a one-hidden-layer tanh MLP maps them to a logit,
and each env's level is drawn from the softmax over the bank. The output layer starts at zero, so the
initial curriculum is uniform and every direction ES tries changes it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.curricula.base import Curriculum, CurriculumState, initial_state, record, sample_from_logits
from metarl.envs.levels import LevelSpace

BASE_FEATURES = 5


def level_features(space: LevelSpace, state: CurriculumState, progress, use_progress: bool):
    staleness = (state.step - state.last_sampled).astype(jnp.float32) / jnp.maximum(state.step.astype(jnp.float32), 1.0)
    columns = [space.difficulty, state.success, state.abs_advantage, state.seen.astype(jnp.float32), jnp.where(state.seen, staleness, 1.0)]
    if use_progress:
        columns.append(jnp.full((space.num_levels,), progress, jnp.float32))
    return jnp.stack(columns, axis=-1)


def make_learned(space: LevelSpace, hidden: int = 16, progress: bool = True) -> Curriculum:
    if not (isinstance(hidden, int) and hidden > 0):
        raise ValueError(f"learned curriculum hidden must be a positive integer, got {hidden!r}")
    num_features = BASE_FEATURES + int(progress)

    def meta_init(key):
        return {
            "w1": jax.random.normal(key, (num_features, hidden)) / jnp.sqrt(num_features),
            "b1": jnp.zeros((hidden,)),
            "w2": jnp.zeros((hidden,)),
        }

    def logits(meta_params, state, context):
        features = level_features(space, state, context.progress, progress)
        return jnp.tanh(features @ meta_params["w1"] + meta_params["b1"]) @ meta_params["w2"]

    def init(key):
        del key
        return initial_state(space)

    def sample(meta_params, state, key, num_envs: int, context):
        return sample_from_logits(key, logits(meta_params, state, context), num_envs), state

    def update(meta_params, state, ids, signals, context):
        del meta_params, context
        return record(state, ids, signals, space.num_levels)

    return Curriculum("learned", meta_init, init, sample, update)
