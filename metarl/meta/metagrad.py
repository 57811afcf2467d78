"""The meta-gradient outer loop: truncated backpropagation through K inner updates (optax meta-optimizer).

State: the meta-parameters η, the meta-optimizer state, and a batch of inner agents per env, each at
its own update n of its own lifetime N (sampled like ES tasks: log-uniform or from a list) on its own
level. One outer step, for every agent:

1. K inner updates θ_n → θ_{n+K} with the objective's η (the same ``update`` the inner loop scans;
   updates past N leave the agent frozen);
2. a validation rollout with θ_{n+K} and the meta-loss
   ``−mean(log π_θ(a|s) · Â) − ent_coef · H(π_θ) + mean_k(meta_regularizer_k)``
   where Â is the reward-to-go inside the validation rollout (episode-aware, discounted, normalized):
   it needs no value head, so it serves every agent kind. ``meta_regularizer`` is what a target
   objective emits for its targets (LPG's β1..β3), zero otherwise;
3. ∇η of the mean meta-loss over agents and envs, by ``jax.grad`` through steps 1–2 (the data an agent
   collects depends on η only through sampled actions, which carry no gradient: the meta-gradient is
   exact for the meta-loss as a function of η with the keys fixed);
4. an optax step on η (skipped, and counted, when the gradient is non-finite); agents whose lifetime
   ended start over on a fresh task.

Every key comes from the step key, so a resumed run is bit-identical (the agents live in the state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from metarl.components import inner_kwargs
from metarl.config import MetaTrainConfig
from metarl.envs.spec import EnvSpec
from metarl.errors import ConfigError
from metarl.inner.train import make_inner
from metarl.meta.base import OuterLoop, Problem, default_status
from metarl.meta.evosax_adapter import tree_is_finite
from metarl.meta.tasks import sample_lifetimes
from metarl.objectives.base import Objective
from metarl.objectives.registry import resolved_kwargs
from metarl.types import LifetimeContext, Task


@struct.dataclass
class MetaGradState:
    meta_params: Any
    opt_state: Any
    runners: tuple  # per env: RunnerState batched over agents
    tasks: tuple  # per env: Task batched over agents
    updates_done: tuple  # per env: (A,) int32, the agent's update index n
    generation: jax.Array
    nonfinite_streak: jax.Array  # consecutive steps with a non-finite meta-gradient


def reward_to_go(reward, episode_end, discount):
    """(T, E): Σ_k γ^k r_{t+k} up to the episode's end or the rollout's end (no bootstrap)."""

    def body(next_return, inputs):
        r, end = inputs
        g = r + discount * jnp.where(end, 0.0, next_return)
        return g, g

    _, returns = jax.lax.scan(body, jnp.zeros_like(reward[0]), (reward, episode_end), reverse=True)
    return returns


def make(config: MetaTrainConfig, problem: Problem) -> OuterLoop:
    """The meta-gradient loop for ``problem`` (one device; its settings are ``config.outer``)."""
    check_differentiable_start(config)
    loop = make_metagrad(config, problem.objective, problem.env_specs, problem.components)
    step = lambda state, key, references=None, hparams=None: loop.step(state, key)
    return OuterLoop(loop.init, step, loop.params, default_status, describe, max_nonfinite=config.outer.max_nonfinite_generations,
                     nonfinite_what="the meta-gradient was", unit="step")


def describe(row: dict[str, float]) -> tuple[str, str]:
    bad = "non-finite meta-gradient (skipped)" if row["nonfinite_members"] else ""
    return f"meta-loss {row['meta_loss']:.3f} · agent return {row['agent_return_mean']:.2f}", bad


def check_differentiable_start(config: MetaTrainConfig) -> None:
    """The meta-gradient loop needs a drift whose gradient in η is not zero where the inner ratios live. The
    exact-mirror LPO family with its offset (objectives/lpo.py) is exactly zero near r = 1 at its small
    initial scale: every meta-gradient would be 0, and the run would report nothing wrong."""
    kwargs = resolved_kwargs(config.objective, config.objective_kwargs_dict())
    if kwargs.get("mirror") and kwargs.get("offset", 0) > 0:
        raise ConfigError(
            f"objective_kwargs: with outer:metagrad, {config.objective}'s drift must not start flat: with mirror=true its "
            f"offset {kwargs['offset']:g} makes the initial drift exactly zero for |r - 1| < ~0.3, so every meta-gradient is 0; "
            "pass --objective-kwargs '{\"offset\": 0}' (or mirror=false, the original parameterization)"
        )


def make_meta_optimizer(config: MetaTrainConfig) -> optax.GradientTransformation:
    settings = config.outer
    base = optax.adam(settings.lr) if settings.optimizer == "adam" else optax.sgd(settings.lr)
    return optax.chain(optax.clip_by_global_norm(settings.max_grad_norm), base)


class MetaGrad(NamedTuple):
    """The outer loop's functions plus ``meta_loss(η, state) -> (loss, aux)``, the differentiated objective."""

    init: Callable
    step: Callable
    params: Callable
    meta_loss: Callable


