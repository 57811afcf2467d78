"""The ES outer loop: one generation = ask, sample tasks, evaluate (sharded), sanitize, shape, tell."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.config import MetaTrainConfig
from metarl.meta import fitness as fit
from metarl.meta.base import OuterLoop
from metarl.meta.es import make_es, tree_is_finite
from metarl.meta.tasks import References, make_population_evaluator, sample_member_tasks


@struct.dataclass
class ESLoopState:
    es_state: Any
    generation: jax.Array  # int32
    nonfinite_streak: jax.Array  # consecutive generations in which every member was non-finite


def make_es_outer_loop(config: MetaTrainConfig, evaluate_member, solution, references: References, mesh, chunk: int = 0) -> OuterLoop:
    """``chunk``: members each device evaluates at once (0: its whole share; see :mod:`metarl.meta.memory`)."""
    es = make_es(config.es, solution)
    evaluate = make_population_evaluator(evaluate_member, mesh, chunk)
    population_size = config.es.population_size

    def init(key, meta_params) -> ESLoopState:
        return ESLoopState(es.init(key, meta_params), jnp.int32(0), jnp.int32(0))

    def step(state: ESLoopState, key):
        ask_key, task_key, tell_key = jax.random.split(key, 3)
        population, asked_state = es.ask(ask_key, state.es_state)
        member_tasks = sample_member_tasks(task_key, config)
        fitness, per_env = evaluate(population, member_tasks, references)
        clean, nonfinite = fit.sanitize(fitness)
        utility = fit.shape(clean, config.es.fitness_shaping)
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
        return es.mean(state.es_state)

    return OuterLoop(init, step, params)
