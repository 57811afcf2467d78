"""Small pytrees shared across the package."""

from __future__ import annotations

from typing import Any, NamedTuple

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


class InnerHparams(NamedTuple):
    """The inner agent's numbers that runs stepped together may vary (a batched sweep vmaps over them): its
    learning rate and entropy coefficient. Everything that fixes a shape stays in the static
    :class:`metarl.config.PPOConfig`; ``None`` in place of this pytree means the config's own numbers."""

    lr: chex.Array
    ent_coef: chex.Array


class MetaParams(NamedTuple):
    """The meta-parameters of one inner run, one part per plug-in: the objective's η_o, the curriculum's
    η_c and the shaping's η_s (``{}`` for a hand-designed part). What the outer loop evolves or
    differentiates; ``train`` also takes a bare objective pytree (see :func:`as_meta_params`)."""

    objective: Any = {}
    curriculum: Any = {}
    shaping: Any = {}


def as_meta_params(meta_params) -> MetaParams:
    """A :class:`MetaParams` as is; anything else is the objective's part alone."""
    return meta_params if isinstance(meta_params, MetaParams) else MetaParams(objective=meta_params)
