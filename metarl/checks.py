"""The names a config gives, looked up in the registries, before anything is compiled or written.

:mod:`metarl.config` checks what a config says on its own (types, ranges, shapes) and imports nothing of
metarl's registries; this module checks what it names: envs, objectives, curricula, shapings, heuristics,
trackers, the evosax algorithm, and whether a meta-training run has anything to discover. Every command
calls :func:`validate` first; it raises :class:`metarl.errors.ConfigError` (or ``RegistryError``) naming the
field and the allowed values.
"""

from __future__ import annotations

from typing import Any

import jax

from metarl import curricula, envs, objectives
from metarl import shaping as shapings
from metarl.config import (
    HELDOUT_SCORES,
    CurriculumConfig,
    MetaTrainConfig,
    ShapingConfig,
    TaskDistribution,
    TrainConfig,
)
from metarl.envs import LEVEL_ENVS
from metarl.errors import ConfigError
from metarl.io import tracking
from metarl.meta import registry as loops


def validate(config: Any) -> Any:
    """``config.validate()``, then every name it gives; returns the config."""
    config.validate()
    if isinstance(config, TrainConfig):
        check_train(config)
    elif isinstance(config, MetaTrainConfig):
        check_meta_train(config)
    return config


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{field}: {message}")


def level_envs() -> tuple[str, ...]:
    """Registered envs with a level space (a curriculum can choose their levels)."""
    return LEVEL_ENVS


def check_tracker(kind: str) -> None:
    tracking.check(kind)


def check_curriculum(curriculum: CurriculumConfig, env_names) -> None:
    if curriculum.file is not None or curriculum.name == "none":
        return
    curricula.check(curriculum.name)
    for env in env_names:
        _require(envs.make(env).level_space is not None, "curriculum.name",
                 f"env {env!r} has no level space to choose levels from; envs with one: {', '.join(level_envs())}")


def check_shaping(shaping: ShapingConfig, env_names) -> None:
    if shaping.file is not None:
        return
    shapings.check(shaping.name)
    shapings.heuristics.REGISTRY.check(shaping.heuristic)
    heuristic = shapings.heuristics.REGISTRY.make(shaping.heuristic)
    for env in env_names:
        _require(not heuristic.envs or env in heuristic.envs, "shaping.heuristic",
                 f"{shaping.heuristic!r} reads the observations of {', '.join(heuristic.envs)}, not of {env!r}")
    _require(shaping.heuristic != "none" or shaping.name in ("none", "learned"), "shaping.heuristic",
             f"shaping {shaping.name!r} blends a heuristic's reward; name one of {', '.join(shapings.heuristics.REGISTRY.names())}")


def check_tasks(tasks: TaskDistribution) -> None:
    for env in tasks.envs:
        envs.check(env)
    if tasks.fitness in HELDOUT_SCORES:
        for env in tasks.envs:
            _require(envs.make(env).level_space is not None, "tasks.fitness",
                     f"{tasks.fitness} needs envs with held-out levels ({', '.join(level_envs())}), not {env!r}")


def check_train(config: TrainConfig) -> None:
    envs.check(config.env)
    if config.objective_file is None:
        objectives.check(config.objective)
    check_curriculum(config.curriculum, (config.env,))
    check_shaping(config.shaping, (config.env,))
    check_tracker(config.track)


def check_transfer_envs(config: MetaTrainConfig) -> None:
    """Transfer envs exist, were not meta-trained on, and take the run's curriculum and shaping."""
    transfer = config.verdict.transfer_envs
    for env in transfer:
        if env not in envs.names():
            raise ConfigError(f"verdict.transfer_envs: unknown env {env!r}; known: {', '.join(envs.names())}")
        _require(env not in config.tasks.envs, "verdict.transfer_envs",
                 f"{env!r} is a meta-training env (tasks.envs); a transfer env is one meta-training never saw")
    _require(not transfer or config.verdict.num_seeds > 0, "verdict.transfer_envs", "needs a verdict (verdict.num_seeds > 0)")
    check_curriculum(config.curriculum, transfer)
    check_shaping(config.shaping, transfer)


def check_meta_train(config: MetaTrainConfig) -> None:
    objectives.check(config.objective)
    check_tasks(config.tasks)
    check_curriculum(config.curriculum, config.tasks.envs)
    check_shaping(config.shaping, config.tasks.envs)
    check_transfer_envs(config)

    loops.check(config.outer)  # the loop is registered, and its own check (ES: the evosax algorithm) accepts it
    has_params = lambda name, **kwargs: bool(jax.tree.leaves(objectives.make(name, **kwargs).init(jax.random.PRNGKey(0))))
    if not has_params(config.objective, **config.objective_kwargs_dict()) and not (
        config.curriculum.name == "learned" or config.shaping.name in ("blend", "learned")
    ):
        learnable = [n for n in objectives.names() if has_params(n)]
        raise ConfigError(
            f"objective: {config.objective!r} has no meta-parameters to discover; choose one of {', '.join(learnable)}, "
            "or discover a curriculum (--curriculum.name learned) or a shaping (--shaping.name blend|learned)"
        )
    if config.init_from is not None:
        objectives.warm_start(config.init_from, config.objective, config.objective_kwargs_dict())
    check_tracker(config.track)
