"""The objective family: a pair of pure functions ``init(key) -> η`` and ``loss(η, inputs) -> (scalar, aux)``.

*Drift* objectives (PPO, DPO, LPO, TA-LPO) are mirror-learning surrogates (Kuba et al., 2022; Lu et al.,
2022): the agent maximizes ``E[r·A − D(r, A)]`` with ratio ``r = π_new(a|s) / π_old(a|s)``, advantage ``A``
and a drift ``D ≥ 0`` with ``D(1, ·) = 0`` and ``∂D/∂r(1, ·) = 0``. A drift objective is therefore fully
described by its drift function; :func:`drift_objective` turns one into an :class:`Objective`.

The objective owns the *policy* term of the agent's loss. The agent it names (``agent``) adds its own
terms: the ``actor_critic`` agent adds the value loss and the entropy bonus with the coefficients of
:class:`metarl.config.PPOConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax.numpy as jnp

from metarl.types import LifetimeContext

MetaParams = Any  # a pytree; {} for hand-designed objectives


class DriftInputs(NamedTuple):
    """What a drift objective sees for one minibatch (flat arrays of equal shape)."""

    log_prob: chex.Array  # log π_new(a|s), differentiable in the agent's parameters
    old_log_prob: chex.Array  # log π_old(a|s) from the rollout
    advantages: chex.Array  # normalized per minibatch when the config says so
    context: LifetimeContext  # update n of N


class Objective(NamedTuple):
    """A member of the learned-objective family.

    ``init(key) -> η``: meta-parameters (``{}`` for hand-designed members).
    ``loss(η, inputs) -> (scalar, aux)``: the policy loss to *minimize*, and a dict of scalar diagnostics.
    ``drift(η, ratio, advantages, context) -> D``: elementwise drift, for drift objectives (else None).
    ``agent``: the agent heads the objective needs ("actor_critic": policy + value).
    """

    name: str
    init: Callable[[chex.PRNGKey], MetaParams]
    loss: Callable[[MetaParams, Any], tuple[chex.Array, dict[str, chex.Array]]]
    drift: Callable[..., chex.Array] | None = None
    agent: str = "actor_critic"


def no_meta_params(key: chex.PRNGKey) -> MetaParams:
    del key
    return {}


def drift_objective(name: str, drift: Callable[..., chex.Array], init: Callable = no_meta_params) -> Objective:
    """Build the objective ``−mean(r·A − D(r, A))`` from a drift function."""

    def loss(meta_params: MetaParams, inputs: DriftInputs):
        log_ratio = inputs.log_prob - inputs.old_log_prob
        ratio = jnp.exp(log_ratio)
        drift_values = drift(meta_params, ratio, inputs.advantages, inputs.context)
        surrogate = ratio * inputs.advantages - drift_values
        aux = {
            "drift_mean": jnp.mean(drift_values),
            # k3 estimator of KL(π_old || π_new): (r − 1) − log r ≥ 0
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        }
        return -jnp.mean(surrogate), aux

    return Objective(name=name, init=init, loss=loss, drift=drift)
