"""Action distributions as small pure functions (categorical for Discrete, diagonal Gaussian for Box)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

_LOG_2PI = jnp.log(2.0 * jnp.pi)


class ActionDistribution(NamedTuple):
    """``params`` is the policy head's output: logits, or a (mean, log_std) pair."""

    sample: Callable  # (key, params) -> action
    log_prob: Callable  # (params, action) -> log π(a)
    entropy: Callable  # (params) -> H[π]


def _categorical_sample(key, logits):
    return jax.random.categorical(key, logits)


def _categorical_log_prob(logits, action):
    log_probs = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_probs, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _categorical_entropy(logits):
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


CATEGORICAL = ActionDistribution(_categorical_sample, _categorical_log_prob, _categorical_entropy)


def _gaussian_sample(key, params):
    mean, log_std = params
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def _gaussian_log_prob(params, action):
    mean, log_std = params
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def _gaussian_entropy(params):
    mean, log_std = params
    return jnp.sum(jnp.broadcast_to(log_std + 0.5 * (1.0 + _LOG_2PI), mean.shape), axis=-1)


DIAGONAL_GAUSSIAN = ActionDistribution(_gaussian_sample, _gaussian_log_prob, _gaussian_entropy)


def for_action_kind(kind: str) -> ActionDistribution:
    return {"discrete": CATEGORICAL, "continuous": DIAGONAL_GAUSSIAN}[kind]
