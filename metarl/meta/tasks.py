"""Task sampling and population evaluation: fitness = f(vmap over members (vmap over seeds (train))).

Each member gets a lifetime N and a key; with antithetic sampling member i and member i + P/2 (a
mirrored pair in evosax's layout) get the *same* N and key, so their difference measures the
perturbation and not the task. Every member is trained on every env of the distribution; envs have
different shapes, so each has its own compiled ``train`` and the fitness is the mean over envs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from metarl import curricula, stats
from metarl.components import inner_kwargs
from metarl.config import MetaTrainConfig, PPOConfig, TaskDistribution
from metarl.envs.spec import EnvSpec
from metarl.inner.train import level_task, make_inner, make_train
from metarl.meta.fitness import score
from metarl.objectives.base import Objective


class MemberTasks(NamedTuple):
    num_updates: chex.Array  # (P,) int32: lifetime N per member
    keys: chex.Array  # (P, 2): base key per member (per env and seed keys are folded from it)


class References(NamedTuple):
    """Per-env scores for normalization: an untrained agent's and PPO's, at the longest lifetime."""

    initial: chex.Array  # (E,)
    ppo: chex.Array  # (E,)


def sample_lifetimes(key, tasks: TaskDistribution, ppo: PPOConfig, count: int) -> chex.Array:
    lifetimes = jnp.asarray(tasks.lifetimes_for(ppo), jnp.int32)
    if tasks.lifetime_sampling == "choice":
        return jax.random.choice(key, lifetimes, (count,))
    low, high = jnp.log(lifetimes.min()), jnp.log(lifetimes.max())
    sampled = jnp.round(jnp.exp(jax.random.uniform(key, (count,), minval=low, maxval=high)))
    return jnp.clip(sampled, lifetimes.min(), lifetimes.max()).astype(jnp.int32)


def strata_edges(tasks: TaskDistribution, ppo: PPOConfig) -> np.ndarray:
    """(S + 1,) log-lifetime edges of ``tasks.lifetime_strata`` equal log-width strata of min..max."""
    lifetimes = tasks.lifetimes_for(ppo)
    return np.linspace(np.log(min(lifetimes)), np.log(max(lifetimes)), tasks.lifetime_strata + 1)


def strata_scan_lengths(tasks: TaskDistribution, ppo: PPOConfig) -> tuple[int, ...]:
    """Each stratum's scan length: the longest lifetime it can draw (one stratum: ``ppo.num_updates``, as always)."""
    if tasks.lifetime_strata == 1:
        return (ppo.num_updates,)
    longest = max(tasks.lifetimes_for(ppo))
    return tuple(min(longest, math.ceil(round(math.exp(edge), 6))) for edge in strata_edges(tasks, ppo)[1:])


def sample_stratified_lifetimes(key, tasks: TaskDistribution, ppo: PPOConfig, count: int) -> chex.Array:
    """``count`` log-uniform lifetimes, the first count/S in the shortest stratum, the next in the next, ...: each
    stratum a log-uniform draw within its edges, so the population's lifetimes are still log-uniform in min..max."""
    edges, scans = strata_edges(tasks, ppo), strata_scan_lengths(tasks, ppo)
    per = count // tasks.lifetime_strata
    stratum = np.arange(count) // per
    low, high = jnp.asarray(edges[stratum], jnp.float32), jnp.asarray(edges[stratum + 1], jnp.float32)
    sampled = jnp.round(jnp.exp(low + (high - low) * jax.random.uniform(key, (count,))))
    return jnp.clip(sampled, min(tasks.lifetimes_for(ppo)), jnp.asarray(np.asarray(scans)[stratum])).astype(jnp.int32)


def stratum_members(tasks: TaskDistribution, population: int, antithetic: bool) -> list[np.ndarray]:
    """Per stratum, the population indices of its members (with antithetic sampling, member i and its mirror
    i + P/2 share a task and so a stratum)."""
    count = population // 2 if antithetic else population
    per = count // tasks.lifetime_strata
    members = [np.arange(j * per, (j + 1) * per) for j in range(tasks.lifetime_strata)]
    return [np.concatenate([m, m + count]) if antithetic else m for m in members]


