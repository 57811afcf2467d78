"""Fitness: scores of an inner run, non-finite handling, and shaping. Higher is better everywhere here;
the sign flip to evosax's minimization happens once, in :func:`to_minimization`.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from metarl.inner.train import TrainOutput


def score(output: TrainOutput, kind: str, last_k: int = 5) -> chex.Array:
    """Score of each run in ``output`` (leading batch axes kept), over its *active* updates only.

    final_return: return at the last update of the lifetime; last_k_mean: mean over the last k updates
    of the lifetime; auc: mean over the whole lifetime (area under the learning curve / N).
    Updates with no completed episode yet carry NaN and are skipped by the means.
    heldout_return / heldout_success: the final agent on the env's held-out levels (env reward).
    """
    if kind in ("heldout_return", "heldout_success"):
        if output.heldout is None:
            raise ValueError(f"fitness {kind!r} needs an env with held-out levels")
        return output.heldout[kind.removeprefix("heldout_")]
    returns, active = output.metrics["episode_return"], output.metrics["active"]
    num_active = jnp.sum(active, axis=-1)
    if kind == "final_return":
        return jnp.take_along_axis(returns, (num_active - 1)[..., None], axis=-1)[..., 0]
    index = jnp.arange(returns.shape[-1])
    if kind == "last_k_mean":
        window = active & (index >= (num_active - last_k)[..., None])
    elif kind == "auc":
        window = active
    else:
        raise ValueError(f"unknown fitness score {kind!r}")
    return jnp.nanmean(jnp.where(window, returns, jnp.nan), axis=-1)


def sanitize(fitness: chex.Array) -> tuple[chex.Array, chex.Array]:
    """Rank every non-finite fitness worst: replace it by the lowest finite value minus one.

    Returns ``(fitness, number_of_non_finite)``. If no value is finite, all become 0 (no preference).
    """
    finite = jnp.isfinite(fitness)
    worst = jnp.min(jnp.where(finite, fitness, jnp.inf))
    worst = jnp.where(jnp.isfinite(worst), worst - 1.0, 0.0)
    return jnp.where(finite, fitness, worst), jnp.sum(~finite)


def centered_rank(fitness: chex.Array) -> chex.Array:
    """Ranks scaled to [-0.5, 0.5] (ties share the mean rank)."""
    ranks = jax.scipy.stats.rankdata(fitness) - 1.0
    return ranks / jnp.maximum(fitness.shape[0] - 1, 1) - 0.5


def z_score(fitness: chex.Array) -> chex.Array:
    return (fitness - fitness.mean()) / (fitness.std() + 1e-8)


def pairwise_rank(fitness: chex.Array) -> chex.Array:
    """Antithetic pairs (i, i + P/2): the better member +0.5, the worse −0.5, a tie 0 each."""
    half = fitness.shape[0] // 2
    first, second = fitness[:half], fitness[half:]
    sign = jnp.sign(first - second) * 0.5
    return jnp.concatenate([sign, -sign])


SHAPINGS = {"centered_rank": centered_rank, "z_score": z_score, "pairwise_rank": pairwise_rank}


def shape(fitness: chex.Array, kind: str) -> chex.Array:
    return SHAPINGS[kind](fitness)


def to_minimization(utility: chex.Array) -> chex.Array:
    """evosax minimizes; metarl's fitness and utilities are 'higher is better'. The one sign flip."""
    return -utility
