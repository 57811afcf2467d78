"""The outer-loop registry: one line per loop, each a module with its config dataclass and
``make(config, problem) -> OuterLoop`` (metarl.meta.base).

A new outer loop is one file (a frozen :class:`metarl.config.OuterConfig` subclass whose ``name`` is its
registry name, and its ``make``) plus one :func:`register` call, also from a user's script or a test:
``metarl meta-train --import my_loop.py outer:my_loop --outer.x 1`` then runs it, with checkpoints,
resume, progress, the verdict and sweeps as for the built-in loops.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

from metarl.config import ESConfig, MetaGradConfig, MetaTrainConfig, OuterConfig
from metarl.errors import RegistryError
from metarl.meta.base import OuterLoop, Problem
from metarl.registry import Registry

REGISTRY: Registry[OuterLoop] = Registry("outer loop")
_CONFIGS: dict[str, type[OuterConfig]] = {}
_CHECKS: dict[str, Callable[[OuterConfig], None]] = {}


def register(name: str, make: Callable[[MetaTrainConfig, Problem], OuterLoop], config: type[OuterConfig], *,
             check: Callable[[OuterConfig], None] | None = None, overwrite: bool = False) -> None:
    """Add the outer loop ``name``: ``make(config, problem)`` builds it for a run whose ``config.outer`` is a
    ``config`` instance (a frozen OuterConfig subclass with ``name`` = ``name`` and defaults for every field).
    ``check(outer_config)``, if given, refuses what the loop's settings name that its config cannot check alone
    (e.g. an evosax algorithm), before anything compiles."""
    if not (isinstance(config, type) and issubclass(config, OuterConfig) and dataclasses.is_dataclass(config)):
        raise RegistryError(f"outer loop {name!r}: its config must be a dataclass subclassing metarl.config.OuterConfig")
    if config.name != name:
        raise RegistryError(f"outer loop {name!r}: its config class {config.__name__} has name {config.name!r}; they must match")
    REGISTRY.register(name, make, overwrite=overwrite)
    _CONFIGS[name] = config
    _CHECKS.pop(name, None)
    if check is not None:
        _CHECKS[name] = check


def check(outer: OuterConfig) -> None:
    """The loop ``outer`` names is registered, and its own check (if it has one) accepts ``outer``."""
    REGISTRY.check(outer.name)
    if outer.name in _CHECKS:
        _CHECKS[outer.name](outer)


def config_class(name: str) -> type[OuterConfig]:
    REGISTRY.check(name)
    return _CONFIGS[name]


def config_classes() -> list[type[OuterConfig]]:
    return [_CONFIGS[name] for name in REGISTRY.names()]


def make(config: MetaTrainConfig, problem: Problem) -> OuterLoop:
    """The loop that ``config.outer`` names, built for ``problem``."""
    return REGISTRY.get(config.outer.name)(config, problem)


def names() -> list[str]:
    return REGISTRY.names()


def _imported_when_used(module: str) -> Callable[[MetaTrainConfig, Problem], OuterLoop]:
    """A built-in loop's ``make``, imported at its first use: reading the registry (the meta-train parser lists
    the loops) imports no loop module, so a user's plug-in loop is never behind a built-in one's imports."""

    def make_loop(config: MetaTrainConfig, problem: Problem) -> OuterLoop:
        return importlib.import_module(module).make(config, problem)

    return make_loop


def _check_es(outer: ESConfig) -> None:
    # the evosax adapter knows the algorithm names; importing evosax's algorithms starts jax's backend, and this
    # registry is read by the meta-train parser of any program, the ones that set XLA flags after parsing too
    from metarl.meta.evosax_adapter import check_algorithm

    check_algorithm(outer.algorithm)


register("es", _imported_when_used("metarl.meta.es_loop"), ESConfig, check=_check_es)
register("metagrad", _imported_when_used("metarl.meta.metagrad"), MetaGradConfig)
