"""The ES outer loop: one generation = ask, sample tasks, evaluate (sharded), sanitize, shape, tell.

Its settings are :class:`metarl.config.ESConfig` (``config.outer``); σ and the meta learning rate, with
the inner learning rate and entropy coefficient, are the numbers runs stepped together may vary
(:class:`ESLoopHparams`, traced).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from metarl.config import ESConfig, MetaTrainConfig
from metarl.distributed import population_mesh
from metarl.errors import ConfigError
from metarl.inner.train import inner_hparams
from metarl.meta import fitness as fit
from metarl.meta.base import OuterLoop, Problem, default_status
from metarl.meta.evosax_adapter import ESHparams, es_hparams, make_es, tree_is_finite
from metarl.meta.memory import population_chunk
from metarl.meta.tasks import (
    References,
    make_member_evaluator,
    make_population_evaluator,
    make_stratified_evaluator,
    sample_member_tasks,
    strata_scan_lengths,
    stratum_members,
    with_scan_length,
)
from metarl.types import InnerHparams


@struct.dataclass
class ESLoopState:
    es_state: Any
    generation: jax.Array  # int32
    nonfinite_streak: jax.Array  # consecutive generations in which every member was non-finite


class ESLoopHparams(NamedTuple):
    es: ESHparams
    inner: InnerHparams


def make(config: MetaTrainConfig, problem: Problem) -> OuterLoop:
    """The ES loop for ``problem``: the population mesh over every device, each device evaluating its share
    of the members ``chunk`` at a time (chosen from a memory estimate, metarl.meta.memory)."""
    settings: ESConfig = config.outer
    es = make_es(settings, problem.meta_params)  # refuses an impossible option before the memory analysis compiles
    mesh = population_mesh(settings.population_size)
    scans = strata_scan_lengths(config.tasks, config.ppo)
    if len(scans) == 1:
        evaluate_member = make_member_evaluator(config, problem.objective, problem.env_specs, config.tasks.seeds_per_member,
                                                problem.components)
        longest = evaluate_member
    else:  # one evaluator per lifetime stratum, each scanning to its own longest lifetime
        per_stratum = settings.population_size // len(scans)
        if mesh.size > 1 and per_stratum % mesh.size:
            raise ConfigError(f"tasks.lifetime_strata: each of the {len(scans)} strata holds {per_stratum} members, which the "
                              f"{mesh.size} devices cannot share evenly; choose strata so population_size / strata divides by {mesh.size}")
        evaluate_member = [make_member_evaluator(with_scan_length(config, scan), problem.objective, problem.env_specs,
                                                 config.tasks.seeds_per_member, problem.components) for scan in scans]
        longest = evaluate_member[-1]
    chunk = population_chunk(config, longest, problem.meta_params, mesh.size, problem.env_specs)
    hparams = ESLoopHparams(es_hparams(settings), inner_hparams(config.ppo))
    loop = make_es_outer_loop(config, evaluate_member, problem.meta_params, mesh, chunk, es=es)
    return loop._replace(hparams=hparams)


def describe(row: dict[str, float]) -> tuple[str, str]:
    nonfinite = f"{int(row['nonfinite_members'])} non-finite" if row["nonfinite_members"] else ""
    return f"fitness mean {row['fitness_mean']:.3f} max {row['fitness_max']:.3f}", nonfinite


def make_es_outer_loop(config: MetaTrainConfig, evaluate_member, solution, mesh=None, chunk: int = 0, es=None) -> OuterLoop:
    """``evaluate_member``: metarl.meta.tasks.make_member_evaluator's, or one per lifetime stratum (a list); ``chunk``:
    members each device evaluates at once (0: its whole share; see :mod:`metarl.meta.memory`); ``es``: the strategy,
    if built already."""
    settings: ESConfig = config.outer
    default_es = es if es is not None else make_es(settings, solution)
    population_size = settings.population_size
    if callable(evaluate_member):
        evaluate = make_population_evaluator(evaluate_member, mesh, chunk)
    else:  # per lifetime stratum (tasks.lifetime_strata > 1)
        evaluate = make_stratified_evaluator([make_population_evaluator(m, mesh, chunk) for m in evaluate_member],
                                             stratum_members(config.tasks, population_size, settings.antithetic))

    def init(key, meta_params) -> ESLoopState:
        return ESLoopState(default_es.init(key, meta_params), jnp.int32(0), jnp.int32(0))

    def step(state: ESLoopState, key, references: References, hparams: ESLoopHparams | None = None):
        es = default_es if hparams is None else make_es(settings, solution, hparams.es)
        ask_key, task_key, tell_key = jax.random.split(key, 3)
        population, asked_state = es.ask(ask_key, state.es_state)
        member_tasks = sample_member_tasks(task_key, config, population_size, settings.antithetic)
        fitness, per_env = evaluate(population, member_tasks, references, None if hparams is None else hparams.inner)
        clean, nonfinite = fit.sanitize(fitness)
        utility = fit.shape(clean, settings.fitness_shaping)
        told = es.tell(tell_key, population, fit.to_minimization(utility), asked_state)
        # With no finite member there is nothing to learn from: keep the search distribution as it was.
        all_bad = nonfinite == population_size
        keep_old = all_bad | ~tree_is_finite(es.mean(told))
        es_state = jax.tree.map(lambda old, new: jnp.where(keep_old, old, new), state.es_state, told)
        finite = jnp.isfinite(fitness)
        masked = jnp.where(finite, fitness, jnp.nan)
        metrics = {
            "fitness_mean": jnp.nanmean(masked),
            "fitness_max": jnp.nanmax(masked),
            "fitness_min": jnp.nanmin(masked),
            "fitness_std": jnp.nanstd(masked),
            "nonfinite_members": nonfinite,
            "lifetime_mean": jnp.mean(member_tasks.num_updates.astype(jnp.float32)),
            "env_scores": jnp.nanmean(jnp.where(finite[:, None], per_env, jnp.nan), axis=0),
        }
        new_state = ESLoopState(
            es_state=es_state,
            generation=state.generation + 1,
            nonfinite_streak=jnp.where(all_bad, state.nonfinite_streak + 1, 0),
        )
        return new_state, metrics

    def params(state: ESLoopState):
        return default_es.mean(state.es_state)

    return OuterLoop(init, step, params, default_status, describe, max_nonfinite=settings.max_nonfinite_generations, mesh=mesh)