def sample_member_tasks(key, config: MetaTrainConfig, population: int, antithetic: bool) -> MemberTasks:
    count = population // 2 if antithetic else population
    lifetime_key, seed_key = jax.random.split(key)
    if config.tasks.lifetime_strata > 1:
        num_updates = sample_stratified_lifetimes(lifetime_key, config.tasks, config.ppo, count)
    else:
        num_updates = sample_lifetimes(lifetime_key, config.tasks, config.ppo, count)
    keys = jax.random.split(seed_key, count)
    if antithetic:
        num_updates = jnp.concatenate([num_updates, num_updates])
        keys = jnp.concatenate([keys, keys])
    return MemberTasks(num_updates, keys)


def diverged(output) -> chex.Array:
    """True if any agent's losses went non-finite during its lifetime.

    A diverged agent still acts (NaN logits sample some action) and so still earns a finite return;
    scoring that return would hide the failure. Its fitness becomes NaN instead: ranked worst, counted.
    """
    active = output.metrics["active"]
    losses = [value for name, value in output.metrics.items() if name.endswith("_loss")]
    return jnp.any(jnp.stack([jnp.any(active & ~jnp.isfinite(loss)) for loss in losses]))


def aggregate_seeds(per_seed: chex.Array, statistic: str) -> chex.Array:
    """A member's score from its runs' scores (leading axis: seeds; any further axes, e.g. held-out levels, are
    averaged within a seed), traceable: the mean of all (as every run before ``seed_statistic`` existed), or the IQM
    of the seeds' means with the weights of :func:`metarl.stats.iqm`, so a fitness aggregated by ``iqm`` equals the
    verdict's statistic on the same values."""
    if statistic == "mean":
        return jnp.mean(per_seed)
    seed_means = jnp.mean(per_seed.reshape(per_seed.shape[0], -1), axis=1)
    weights = jnp.asarray(stats.iqm_weights(seed_means.shape[0]), seed_means.dtype)
    return jnp.sum(jnp.sort(seed_means) * weights) / jnp.sum(weights)


def make_member_evaluator(config: MetaTrainConfig, objective: Objective, env_specs: list[EnvSpec], num_seeds: int, components=None):
    """``evaluate(meta_params, num_updates, key, references, hparams=None) -> (fitness, per-env scores (E,))`` for
    one member. ``components``: per env, the :class:`metarl.components.Components` (curriculum, shaping) its runs use;
    ``hparams``: the inner :class:`metarl.types.InnerHparams` (None: the config's numbers)."""
    components = components or [None] * len(env_specs)
    trains = [make_train(config.ppo, spec, objective, **(inner_kwargs(p) if p else {}))
              for spec, p in zip(env_specs, components, strict=True)]
    tasks = config.tasks

    def evaluate(meta_params, num_updates, key, references: References, hparams=None):
        scores = []
        for index, (spec, train) in enumerate(zip(env_specs, trains, strict=True)):
            seed_keys = jax.random.split(jax.random.fold_in(key, index), num_seeds)
            output = jax.vmap(lambda k, train=train, spec=spec: train(meta_params, level_task(spec, num_updates, k), k, hparams))(seed_keys)
            scores.append(jnp.where(diverged(output), jnp.nan,
                                    aggregate_seeds(score(output, tasks.fitness, tasks.last_k), tasks.seed_statistic)))
        raw = jnp.stack(scores)
        if tasks.normalize:
            span = references.ppo - references.initial  # PPO no better than untrained: score the gain in raw units
            normalized = (raw - references.initial) / jnp.where(jnp.abs(span) > 1e-6, span, 1.0)
        else:
            normalized = raw
        return jnp.mean(normalized), raw

    return evaluate


