"""Learned and hand-designed RL objectives (one registry).

``make(name, **kwargs) -> Objective``; ``register(name, factory)`` adds one, also from a user's script.
``save``/``load`` write and read learned-objective files; ``warm_start`` starts a search from one.
"""

from metarl.objectives.base import DriftInputs, Objective, TargetInputs, TrajectoryInputs, drift_objective, no_meta_params
from metarl.objectives.registry import REGISTRY, load, save, warm_start

make = REGISTRY.make
register = REGISTRY.register
names = REGISTRY.names
check = REGISTRY.check

__all__ = [
    "DriftInputs", "Objective", "TargetInputs", "TrajectoryInputs", "drift_objective", "no_meta_params",
    "REGISTRY", "make", "register", "names", "check", "load", "save", "warm_start",
]
