"""Build the curriculum and shaping of a run from its config (or a learned file), and the joint
meta-parameters {objective, curriculum, shaping} the outer loop evolves.

A curriculum is built per env (each env has its own level bank) but its meta-parameters are shared: the
learned scorer reads per-level features, whatever the bank's size. A shaping's meta-parameters depend
on the observation size, so a run that learns one needs envs of one observation shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from metarl import curricula, shaping
from metarl.config import CurriculumConfig, ShapingConfig
from metarl.envs.spec import EnvSpec
from metarl.errors import ConfigError, LearnedFileError
from metarl.io.learned import LearnedComponent, check_params_like, load_learned, save_learned
from metarl.types import MetaParams


class Components(NamedTuple):
    """For one env: the curriculum, shaping and heuristic to pass to ``make_inner`` (None when off), and
    the meta-parameters of the curriculum and shaping (from a learned file, else their initial values)."""

    curriculum: Any
    shaping: Any
    heuristic: Any
    curriculum_params: Any
    shaping_params: Any


def _obs_size(env: EnvSpec) -> int:
    return int(np.prod(env.obs_shape))


def build_curriculum(config: CurriculumConfig, env: EnvSpec, key):
    if config.file is not None:
        return load_curriculum(config.file, env)
    if not config.active:
        return None, {}
    try:
        curriculum = curricula.make(config.name, space=env.level_space, **config.kwargs_dict())
    except (TypeError, ValueError) as error:
        raise ConfigError(f"curriculum.kwargs: {error}") from None
    return curriculum, curriculum.meta_init(key)


def build_shaping(config: ShapingConfig, env: EnvSpec, gamma: float, key):
    if config.file is not None:
        return load_shaping(config.file, env, gamma)
    if not config.active:
        return None, None, {}
    heuristic = shaping.heuristics.REGISTRY.make(config.heuristic)
    try:
        built = shaping.make(config.name, heuristic=heuristic, gamma=gamma, obs_size=_obs_size(env), **config.kwargs_dict())
    except (TypeError, ValueError) as error:
        raise ConfigError(f"shaping.kwargs: {error}") from None
    return built, heuristic, built.init(key)


def build(curriculum: CurriculumConfig, shaping: ShapingConfig, env: EnvSpec, gamma: float, key) -> Components:
    curriculum_key, shaping_key = jax.random.split(jax.random.fold_in(key, 0xC0DE))
    built_curriculum, curriculum_params = build_curriculum(curriculum, env, curriculum_key)
    built_shaping, heuristic, shaping_params = build_shaping(shaping, env, gamma, shaping_key)
    return Components(built_curriculum, built_shaping, heuristic, curriculum_params, shaping_params)


def inner_kwargs(components: Components) -> dict[str, Any]:
    return {"curriculum": components.curriculum, "shaping": components.shaping, "heuristic": components.heuristic}


def joint(objective_params, components: Components) -> MetaParams:
    return MetaParams(objective_params, components.curriculum_params, components.shaping_params)


def check_shared_params(per_env: list[Components], env_names) -> None:
    """Envs of one run share η_c and η_s: their shapes must agree."""
    shapes = [jax.tree.map(np.shape, (p.curriculum_params, p.shaping_params)) for p in per_env]
    for name, shape in zip(env_names[1:], shapes[1:], strict=True):
        if shape != shapes[0]:
            raise ConfigError(f"tasks.envs: {env_names[0]!r} and {name!r} give the learned shaping parameters of different "
                              "shapes (observation sizes differ); meta-train a learned shaping on envs of one observation shape")


# --- learned files (family "curriculum" / "shaping") ---


def save(path, family: str, config, params, metadata: dict) -> Path:
    kwargs = dict(config.kwargs_dict())
    if family == "shaping":
        kwargs["heuristic"] = config.heuristic
    return save_learned(path, LearnedComponent(family, config.name, kwargs, params, dict(metadata)))


def load_curriculum(path, env: EnvSpec):
    component = load_learned(path, family="curriculum")
    if component.name not in curricula.REGISTRY:
        raise LearnedFileError(f"{path}: curriculum {component.name!r} is not registered; known: {', '.join(curricula.names())}"
                               "; a plug-in's file needs its module: add --import MODULE_OR_FILE.py to the command")
    if env.level_space is None:
        raise ConfigError(f"curriculum.file: env {env.name!r} has no level space for the curriculum in {path}")
    curriculum = curricula.make(component.name, space=env.level_space, **component.kwargs)
    return curriculum, check_params_like(path, component.params, curriculum.meta_init(jax.random.PRNGKey(0)))


def load_shaping(path, env: EnvSpec, gamma: float):
    component = load_learned(path, family="shaping")
    kwargs = dict(component.kwargs)
    heuristic_name = kwargs.pop("heuristic", "none")
    if component.name not in shaping.REGISTRY or heuristic_name not in shaping.heuristics.REGISTRY:
        raise LearnedFileError(f"{path}: shaping {component.name!r} with heuristic {heuristic_name!r} is not registered"
                               "; a plug-in's file needs its module: add --import MODULE_OR_FILE.py to the command")
    heuristic = shaping.heuristics.REGISTRY.make(heuristic_name)
    built = shaping.make(component.name, heuristic=heuristic, gamma=gamma, obs_size=_obs_size(env), **kwargs)
    return built, heuristic, check_params_like(path, component.params, built.init(jax.random.PRNGKey(0)))
