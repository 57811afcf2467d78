"""A learned curriculum: a small scorer of each level's features whose parameters the outer loop evolves.

Per level, the scorer reads ``[difficulty, running success, running |Â|, seen, staleness]`` and, with
``progress=True``, the agent's training progress n/N; a one-hidden-layer tanh MLP maps them to a logit,
and each env's level is drawn from the softmax over the bank. The output layer starts at zero, so the
initial curriculum is uniform and every direction ES tries changes it.

With ``base=NAME`` (a hand-designed sampler), the logit is a *residual* on that sampler's: level k is drawn from
softmax(log p_base(k) + f(features_k)). The initial curriculum is then the base sampler itself (its statistics kept
as it keeps them, e.g. SEC's bandit), and ES searches for what to change about it; a level the base never draws
(logit −inf) stays undrawn. ``base="uniform"`` (the default) is the plain scorer above.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.curricula.base import Curriculum, CurriculumState, initial_state, record, sample_from_logits
from metarl.envs.levels import LevelSpace

BASE_FEATURES = 5


def feature_rows(difficulty, success, abs_advantage, seen, staleness, progress, use_progress: bool):
    """The scorer's input (L, F) from per-level columns (L,) and the scalar n/N: the one place that fixes the order."""
    columns = [difficulty, success, abs_advantage, seen, staleness]
    if use_progress:
        columns.append(jnp.full(jnp.shape(difficulty), progress, jnp.float32))
    return jnp.stack([jnp.asarray(c, jnp.float32) for c in columns], axis=-1)


def level_features(space: LevelSpace, state: CurriculumState, progress, use_progress: bool):
    staleness = (state.step - state.last_sampled).astype(jnp.float32) / jnp.maximum(state.step.astype(jnp.float32), 1.0)
    return feature_rows(space.difficulty, state.success, state.abs_advantage, state.seen, jnp.where(state.seen, staleness, 1.0),
                        progress, use_progress)


def scorer(meta_params, features):
    """The learned logit (or residual on the base sampler's) of each row of ``features`` (..., F)."""
    return jnp.tanh(features @ meta_params["w1"] + meta_params["b1"]) @ meta_params["w2"]


def make_learned(space: LevelSpace, hidden: int = 16, progress: bool = True, base_sampler: Curriculum | None = None) -> Curriculum:
    """The scorer, on its own (``base_sampler`` None: uniform) or as a residual on a built hand-designed sampler (the
    registry's ``learned`` entry builds it from the ``base`` name)."""
    if not (isinstance(hidden, int) and hidden > 0):
        raise ValueError(f"learned curriculum hidden must be a positive integer, got {hidden!r}")
    if base_sampler is not None and base_sampler.logits is None:
        raise ValueError(f"learned curriculum base must be a hand-designed sampler (one with logits), got {base_sampler.name!r}")
    num_features = BASE_FEATURES + int(progress)

    def meta_init(key):
        return {
            "w1": jax.random.normal(key, (num_features, hidden)) / jnp.sqrt(num_features),
            "b1": jnp.zeros((hidden,)),
            "w2": jnp.zeros((hidden,)),
        }

    def logits(meta_params, state, context):
        return scorer(meta_params, level_features(space, state, context.progress, progress))

    def init(key):
        del key
        return initial_state(space)

    def sample(meta_params, state, key, num_envs: int, context):
        if base_sampler is None:  # the plain scorer: its draws stay what stored runs made
            return sample_from_logits(key, logits(meta_params, state, context), num_envs), state
        logits_key, draw_key = jax.random.split(key)  # as the base sampler splits it: a zero residual draws its levels
        residual = logits(meta_params, state, context)
        return sample_from_logits(draw_key, base_sampler.logits(state, logits_key) + residual, num_envs), state

    def update(meta_params, state, ids, signals, context):
        if base_sampler is not None:
            return base_sampler.update({}, state, ids, signals, context)
        del meta_params, context
        return record(state, ids, signals, space.num_levels)

    return Curriculum("learned", meta_init, init, sample, update)
