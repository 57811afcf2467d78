"""The objective family: a pair of pure functions ``init(key) -> η`` and ``loss(η, inputs) -> (scalar, aux)``.

*Drift* objectives (PPO, DPO, LPO, TA-LPO) are mirror-learning surrogates (Kuba et al., 2022; Lu et al.,
2022): the agent maximizes ``E[r·A − D(r, A)]`` with ratio ``r = π_new(a|s) / π_old(a|s)``, advantage ``A``
and a drift ``D ≥ 0`` with ``D(1, ·) = 0`` and ``∂D/∂r(1, ·) = 0``. A drift objective is therefore fully
described by its drift function; :func:`drift_objective` turns one into an :class:`Objective`.

*Target* objectives (LPG, TA-LPG; Oh et al., 2020) instead run ``targets(η, TrajectoryInputs)`` once per
update over whole trajectories and emit a policy target π̂ (a learned "advantage") and a prediction target
ŷ (a distribution over ``head_size`` bins) for every step; their ``loss`` turns those into the agent's
update. They need the ``predictor`` agent: a policy and a categorical prediction head y(s), no value.

The objective owns the *policy* term of the agent's loss (and, for target objectives, the prediction
term). The agent it names (``agent``) adds its own terms: ``actor_critic`` adds the value loss and the
entropy bonus with the coefficients of :class:`metarl.config.PPOConfig`; ``predictor`` adds the entropy
bonus. See :mod:`metarl.inner.agents`.
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


class TrajectoryInputs(NamedTuple):
    """What a target objective sees for one update: time-major arrays of shape (T, E) unless noted."""

    reward: chex.Array
    terminated: chex.Array  # the episode ended in a terminal state at step t (no bootstrap)
    episode_end: chex.Array  # terminated | truncated: s_{t+1} starts a new episode
    discount: chex.Array  # γ, a scalar
    action_prob: chex.Array  # π(a_t | s_t) at rollout time
    y: chex.Array  # (T, E, m): the agent's prediction y(s_t), a distribution
    next_y: chex.Array  # (T, E, m): y(s_{t+1}) of the state reached (before any auto-reset)
    context: LifetimeContext


class TargetInputs(NamedTuple):
    """What a target objective's agent loss sees for one minibatch (flat arrays)."""

    log_prob: chex.Array  # log π_θ(a|s), differentiable in the agent's parameters
    y_logits: chex.Array  # (B, m): the agent's prediction logits, differentiable
    pi_hat: chex.Array  # (B,): policy target from ``targets``
    y_hat: chex.Array  # (B, m): prediction target from ``targets``
    context: LifetimeContext


class Objective(NamedTuple):
    """A member of the learned-objective family.

    ``init(key) -> η``: meta-parameters (``{}`` for hand-designed members).
    ``loss(η, inputs) -> (scalar, aux)``: the policy loss to *minimize*, and a dict of scalar diagnostics.
    ``drift(η, ratio, advantages, context) -> D``: elementwise drift, for drift objectives (else None).
    ``agent``: the agent heads the objective needs ("actor_critic": policy + value; "predictor": policy +
    a categorical prediction head of ``head_size`` bins).
    ``targets(η, TrajectoryInputs) -> (π̂, ŷ, aux)``: for target objectives (else None). An aux entry
    ``meta_regularizer`` (a scalar, differentiable in η) is added to the meta-gradient's meta-loss.
    ``step_scale(η, context) -> s``: where an objective also learns its step size, the factor (> 0) on the inner
    learning rate at update n of N, applied on top of the config's schedule (else None: the config's alone).
    """

    name: str
    init: Callable[[chex.PRNGKey], MetaParams]
    loss: Callable[[MetaParams, Any], tuple[chex.Array, dict[str, chex.Array]]]
    drift: Callable[..., chex.Array] | None = None
    agent: str = "actor_critic"
    targets: Callable[..., Any] | None = None
    head_size: int = 1
    step_scale: Callable[[MetaParams, LifetimeContext], chex.Array] | None = None


def no_meta_params(key: chex.PRNGKey) -> MetaParams:
    del key
    return {}


def drift_objective(name: str, drift: Callable[..., chex.Array], init: Callable = no_meta_params,
                    step_scale: Callable | None = None) -> Objective:
    """Build the objective ``−mean(r·A − D(r, A))`` from a drift function (and, where given, a learned step size)."""

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

    return Objective(name=name, init=init, loss=loss, drift=drift, step_scale=step_scale)
