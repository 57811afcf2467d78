"""Curricula: which levels of an env's level space each update trains on (one registry).

``make(name, space, **kwargs) -> Curriculum``; ``register(name, factory)`` adds one. ``"none"`` (the
default everywhere) is no curriculum at all: the inner loop trains on the task's level as before.
"""

from metarl.curricula.base import Curriculum, CurriculumState, LevelSignals
from metarl.curricula.registry import HAND_DESIGNED, NONE, REGISTRY

make = REGISTRY.make
register = REGISTRY.register
names = REGISTRY.names
check = REGISTRY.check

__all__ = ["HAND_DESIGNED", "Curriculum", "CurriculumState", "LevelSignals", "NONE", "REGISTRY", "make", "register", "names", "check"]
