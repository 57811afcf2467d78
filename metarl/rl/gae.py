"""Generalized advantage estimation that tells termination from truncation."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(
    rewards: chex.Array,
    values: chex.Array,
    next_values: chex.Array,
    terminated: chex.Array,
    episode_end: chex.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[chex.Array, chex.Array]:
    """GAE(λ) over a time-major rollout (Schulman et al., 2016).

    For step t with reward r_t, value V(s_t) and bootstrap value V(s'_t) of the state reached
    *before* any auto-reset:

        δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t)
        A_t = δ_t + γ λ (1 − episode_end_t) A_{t+1}

    Truncation (a time limit) still bootstraps from V(s'_t); only termination zeroes it. Either
    ends the episode, so the advantage recursion is cut at ``episode_end = terminated | truncated``.
    Leading axis is time; any trailing axes (envs) are carried elementwise.

    Returns ``(advantages, returns)`` with ``returns = advantages + values``.
    """
    chex.assert_equal_shape([rewards, values, next_values, terminated, episode_end])
    not_terminated = 1.0 - terminated.astype(rewards.dtype)
    continues = 1.0 - episode_end.astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage, step):
        delta_t, continues_t = step
        advantage = delta_t + gamma * gae_lambda * continues_t * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(deltas[0]), (deltas, continues), reverse=True
    )
    return advantages, advantages + values