def make_population_evaluator(evaluate_member, mesh: Mesh | None, chunk: int = 0):
    """vmap over members; with a mesh of several devices, each device evaluates its slice of the population.

    ``chunk`` > 0: each device evaluates its members ``chunk`` at a time (``lax.map`` with a batch size:
    a scan over vmapped chunks), for populations whose runs do not fit in memory at once
    (:mod:`metarl.meta.memory`). Every member's arithmetic is unchanged, and so is its fitness."""

    def local(population, num_updates, keys, references, hparams):
        if chunk <= 0 or chunk >= num_updates.shape[0]:
            return jax.vmap(evaluate_member, in_axes=(0, 0, 0, None, None))(population, num_updates, keys, references, hparams)
        return jax.lax.map(lambda member: evaluate_member(*member, references, hparams), (population, num_updates, keys),
                           batch_size=chunk)

    def evaluate(population, member_tasks: MemberTasks, references: References, hparams=None):
        if mesh is None or mesh.size == 1:
            return local(population, member_tasks.num_updates, member_tasks.keys, references, hparams)
        sharded = jax.shard_map(
            local, mesh=mesh, in_specs=(P("pop"), P("pop"), P("pop"), P(), P()), out_specs=P("pop"), check_vma=False
        )
        return sharded(population, member_tasks.num_updates, member_tasks.keys, references, hparams)

    return evaluate


def make_stratified_evaluator(evaluators: list, members: list[np.ndarray]):
    """One population evaluator per lifetime stratum (each built for its own scan length, see
    :func:`strata_scan_lengths`), each given its stratum's ``members``; fitness and per-env scores come back in
    population order."""
    order = np.argsort(np.concatenate(members))

    def evaluate(population, member_tasks: MemberTasks, references: References, hparams=None):
        fitness, per_env = [], []
        for evaluate_stratum, index in zip(evaluators, members, strict=True):
            taken = jax.tree.map(lambda x, index=index: x[index], population)
            f, e = evaluate_stratum(taken, MemberTasks(member_tasks.num_updates[index], member_tasks.keys[index]), references, hparams)
            fitness.append(f)
            per_env.append(e)
        return jnp.concatenate(fitness)[order], jnp.concatenate(per_env)[order]

    return evaluate


def with_scan_length(config: MetaTrainConfig, num_updates: int) -> MetaTrainConfig:
    """``config`` whose inner loop scans ``num_updates`` updates (its lifetimes and everything else unchanged)."""
    return dataclasses.replace(config, ppo=dataclasses.replace(config.ppo, total_timesteps=num_updates * config.ppo.batch_size))


def first_finite(returns: chex.Array) -> chex.Array:
    """The first non-NaN value along the last axis (the return of the still-untrained agent)."""
    finite = jnp.isfinite(returns)
    index = jnp.argmax(finite, axis=-1)
    return jnp.take_along_axis(returns, index[..., None], axis=-1)[..., 0]


def measure_references(config: MetaTrainConfig, env_specs: list[EnvSpec], ppo_objective: Objective, keys) -> References:
    """PPO at the longest lifetime on every env: its score and the untrained agent's (first episodes, or
    for held-out fitness the untrained agent on the held-out levels), averaged over ``keys`` (one per seed).
    The reference PPO learns from the env reward (no shaping) and, where the run has a curriculum, samples
    levels uniformly."""
    longest = max(config.tasks.lifetimes_for(config.ppo))
    heldout = config.tasks.fitness in ("heldout_return", "heldout_success")
    initial, final = [], []
    for spec in env_specs:
        curriculum = curricula.make("uniform", space=spec.level_space) if config.curriculum.active else None
        inner = make_inner(config.ppo, spec, ppo_objective, curriculum=curriculum)
        output = jax.jit(jax.vmap(lambda k, inner=inner, spec=spec: inner.train({}, level_task(spec, longest, k), k)))(keys)
        final.append(jnp.mean(score(output, config.tasks.fitness, config.tasks.last_k)))
        if heldout:
            what = config.tasks.fitness.removeprefix("heldout_")
            untrained = jax.jit(jax.vmap(lambda k, inner=inner, spec=spec: inner.evaluate(
                inner.init(k, spec.default_params).agent_params, spec.level_space.heldout, k)[what].mean()))(keys)
            initial.append(jnp.mean(untrained))
        else:
            initial.append(jnp.mean(first_finite(output.metrics["episode_return"])))
    return References(jnp.stack(initial), jnp.stack(final))


def as_dict(references: References, env_names: list[str]) -> dict[str, Any]:
    return {name: {"initial": float(i), "ppo": float(p)} for name, i, p in zip(env_names, references.initial, references.ppo, strict=True)}
