"""The one module that imports evosax (0.3): algorithms by name, behind ask / tell / mean.

metarl shapes fitness itself (``metarl.meta.fitness``) so that shaping, the non-finite policy and the
sign convention are the same for every algorithm. Algorithms whose default shaping is a generic one
(centered rank, z-score, ...) get evosax's identity shaping so metarl's is not applied twice; those with
their own rank weights (CMA-ES, SNES, ...) keep them (they only use the order metarl's utilities give).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from evosax.algorithms import algorithms as EVOSAX_ALGORITHMS
from evosax.algorithms.distribution_based import distribution_based_algorithms
from evosax.core import fitness_shaping as evosax_shaping

from metarl.errors import ConfigError

_GENERIC_SHAPINGS = (
    evosax_shaping.identity_fitness_shaping_fn,
    evosax_shaping.centered_rank_fitness_shaping_fn,
    evosax_shaping.standardize_fitness_shaping_fn,
    evosax_shaping.normalize_fitness_shaping_fn,
)
# Population-based algorithms (GAs, PSO, ...) keep a population rather than a search distribution;
# metarl's outer loop needs a mean to export and evaluate.
_DISTRIBUTION_BASED = frozenset(distribution_based_algorithms)


def _needs_more_than_a_solution(name: str) -> bool:
    """Algorithms whose constructor requires arguments metarl has no setting for (SV_Open_ES and SV_CMA_ES need
    ``num_populations``, RandomSearch a ``sampling_fn``): offering them would end in a TypeError inside evosax."""
    required = [p.name for p in inspect.signature(EVOSAX_ALGORITHMS[name].__init__).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return set(required) - {"self", "population_size", "solution"} != set()


def algorithm_names() -> list[str]:
    return sorted(name for name in EVOSAX_ALGORITHMS if name in _DISTRIBUTION_BASED and not _needs_more_than_a_solution(name))


def _init_parameters(name: str) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(EVOSAX_ALGORITHMS[name].__init__).parameters)


def supports_antithetic(name: str) -> bool:
    return "use_antithetic_sampling" in _init_parameters(name)


def check_algorithm(name: str) -> None:
    if name not in algorithm_names():
        raise ConfigError(f"outer.algorithm: unknown evosax algorithm {name!r}; known: {', '.join(algorithm_names())}")


class EvolutionStrategy(NamedTuple):
    """Pure functions over an evosax state; ``ask`` returns the population as a pytree like the solution."""

    init: Any  # (key, mean_pytree) -> state
    ask: Any  # (key, state) -> (population, state)
    tell: Any  # (key, population, fitness_to_minimize, state) -> state
    mean: Any  # state -> mean pytree
    population_size: int


class ESHparams(NamedTuple):
    """The ES numbers that runs stepped together may vary (vmapped over, as evosax keeps its ``params`` apart
    from the static strategy): the initial search standard deviation σ and the meta learning rate."""

    sigma: Any
    lr: Any


def es_hparams(config) -> ESHparams:
    """``config``'s σ and learning rate as float32 arrays, to be stacked over runs stepped together."""
    return ESHparams(jnp.float32(config.sigma), jnp.float32(config.lr))


def _decay(start, rate: float, floor: float):
    """start · rate^g, never below ``floor`` (0: no floor). optax clips at ``end_value`` from below only when the
    rate is < 1 (from above otherwise), so a constant schedule takes none."""
    end_value = floor if floor > 0 and rate < 1 else None
    return optax.exponential_decay(start, transition_steps=1, decay_rate=rate, end_value=end_value)


def make_es(config, solution: Any, hparams: ESHparams | None = None) -> EvolutionStrategy:
    """``config``: a :class:`metarl.config.ESConfig`; ``hparams``: σ and the learning rate, when they are
    traced (default: the config's numbers, constants of the compiled program)."""
    check_algorithm(config.algorithm)
    sigma, lr = (config.sigma, config.lr) if hparams is None else hparams
    if config.antithetic and not supports_antithetic(config.algorithm):
        raise ConfigError(
            f"outer.antithetic: {config.algorithm} does not sample antithetic pairs; pass --outer.no-antithetic "
            f"(antithetic sampling is available with: "
            f"{', '.join(n for n in algorithm_names() if supports_antithetic(n))})"
        )
    parameters = _init_parameters(config.algorithm)
    kwargs: dict[str, Any] = {}
    if "optimizer" in parameters:
        schedule = _decay(lr, config.lr_decay, config.lr_floor)
        kwargs["optimizer"] = optax.adam(schedule, b1=config.adam_b1) if config.optimizer == "adam" else optax.sgd(schedule)
    if "std_schedule" in parameters:
        kwargs["std_schedule"] = _decay(sigma, config.sigma_decay, config.sigma_floor)
    if "use_antithetic_sampling" in parameters:
        kwargs["use_antithetic_sampling"] = config.antithetic
    shaping = parameters.get("fitness_shaping_fn")
    if shaping is not None and shaping.default in _GENERIC_SHAPINGS:
        kwargs["fitness_shaping_fn"] = evosax_shaping.identity_fitness_shaping_fn
    try:
        strategy = EVOSAX_ALGORITHMS[config.algorithm](config.population_size, solution, **kwargs)
    except AssertionError as error:  # evosax checks its arguments with asserts (Open_ES, PGPE, ...: an even population)
        raise ConfigError(f"outer.population_size: {config.algorithm} refuses {config.population_size} members: {error} "
                          f"(evosax; outer.algorithm {config.algorithm})") from None
    params = strategy.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=sigma)

    def init(key, mean):
        return strategy.init(key, mean, params)

    def ask(key, state):
        return strategy.ask(key, state, params)

    def tell(key, population, fitness_to_minimize, state):
        state, _ = strategy.tell(key, population, fitness_to_minimize, state, params)
        return state

    def mean(state):
        return strategy.get_mean(state)

    return EvolutionStrategy(init, ask, tell, mean, config.population_size)


def tree_is_finite(tree) -> jax.Array:
    leaves = [jax.numpy.all(jax.numpy.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jax.numpy.all(jax.numpy.stack(leaves)) if leaves else jax.numpy.bool_(True)
