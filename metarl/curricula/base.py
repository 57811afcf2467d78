"""The curriculum interface: which levels of a :class:`~metarl.envs.levels.LevelSpace` each update trains on.

A curriculum is a pure triple over a scan-carried :class:`CurriculumState`:

- ``init(key) -> state``;
- ``sample(η_c, state, key, num_envs, ctx) -> (level ids (num_envs,), state)``: before every update, one
  level per parallel env (the inner loop resets each env to its level and rolls out on it);
- ``update(η_c, state, ids, signals, ctx) -> state``: after the update, with the per-env
  :class:`LevelSignals` of the rollout.

``meta_init(key) -> η_c`` gives the meta-parameters (``{}`` for hand-designed samplers). Every
curriculum keeps the same running statistics per level (:func:`record`), so a learned scorer can read
them and a new sampler needs only its ``sample`` (and, like SEC, an extra statistic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

from metarl.envs.levels import LevelSpace

STATS_EMA = 0.5  # weight of the newest rollout in the per-level running statistics


class LevelSignals(NamedTuple):
    """What one rollout says about each env's level (all (E,))."""

    abs_advantage: chex.Array  # mean |Â| over the rollout (Â as the agent learns from it: normalized if it normalizes)
    positive_advantage: chex.Array  # mean max(GAE advantage, 0): PLR's "positive value loss"
    success: chex.Array  # success rate over the episodes that ended in the rollout (0 when none ended)
    episodes: chex.Array  # episodes that ended in the rollout


@struct.dataclass
class CurriculumState:
    success: chex.Array  # (K,) running success rate (prior 0.5 until a level has ended an episode)
    abs_advantage: chex.Array  # (K,) running mean |Â|
    score: chex.Array  # (K,) latest positive value loss (PLR's score)
    seen: chex.Array  # (K,) bool: sampled at least once
    last_sampled: chex.Array  # (K,) int32: the update index it was last sampled at
    count: chex.Array  # (K,) int32: updates it was sampled in
    category_q: chex.Array  # (C,) SEC's value per category
    step: chex.Array  # () int32: updates so far


class Curriculum(NamedTuple):
    name: str
    meta_init: Callable[[chex.PRNGKey], Any]
    init: Callable[[chex.PRNGKey], CurriculumState]
    sample: Callable[..., tuple[chex.Array, CurriculumState]]
    update: Callable[..., CurriculumState]
    # a hand-designed sampler's distribution, ``logits(state, key) -> (K,)`` (None for a learned one): what a learned
    # curriculum with this sampler as its ``base`` adds its residual to
    logits: Callable[[CurriculumState, chex.PRNGKey], chex.Array] | None = None


def initial_state(space: LevelSpace) -> CurriculumState:
    k, c = space.num_levels, space.num_categories
    return CurriculumState(
        success=jnp.full((k,), 0.5, jnp.float32),
        abs_advantage=jnp.zeros((k,), jnp.float32),
        score=jnp.zeros((k,), jnp.float32),
        seen=jnp.zeros((k,), bool),
        last_sampled=jnp.zeros((k,), jnp.int32),
        count=jnp.zeros((k,), jnp.int32),
        category_q=jnp.zeros((c,), jnp.float32),
        step=jnp.int32(0),
    )


def per_level_mean(values, ids, num_levels: int, weights=None):
    """(mean of ``values`` over the envs on each level (K,), whether the level had any weight (K,))."""
    weights = jnp.ones_like(values) if weights is None else weights
    total = jax.ops.segment_sum(values * weights, ids, num_levels)
    mass = jax.ops.segment_sum(weights, ids, num_levels)
    return total / jnp.maximum(mass, 1e-12), mass > 0


def record(state: CurriculumState, ids, signals: LevelSignals, num_levels: int) -> CurriculumState:
    """Fold one rollout into the per-level statistics (levels not sampled keep theirs)."""
    sampled = jax.ops.segment_sum(jnp.ones_like(ids), ids, num_levels) > 0
    abs_adv, _ = per_level_mean(signals.abs_advantage, ids, num_levels)
    score, _ = per_level_mean(signals.positive_advantage, ids, num_levels)
    success, ended = per_level_mean(signals.success, ids, num_levels, weights=signals.episodes)
    ema = lambda old, new, mask: jnp.where(mask, (1 - STATS_EMA) * old + STATS_EMA * new, old)  # noqa: E731
    first = sampled & ~state.seen
    return state.replace(
        success=ema(state.success, success, ended),
        abs_advantage=jnp.where(first, abs_adv, ema(state.abs_advantage, abs_adv, sampled)),
        score=jnp.where(sampled, score, state.score),
        seen=state.seen | sampled,
        last_sampled=jnp.where(sampled, state.step, state.last_sampled),
        count=state.count + sampled.astype(jnp.int32),
        step=state.step + 1,
    )


def sample_from_logits(key, logits, num_envs: int):
    """``num_envs`` level ids drawn with replacement from softmax(logits) (−inf: never)."""
    return jax.random.categorical(key, logits, shape=(num_envs,)).astype(jnp.int32)


def no_meta_params(key) -> dict:
    del key
    return {}


def hand_designed(name: str, space: LevelSpace, sample_logits: Callable, extra_update: Callable | None = None) -> Curriculum:
    """A curriculum with no meta-parameters that samples from ``sample_logits(state, key) -> (K,) logits``."""

    def init(key):
        del key
        return initial_state(space)

    def sample(meta_params, state, key, num_envs: int, context):
        del meta_params, context
        logits_key, draw_key = jax.random.split(key)
        return sample_from_logits(draw_key, sample_logits(state, logits_key), num_envs), state

    def update(meta_params, state, ids, signals, context):
        del meta_params, context
        new = record(state, ids, signals, space.num_levels)
        return extra_update(state, new, ids, signals) if extra_update is not None else new

    return Curriculum(name, no_meta_params, init, sample, update, sample_logits)
