"""Reward shaping: the reward the agent learns from, made from the env reward and a heuristic (two registries).

``make(name, heuristic, gamma, obs_size, **kwargs) -> Shaping``; ``heuristics.REGISTRY`` holds the
auxiliary rewards. Fitness and evaluation always read the env's own reward.
"""

from metarl.shaping import heuristics
from metarl.shaping.base import Shaped, Shaping, ShapingInputs
from metarl.shaping.registry import HAND_DESIGNED, REGISTRY

make = REGISTRY.make
register = REGISTRY.register
names = REGISTRY.names
check = REGISTRY.check

__all__ = ["HAND_DESIGNED", "Shaped", "Shaping", "ShapingInputs", "REGISTRY", "heuristics", "make", "register", "names", "check"]
