"""Agents: the heads an objective needs, what is computed once per rollout, and the minibatch loss.

The inner loop (:mod:`metarl.inner.train`) is the same for every objective; what differs is named by
``objective.agent`` and built here:

- ``actor_critic`` (drift objectives: PPO, DPO, LPO, TA-LPO): policy + value head. Per rollout: GAE
  advantages and returns. Per minibatch: the objective's policy loss on (ratio, advantage), plus
  ``vf_coef`` · value loss − ``ent_coef`` · entropy.
- ``predictor`` (target objectives: LPG, TA-LPG, pg_td): policy + categorical prediction head y(s) of
  ``objective.head_size`` bins. Per rollout: the objective's ``targets`` over the whole trajectory
  (π̂, ŷ). Per minibatch: the objective's loss on those targets − ``ent_coef`` · entropy.

A new agent kind is one factory and one :data:`REGISTRY` line; the loop does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from metarl.config import PPOConfig
from metarl.envs.spec import EnvSpec
from metarl.objectives.base import DriftInputs, Objective, TargetInputs, TrajectoryInputs
from metarl.registry import Registry
from metarl.rl import distributions
from metarl.rl.gae import gae
from metarl.rl.networks import make_actor_critic
from metarl.types import LifetimeContext


class Transition(NamedTuple):
    obs: chex.Array
    action: chex.Array
    log_prob: chex.Array
    head: chex.Array  # the agent's head at obs: V(s) (actor_critic) or prediction logits (predictor)
    reward: chex.Array  # scaled reward used for learning
    terminated: chex.Array
    episode_end: chex.Array  # terminated | truncated
    final_obs: chex.Array  # observation reached before any auto-reset (bootstrap target)
    episode_return: chex.Array  # unscaled return of the episode that ended here
    episode_length: chex.Array
    aux_reward: chex.Array  # the heuristic's auxiliary reward r_aux (0 without one), scaled like reward
    success: chex.Array  # bool: the episode that ended here succeeded (the env's flag, else survived to the time limit)


class Agent(NamedTuple):
    """``prepare(θ, η, trajectory, ctx, discount) -> (targets, aux)``: per-step arrays (T, E, ...) and scalar
    diagnostics; ``discount`` is the agent's γ (a shaping may learn it).
    ``loss(θ, η, transitions, targets, ctx, ent_coef) -> (scalar, aux)``: on a flat minibatch, differentiated in θ
    (``ent_coef`` is passed in, not read from the config: runs stepped together may trace it).
    ``advantage(targets) -> (T, E)``: the advantage-like signal the targets carry (for curricula)."""

    name: str
    network: Any
    dist: distributions.ActionDistribution
    prepare: Callable[..., tuple[Any, dict[str, chex.Array]]]
    loss: Callable[..., tuple[chex.Array, dict[str, chex.Array]]]
    advantage: Callable[[Any], chex.Array]


def value_loss(values, old_values, returns, clip_eps: float):
    """0.5·(V − R)², with PPO's clipping of V to old_V ± ε when ε > 0."""
    unclipped = jnp.square(values - returns)
    if clip_eps <= 0:
        return 0.5 * jnp.mean(unclipped)
    clipped_values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(clipped_values - returns)))


def normalize(x, eps: float = 1e-8):
    return (x - x.mean()) / (x.std() + eps)


def _approx_kl(log_prob, old_log_prob):
    """k3 estimator of KL(π_old ‖ π_new): (r − 1) − log r ≥ 0."""
    log_ratio = log_prob - old_log_prob
    return jnp.mean(jnp.exp(log_ratio) - 1.0 - log_ratio)


def make_actor_critic_agent(config: PPOConfig, env: EnvSpec, objective: Objective) -> Agent:
    network = make_actor_critic(config, env.obs_shape, env.action_kind, env.action_dim)
    dist = distributions.for_action_kind(env.action_kind)

    def prepare(agent_params, meta_params, trajectory: Transition, context: LifetimeContext, discount):
        del meta_params, context
        next_values = network.apply(agent_params, trajectory.final_obs, method=network.value)
        advantages, returns = gae(
            trajectory.reward, trajectory.head, next_values, trajectory.terminated, trajectory.episode_end,
            discount, config.gae_lambda,
        )
        return (advantages, returns), {}

    def loss(agent_params, meta_params, transition: Transition, targets, context: LifetimeContext, ent_coef):
        advantages, returns = targets
        policy, values = network.apply(agent_params, transition.obs)
        log_prob = dist.log_prob(policy, transition.action)
        entropy = jnp.mean(dist.entropy(policy))
        if config.normalize_advantages:
            advantages = normalize(advantages)
        policy_loss, aux = objective.loss(meta_params, DriftInputs(log_prob, transition.log_prob, advantages, context))
        critic_loss = value_loss(values, transition.head, returns, config.value_clip_eps)
        total = policy_loss + config.vf_coef * critic_loss - ent_coef * entropy
        return total, {"policy_loss": policy_loss, "value_loss": critic_loss, "entropy": entropy, **aux}

    return Agent("actor_critic", network, dist, prepare, loss, lambda targets: targets[0])


def make_predictor_agent(config: PPOConfig, env: EnvSpec, objective: Objective) -> Agent:
    network = make_actor_critic(config, env.obs_shape, env.action_kind, env.action_dim, head_size=objective.head_size)
    dist = distributions.for_action_kind(env.action_kind)

    def prepare(agent_params, meta_params, trajectory: Transition, context: LifetimeContext, discount):
        next_logits = network.apply(agent_params, trajectory.final_obs, method=network.value)
        inputs = TrajectoryInputs(
            reward=trajectory.reward,
            terminated=trajectory.terminated,
            episode_end=trajectory.episode_end,
            discount=jnp.asarray(discount, jnp.float32),
            action_prob=jnp.exp(trajectory.log_prob),
            y=jax.nn.softmax(trajectory.head, axis=-1),
            next_y=jax.nn.softmax(next_logits, axis=-1),
            context=context,
        )
        pi_hat, y_hat, aux = objective.targets(meta_params, inputs)
        return (pi_hat, y_hat), aux

    def loss(agent_params, meta_params, transition: Transition, targets, context: LifetimeContext, ent_coef):
        pi_hat, y_hat = targets
        policy, y_logits = network.apply(agent_params, transition.obs)
        log_prob = dist.log_prob(policy, transition.action)
        entropy = jnp.mean(dist.entropy(policy))
        objective_loss, aux = objective.loss(meta_params, TargetInputs(log_prob, y_logits, pi_hat, y_hat, context))
        total = objective_loss - ent_coef * entropy
        return total, {"policy_loss": objective_loss, "entropy": entropy, "approx_kl": _approx_kl(log_prob, transition.log_prob), **aux}

    return Agent("predictor", network, dist, prepare, loss, lambda targets: targets[0])


REGISTRY: Registry[Agent] = Registry("agent")
REGISTRY.register("actor_critic", make_actor_critic_agent)
REGISTRY.register("predictor", make_predictor_agent)


def make_agent(config: PPOConfig, env: EnvSpec, objective: Objective) -> Agent:
    return REGISTRY.get(objective.agent)(config, env, objective)
