"""Small pytrees shared across the package."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax.numpy as jnp


class LifetimeContext(NamedTuple):
    """Where the agent is in its lifetime: update ``n`` of ``N`` (both may be traced)."""

    update: chex.Array
    num_updates: chex.Array

    @property
    def progress(self) -> chex.Array:
        """n / N in [0, 1)."""
        return jnp.asarray(self.update, jnp.float32) / jnp.asarray(self.num_updates, jnp.float32)

    @property
    def log_num_updates(self) -> chex.Array:
        return jnp.log(jnp.asarray(self.num_updates, jnp.float32))


class Task(NamedTuple):
    """What an inner run is trained on, as traced values (so tasks can be vmapped).

    ``num_updates`` is the lifetime N; it may be smaller than the config's (static) scan length,
    in which case the remaining updates are skipped and the agent is left as it was after N.
    ``env_params`` are the env's parameters (a gymnax ``EnvParams``).
    """

    num_updates: chex.Array
    env_params: object
