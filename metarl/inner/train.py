"""The inner loop: a whole RL training run as one jittable function.

``make_train(config, env, objective) -> train(meta_params, task, key) -> TrainOutput``

The factory closes over everything that fixes shapes (the frozen config, the env's structure, the
objective's functions); ``train`` takes everything one may vmap, differentiate or evolve. The run is
``lax.scan`` over N updates, each a ``lax.scan`` rollout, one pass of the agent's ``prepare`` over the
whole trajectory (GAE, or a target objective's backward net), then ``lax.scan`` epochs of minibatch
updates. ``jax.vmap`` over ``key`` trains seeds together; over ``meta_params`` a population.

Two plug-ins change *what* the agent learns from without forking the loop (DESIGN.md):

- a **curriculum** (:mod:`metarl.curricula`): before every update it picks a level of the env's level
  space for each parallel env; the envs are reset to those levels and the rollout runs on them. After
  the update it reads each env's learning signals (|Â|, positive advantage, success). Its state rides
  in the scan.
- a **shaping** (:mod:`metarl.shaping`) with a heuristic: the rollout records the heuristic's r_aux; the
  shaping turns (r, r_aux, observations, n/N) into the reward and discount the agent's targets use.
  Episode returns, and so fitness and evaluation, stay the env's own.

``meta_params`` is a :class:`~metarl.types.MetaParams` {objective, curriculum, shaping} (a bare
objective pytree is accepted too). When the env has a level space, ``train`` ends with an evaluation of
the final agent on the held-out levels (``TrainOutput.heldout``).
:func:`make_inner` exposes the pieces (``init``, ``update``, ``rollout``) for outer loops that step an
agent a few updates at a time (the meta-gradient loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from metarl.config import PPOConfig
from metarl.curricula.base import Curriculum, LevelSignals
from metarl.envs.spec import EnvSpec
from metarl.inner import agents
from metarl.inner.agents import Transition, normalize
from metarl.objectives.base import Objective
from metarl.shaping.base import Shaping, ShapingInputs
from metarl.shaping.heuristics import Heuristic
from metarl.types import InnerHparams, LifetimeContext, Task, as_meta_params

__all__ = ["Inner", "RunnerState", "TrainOutput", "Transition", "default_task", "final_return", "level_task", "make_inner", "make_train"]


class TrainOutput(NamedTuple):
    """``metrics``: dict of per-update arrays, shape (num_updates,) (stacked by scan).
    ``agent_params``: the agent's parameters at the end of its lifetime.
    ``heldout``: for an env with a level space, the final agent's mean ``return`` and ``success`` over
    the held-out levels (one episode each, env reward); ``None`` otherwise."""

    metrics: dict[str, chex.Array]
    agent_params: Any
    heldout: dict[str, chex.Array] | None = None


@struct.dataclass
class RunnerState:
    agent_params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.PRNGKey
    last_episode_return: chex.Array  # most recent mean episodic return (carried over updates with none)
    last_episode_length: chex.Array
    curriculum_state: Any = None  # the curriculum's state (None without a curriculum)


class Inner(NamedTuple):
    """The pieces of one inner run. ``init(key, env_params) -> RunnerState``;
    ``update(runner, η, env_params, ctx, hparams=None) -> (runner, metrics)``: one rollout and one agent update;
    ``rollout(runner, env_params) -> (runner, Transition (T, E))``; ``train(η, task, key, hparams=None)``: the whole
    lifetime (``hparams``: an :class:`InnerHparams`, None for the config's numbers);
    ``evaluate(agent_params, levels, key) -> {"return", "success"}`` per level of a stacked batch."""

    agent: agents.Agent
    init: Callable[..., RunnerState]
    rollout: Callable[..., tuple[RunnerState, Transition]]
    update: Callable[..., tuple[RunnerState, dict[str, chex.Array]]]
    train: Callable[[Any, Task, chex.PRNGKey], TrainOutput]
    evaluate: Callable[..., dict[str, chex.Array]] | None = None


def default_task(config: PPOConfig, env: EnvSpec) -> Task:
    """The task a plain `metarl train` run uses: the full lifetime on the env's default params."""
    return Task(num_updates=jnp.asarray(config.num_updates, jnp.int32), env_params=env.default_params)


LEVEL_STREAM = 0x1E7E1  # folded into a run's key to draw its level, apart from the agent's own randomness
HELDOUT_STREAM = 0x4E1D  # folded into a run's key for the held-out evaluation at the end of its lifetime


def level_task(env: EnvSpec, num_updates, key: chex.PRNGKey) -> Task:
    """The task of one run with ``key``: lifetime ``num_updates`` on the level ``env`` draws from the key
    (the default params for an env that is not a distribution of levels)."""
    return Task(num_updates=jnp.asarray(num_updates, jnp.int32), env_params=env.level(jax.random.fold_in(key, LEVEL_STREAM)))


def episode_success(terminated, truncated, stats):
    """The env's own ``success`` flag, else "survived to the time limit" (truncated, not terminated)."""
    return stats["success"] if "success" in stats else truncated & ~terminated


def level_signals(advantages, trajectory: Transition, normalize_advantages: bool) -> LevelSignals:
    """Per env (E,): what a curriculum learns about each env's level from one rollout (T, E)."""
    shown = normalize(advantages) if normalize_advantages else advantages
    episodes = jnp.sum(trajectory.episode_end, axis=0).astype(jnp.float32)
    successes = jnp.sum(trajectory.success & trajectory.episode_end, axis=0).astype(jnp.float32)
    return LevelSignals(
        abs_advantage=jnp.mean(jnp.abs(shown), axis=0),
        positive_advantage=jnp.mean(jnp.maximum(advantages, 0.0), axis=0),
        success=successes / jnp.maximum(episodes, 1.0),
        episodes=episodes,
    )


def make_inner(config: PPOConfig, env: EnvSpec, objective: Objective, *, differentiable: bool = False,
               curriculum: Curriculum | None = None, shaping: Shaping | None = None, heuristic: Heuristic | None = None) -> Inner:
    """``differentiable=True`` builds Adam with ``eps_root`` > 0, so gradients *through* the agent's
    updates (meta-gradients) stay finite where a parameter's gradient is exactly zero.
    ``curriculum`` needs an env with a level space; ``shaping`` reads ``heuristic``'s r_aux (none: 0).
    ``update`` and ``train`` take an optional :class:`InnerHparams` (learning rate and entropy coefficient as
    arrays, e.g. runs of a sweep vmapped together); without one they use the config's numbers."""
    config.validate()
    space = env.level_space
    if curriculum is not None and space is None:
        raise ValueError(f"env {env.name!r} has no level space for a curriculum to choose from")
    agent = agents.make_agent(config, env, objective)
    network, dist = agent.network, agent.dist
    # The learning rate is applied by hand so it can anneal over a *traced* lifetime N.
    adam = optax.scale_by_adam(eps=1e-5, eps_root=1e-8 if differentiable else 0.0)
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)
    params_axis = 0 if curriculum is not None else None  # with a curriculum every env runs its own level
    reset_envs = jax.vmap(env.reset, in_axes=(0, params_axis))
    step_envs = jax.vmap(env.step, in_axes=(0, 0, 0, params_axis))
    scan_length = config.num_updates

    def init_runner(key, env_params) -> RunnerState:
        net_key, env_key, curriculum_key, key = jax.random.split(key, 4)
        curriculum_state = None
        if curriculum is not None:
            curriculum_state = curriculum.init(curriculum_key)
            env_params = space.take(jnp.zeros((config.num_envs,), jnp.int32))  # placeholder: every update resets
        obs, env_state = reset_envs(jax.random.split(env_key, config.num_envs), env_params)
        agent_params = network.init(net_key, obs[:1])
        return RunnerState(
            agent_params=agent_params,
            opt_state=optimizer.init(agent_params),
            env_state=env_state,
            obs=obs,
            key=key,
            last_episode_return=jnp.float32(jnp.nan),
            last_episode_length=jnp.float32(jnp.nan),
            curriculum_state=curriculum_state,
        )

    def rollout(runner: RunnerState, env_params):
        def env_step(carry, _):
            agent_params, env_state, obs, key = carry
            key, action_key, step_key = jax.random.split(key, 3)
            policy, head = network.apply(agent_params, obs)
            action = dist.sample(action_key, policy)
            log_prob = dist.log_prob(policy, action)
            next_obs, env_state, reward, terminated, truncated, stats = step_envs(
                jax.random.split(step_key, config.num_envs), env_state, action, env_params
            )
            aux = heuristic.aux(obs, action, stats["final_observation"]) if heuristic is not None else jnp.zeros_like(reward)
            transition = Transition(
                obs=obs,
                action=action,
                log_prob=log_prob,
                head=head,
                reward=reward * config.reward_scale,
                terminated=terminated,
                episode_end=jnp.logical_or(terminated, truncated),
                final_obs=stats["final_observation"],
                episode_return=stats["episode_return"],
                episode_length=stats["episode_length"].astype(jnp.float32),
                aux_reward=aux.astype(jnp.float32) * config.reward_scale,
                success=episode_success(terminated, truncated, stats),
            )
            return (agent_params, env_state, next_obs, key), transition

        (_, env_state, obs, key), trajectory = jax.lax.scan(
            env_step, (runner.agent_params, runner.env_state, runner.obs, runner.key), None, config.num_steps
        )
        return runner.replace(env_state=env_state, obs=obs, key=key), trajectory

    grad_fn = jax.grad(agent.loss, has_aux=True)

    def shape(meta_params, trajectory: Transition, context: LifetimeContext):
        """The rollout with the reward the agent learns from, and the discount its targets use."""
        if shaping is None:
            return trajectory, jnp.float32(config.gamma)
        inputs = ShapingInputs(trajectory.obs, trajectory.action, trajectory.final_obs, trajectory.reward, trajectory.aux_reward,
                               trajectory.terminated, trajectory.episode_end)
        shaped = shaping.apply(meta_params.shaping, inputs, context)
        return trajectory._replace(reward=shaped.reward), shaped.discount

    def learn(runner: RunnerState, meta_params, trajectory: Transition, context: LifetimeContext, hparams: InnerHparams):
        """The agent update on one rollout (``meta_params``: a MetaParams). Returns (runner, metrics, the advantages its targets carry)."""
        trajectory, discount = shape(meta_params, trajectory, context)
        targets, prepare_aux = agent.prepare(runner.agent_params, meta_params.objective, trajectory, context, discount)
        lr = hparams.lr * (1.0 - context.progress) if config.anneal_lr else hparams.lr
        if objective.step_scale is not None:  # the objective's own learned step-size schedule, on top
            lr = lr * objective.step_scale(meta_params.objective, context)
        flat = jax.tree.map(lambda x: x.reshape((config.batch_size,) + x.shape[2:]), (trajectory, targets))

        def minibatch_step(carry, minibatch):
            agent_params, opt_state = carry
            transitions, minibatch_targets = minibatch
            grads, aux = grad_fn(agent_params, meta_params.objective, transitions, minibatch_targets, context, hparams.ent_coef)
            updates, opt_state = optimizer.update(grads, opt_state, agent_params)
            agent_params = optax.apply_updates(agent_params, jax.tree.map(lambda u: -lr * u, updates))
            return (agent_params, opt_state), aux

        def epoch(carry, key):
            if config.num_minibatches == 1:  # one full batch: no shuffle needed
                return jax.lax.scan(minibatch_step, carry, jax.tree.map(lambda x: x[None], flat))
            order = jax.random.permutation(key, config.batch_size)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape((config.num_minibatches, config.minibatch_size) + x.shape[1:]), flat
            )
            return jax.lax.scan(minibatch_step, carry, minibatches)

        key, epoch_key = jax.random.split(runner.key)
        (agent_params, opt_state), aux = jax.lax.scan(
            epoch, (runner.agent_params, runner.opt_state), jax.random.split(epoch_key, config.update_epochs)
        )
        runner = runner.replace(agent_params=agent_params, opt_state=opt_state, key=key)
        return runner, {**jax.tree.map(jnp.mean, aux), **prepare_aux}, agent.advantage(targets)

    def choose_levels(runner: RunnerState, meta_params, context: LifetimeContext):
        """The curriculum's levels for this update: every env reset to its level."""
        key, sample_key, reset_key = jax.random.split(runner.key, 3)
        ids, curriculum_state = curriculum.sample(meta_params.curriculum, runner.curriculum_state, sample_key, config.num_envs, context)
        env_params = space.take(ids)
        obs, env_state = reset_envs(jax.random.split(reset_key, config.num_envs), env_params)
        runner = runner.replace(obs=obs, env_state=env_state, key=key, curriculum_state=curriculum_state)
        return runner, ids, env_params

    def curriculum_metrics(ids):
        fraction = jnp.bincount(space.category[ids], length=space.num_categories) / config.num_envs
        return {"level_difficulty": jnp.mean(space.difficulty[ids]), "level_category_fraction": fraction}

    def update(runner: RunnerState, meta_params, env_params, context: LifetimeContext, hparams: InnerHparams | None = None):
        meta_params = as_meta_params(meta_params)
        hparams = own_hparams(config) if hparams is None else hparams
        extra = {}
        if curriculum is not None:
            runner, ids, env_params = choose_levels(runner, meta_params, context)
            extra = curriculum_metrics(ids)
        runner, trajectory = rollout(runner, env_params)
        runner, losses, advantages = learn(runner, meta_params, trajectory, context, hparams)
        if curriculum is not None:
            signals = level_signals(advantages, trajectory, config.normalize_advantages)
            curriculum_state = curriculum.update(meta_params.curriculum, runner.curriculum_state, ids, signals, context)
            runner = runner.replace(curriculum_state=curriculum_state)
            extra["train_success"] = jnp.sum(signals.success * signals.episodes) / jnp.maximum(jnp.sum(signals.episodes), 1.0)
        episodes = jnp.sum(trajectory.episode_end)
        has_episodes = episodes > 0
        mean_return = jnp.sum(trajectory.episode_return * trajectory.episode_end) / jnp.maximum(episodes, 1)
        mean_length = jnp.sum(trajectory.episode_length * trajectory.episode_end) / jnp.maximum(episodes, 1)
        runner = runner.replace(
            last_episode_return=jnp.where(has_episodes, mean_return, runner.last_episode_return),
            last_episode_length=jnp.where(has_episodes, mean_length, runner.last_episode_length),
        )
        metrics = {
            "episode_return": runner.last_episode_return,
            "episode_length": runner.last_episode_length,
            "episodes_completed": episodes.astype(jnp.float32),
            **losses,
            **extra,
        }
        return runner, metrics

    def train(meta_params, task: Task, key: chex.PRNGKey, hparams: InnerHparams | None = None) -> TrainOutput:
        runner = init_runner(key, task.env_params)

        def scan_body(runner: RunnerState, update_index):
            context = LifetimeContext(update_index, task.num_updates)
            active = update_index < task.num_updates
            updated, metrics = update(runner, meta_params, task.env_params, context, hparams)
            # Past the task's lifetime N the agent is frozen. A select rather than lax.cond: under vmap
            # over tasks cond becomes a select anyway, and on one task XLA runs the select faster.
            runner = jax.tree.map(lambda new, old: jnp.where(active, new, old), updated, runner)
            metrics = jax.tree.map(lambda m: jnp.where(active, m, jnp.nan), metrics)
            return runner, {**metrics, "active": active}

        runner, metrics = jax.lax.scan(scan_body, runner, jnp.arange(scan_length, dtype=jnp.int32))
        heldout = None
        if space is not None:
            heldout = jax.tree.map(jnp.mean, evaluate(runner.agent_params, space.heldout, jax.random.fold_in(key, HELDOUT_STREAM)))
        return TrainOutput(metrics=metrics, agent_params=runner.agent_params, heldout=heldout)

    def evaluate(agent_params, levels, key):
        """One episode of the (sampling) policy on each level of the stacked batch ``levels``: its env
        return and whether it succeeded, per level."""
        count = jax.tree.leaves(levels)[0].shape[0]
        reset_key, run_key = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(reset_key, count), levels)

        def body(carry, key):
            obs, env_state, done, total, success = carry
            action_key, step_key = jax.random.split(key)
            policy, _ = network.apply(agent_params, obs)
            action = dist.sample(action_key, policy)
            step_keys = jax.random.split(step_key, count)
            obs, env_state, reward, terminated, truncated, stats = jax.vmap(env.step)(step_keys, env_state, action, levels)
            total = total + jnp.where(done, 0.0, reward)
            success = success | (~done & episode_success(terminated, truncated, stats))
            return (obs, env_state, done | terminated | truncated, total, success), None

        init = (obs, env_state, jnp.zeros((count,), bool), jnp.zeros((count,)), jnp.zeros((count,), bool))
        (_, _, _, total, success), _ = jax.lax.scan(body, init, jax.random.split(run_key, space.max_episode_steps))
        return {"return": total, "success": success.astype(jnp.float32)}

    return Inner(agent, init_runner, rollout, update, train, evaluate if space is not None else None)


def own_hparams(config: PPOConfig) -> InnerHparams:
    """The config's own learning rate and entropy coefficient (Python numbers: constants in the compiled program)."""
    return InnerHparams(config.lr, config.ent_coef)


def inner_hparams(config: PPOConfig) -> InnerHparams:
    """The same numbers as float32 arrays, to be stacked and vmapped over runs stepped together."""
    return InnerHparams(jnp.float32(config.lr), jnp.float32(config.ent_coef))


def make_train(config: PPOConfig, env: EnvSpec, objective: Objective, *, curriculum: Curriculum | None = None,
               shaping: Shaping | None = None, heuristic: Heuristic | None = None) -> Callable[[Any, Task, chex.PRNGKey], TrainOutput]:
    return make_inner(config, env, objective, curriculum=curriculum, shaping=shaping, heuristic=heuristic).train


def final_return(output: TrainOutput) -> chex.Array:
    """Mean episodic return at the end of the lifetime (the last *active* update), per leading batch axis."""
    returns = output.metrics["episode_return"]
    active = output.metrics["active"]
    last_active = jnp.sum(active, axis=-1) - 1
    return jnp.take_along_axis(returns, last_active[..., None], axis=-1)[..., 0]
