"""The objective registry: one line per member of the family."""

from __future__ import annotations

import inspect

import jax

from metarl.compat import OBJECTIVE_DEFAULT_CHANGES
from metarl.errors import ConfigError, LearnedFileError
from metarl.io.learned import LearnedComponent, check_params_like, load_learned, save_learned
from metarl.objectives.base import Objective
from metarl.objectives.dpo import make_dpo
from metarl.objectives.lpg import make_lpg, make_pg_td, make_ta_lpg
from metarl.objectives.lpo import embed_lpo, make_lpo, make_ta_lpo
from metarl.objectives.ppo import make_ppo
from metarl.registry import Registry

REGISTRY: Registry[Objective] = Registry("objective")

REGISTRY.register("ppo", make_ppo)
REGISTRY.register("dpo", make_dpo)
REGISTRY.register("lpo", make_lpo)
REGISTRY.register("ta_lpo", make_ta_lpo)
REGISTRY.register("lpg", make_lpg)
REGISTRY.register("ta_lpg", make_ta_lpg)
REGISTRY.register("pg_td", make_pg_td)


# Factory arguments added after learned files were written, with the value that reproduces those files'
# meaning. A file stores every factory argument (see `save`), so this applies to old files only.
LEGACY_KWARGS = {name: {k: old for k, (old, _) in changes.items()} for name, changes in OBJECTIVE_DEFAULT_CHANGES.items()}


def resolved_kwargs(name: str, kwargs: dict) -> dict:
    """``kwargs`` with every other argument of the factory at its default: a file that records them keeps
    its meaning when a default changes later."""
    parameters = inspect.signature(REGISTRY.get(name)).parameters
    defaults = {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty and k != "name"}
    return {**defaults, **kwargs}


def save(path, name: str, kwargs: dict, meta_params, metadata: dict | None = None):
    """Write a learned objective file that `load` (and `metarl train --objective-file`) reads back."""
    REGISTRY.check(name)
    component = LearnedComponent("objective", name, resolved_kwargs(name, dict(kwargs)), meta_params, dict(metadata or {}))
    return save_learned(path, component)


def load(path) -> tuple[Objective, object, dict]:
    """Rebuild ``(objective, meta_params, kwargs)`` from a learned file, checking family, name and shapes."""
    component = load_learned(path, family="objective")
    if component.name not in REGISTRY:
        raise LearnedFileError(f"{path}: objective {component.name!r} is not registered; known: {', '.join(REGISTRY.names())}"
                               "; a plug-in's file needs its module: add --import MODULE_OR_FILE.py to the command")
    kwargs = {**LEGACY_KWARGS.get(component.name, {}), **component.kwargs}
    objective = REGISTRY.make(component.name, **kwargs)
    reference = objective.init(jax.random.PRNGKey(0))
    return objective, check_params_like(path, component.params, reference), kwargs


def warm_start(path, name: str, kwargs: dict):
    """The start of a search for objective ``name`` (with ``kwargs``) from the learned file at ``path``: that
    file's meta-parameters for the same objective and arguments, or for ``ta_lpo`` an LPO file embedded with zero
    context weights (:func:`metarl.objectives.lpo.embed_lpo`, the same drift at every n/N and N)."""
    source, params, source_kwargs = load(path)
    target_kwargs = resolved_kwargs(name, dict(kwargs))
    reference = REGISTRY.make(name, **kwargs).init(jax.random.PRNGKey(0))
    if source.name == name:
        if source_kwargs != target_kwargs:
            changed = sorted(k for k in set(source_kwargs) | set(target_kwargs) if source_kwargs.get(k) != target_kwargs.get(k))
            raise ConfigError(f"init_from: {path} holds {name} with other arguments ({', '.join(changed)}); "
                              "pass the file's values in objective_kwargs")
        return params
    if source.name == "lpo" and name == "ta_lpo" and not source_kwargs.get("progress") and not source_kwargs.get("log_horizon"):
        return embed_lpo(params, source_kwargs, target_kwargs, reference)
    raise ConfigError(f"init_from: {path} holds objective {source.name!r}; a search for {name!r} can start from a "
                      f"file of {name!r}" + (" or of 'lpo'" if name == "ta_lpo" else ""))