def make_metagrad(config: MetaTrainConfig, objective: Objective, env_specs: list[EnvSpec], components=None) -> MetaGrad:
    """``components``: per env, a :class:`metarl.components.Components` whose shaping the agents learn from (the
    meta-loss reads the env reward, so a learned shaping is meta-learned by the same gradient)."""
    settings = config.outer
    components = components or [None] * len(env_specs)
    inners = [make_inner(config.ppo, spec, objective, differentiable=True, **(inner_kwargs(p) if p else {}))
              for spec, p in zip(env_specs, components, strict=True)]
    optimizer = make_meta_optimizer(config)
    num_agents, truncation = settings.num_agents, settings.truncation

    def new_agents(key, index: int):
        """Fresh agents of env ``index``: a lifetime, a level and an initialized runner each."""
        spec, inner = env_specs[index], inners[index]
        lifetime_key, level_key, init_key = jax.random.split(key, 3)
        lifetimes = sample_lifetimes(lifetime_key, config.tasks, config.ppo, num_agents)
        levels = jax.vmap(spec.level)(jax.random.split(level_key, num_agents))
        tasks = Task(lifetimes, levels)
        runners = jax.vmap(inner.init)(jax.random.split(init_key, num_agents), levels)
        return runners, tasks

    def agent_meta_loss(meta_params, inner, runner, task: Task, start):
        """K updates of one agent, then its meta-loss on a validation rollout."""

        def body(runner, offset):
            n = start + offset
            active = n < task.num_updates
            updated, metrics = inner.update(runner, meta_params, task.env_params, LifetimeContext(n, task.num_updates))
            runner = jax.tree.map(lambda new, old: jnp.where(active, new, old), updated, runner)
            regularizer = metrics.get("meta_regularizer", jnp.float32(0.0))
            return runner, (jnp.where(active, regularizer, 0.0), metrics["episode_return"])

        runner, (regularizers, returns) = jax.lax.scan(body, runner, jnp.arange(truncation, dtype=jnp.int32))
        runner, trajectory = inner.rollout(runner, task.env_params)
        policy, _ = inner.agent.network.apply(runner.agent_params, trajectory.obs)
        dist = inner.agent.dist
        log_prob = dist.log_prob(policy, trajectory.action)
        entropy = jnp.mean(dist.entropy(policy))
        returns_to_go = reward_to_go(trajectory.reward, trajectory.episode_end, config.ppo.gamma)
        advantages = (returns_to_go - returns_to_go.mean()) / (returns_to_go.std() + 1e-8)
        loss = -jnp.mean(log_prob * advantages) - config.ppo.ent_coef * entropy + jnp.mean(regularizers)
        return loss, (runner, returns[-1])

    def meta_loss(meta_params, state: MetaGradState):
        losses, runners, env_returns = [], [], []
        for index, inner in enumerate(inners):
            batched = jax.vmap(agent_meta_loss, in_axes=(None, None, 0, 0, 0))
            loss, (runner, last_return) = batched(meta_params, inner, state.runners[index], state.tasks[index], state.updates_done[index])
            losses.append(jnp.mean(loss))
            runners.append(runner)
            env_returns.append(jnp.nanmean(last_return))
        return jnp.mean(jnp.stack(losses)), (tuple(runners), jnp.stack(env_returns))

    def init(key, meta_params) -> MetaGradState:
        runners, tasks = zip(*[new_agents(jax.random.fold_in(key, index), index) for index in range(len(inners))], strict=True)
        return MetaGradState(
            meta_params=meta_params,
            opt_state=optimizer.init(meta_params),
            runners=tuple(runners),
            tasks=tuple(tasks),
            updates_done=tuple(jnp.zeros(num_agents, jnp.int32) for _ in inners),
            generation=jnp.int32(0),
            nonfinite_streak=jnp.int32(0),
        )

    def step(state: MetaGradState, key):
        (loss, (runners, env_returns)), grads = jax.value_and_grad(meta_loss, has_aux=True)(state.meta_params, state)
        finite = tree_is_finite(grads) & jnp.isfinite(loss)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.meta_params)
        meta_params = optax.apply_updates(state.meta_params, updates)
        meta_params = jax.tree.map(lambda new, old: jnp.where(finite, new, old), meta_params, state.meta_params)
        opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old), opt_state, state.opt_state)

        new_runners, new_tasks, new_done = [], [], []
        for index in range(len(inners)):
            done = state.updates_done[index] + truncation
            finished = done >= state.tasks[index].num_updates

            def restart(old, finished=finished, index=index):
                """Agents whose lifetime ended start over; built only on steps where one did."""
                fresh = new_agents(jax.random.fold_in(key, index), index)

                def pick(new, previous):
                    return jnp.where(finished.reshape(finished.shape + (1,) * (previous.ndim - 1)), new, previous)

                return jax.tree.map(pick, fresh, old)

            runner, task = jax.lax.cond(jnp.any(finished), restart, lambda old: old, (runners[index], state.tasks[index]))
            new_runners.append(runner)
            new_tasks.append(task)
            new_done.append(jnp.where(finished, 0, done))

        grad_norm = optax.tree.norm(grads)
        metrics = {
            "meta_loss": loss,
            "meta_grad_norm": grad_norm,
            "agent_return_mean": jnp.nanmean(env_returns),
            "nonfinite_members": (~finite).astype(jnp.int32),
            "lifetime_mean": jnp.mean(jnp.stack([t.num_updates for t in state.tasks]).astype(jnp.float32)),
            "env_scores": env_returns,
        }
        new_state = MetaGradState(
            meta_params=meta_params,
            opt_state=opt_state,
            runners=tuple(new_runners),
            tasks=tuple(new_tasks),
            updates_done=tuple(new_done),
            generation=state.generation + 1,
            nonfinite_streak=jnp.where(finite, 0, state.nonfinite_streak + 1),
        )
        return new_state, metrics

    def params(state: MetaGradState):
        return state.meta_params

    return MetaGrad(init, step, params, meta_loss)
