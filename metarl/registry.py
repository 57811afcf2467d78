"""One small registry class, used once per family (envs, objectives, ...).

Every family exposes ``make(name, **kwargs)``, ``register(name, factory)`` and ``names()``.
Unknown or duplicate names raise :class:`RegistryError` listing the known names, so a typo on the
command line is caught before any compile.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Generic, TypeVar

from metarl.errors import RegistryError

T = TypeVar("T")


def check_arguments(what: str, factory: Callable, kwargs: dict) -> None:
    """Refuse keyword arguments ``factory`` does not accept (it takes no ``**kwargs``), naming the allowed ones."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: nothing to check against
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    allowed = [k for k, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "name"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise RegistryError(f"{what} takes no argument {', '.join(map(repr, unknown))}; "
                            f"its arguments: {', '.join(allowed) or '(none)'}")


class Registry(Generic[T]):
    """Name -> factory mapping for one family of components."""

    def __init__(self, family: str):
        self.family = family
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str, factory: Callable[..., T], *, overwrite: bool = False) -> Callable[..., T]:
        """Add ``factory`` under ``name``. Returns the factory, so it can be used as a decorator helper."""
        if not isinstance(name, str) or not name:
            raise RegistryError(f"{self.family} names must be non-empty strings, got {name!r}")
        if not callable(factory):
            raise RegistryError(f"{self.family} factory for {name!r} must be callable")
        if name in self._factories and not overwrite:
            raise RegistryError(
                f"{self.family} {name!r} is already registered; pass overwrite=True to replace it. "
                f"Known: {', '.join(self.names())}"
            )
        self._factories[name] = factory
        return factory

    def check(self, name: str) -> None:
        """Raise a clear error if ``name`` is unknown."""
        if name not in self._factories:
            raise RegistryError(
                f"unknown {self.family} {name!r}; known {self.family}s: {', '.join(self.names())}"
            )

    def get(self, name: str) -> Callable[..., T]:
        self.check(name)
        return self._factories[name]

    def make(self, name: str, **kwargs) -> T:
        """Build the component registered under ``name``; an argument its factory does not take is a
        :class:`RegistryError` naming it and the ones it takes (before anything is built or compiled)."""
        factory = self.get(name)
        check_arguments(f"{self.family} {name!r}", factory, kwargs)
        return factory(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
