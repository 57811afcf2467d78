"""The shaping registry: ``make(name, heuristic, gamma, obs_size, **kwargs) -> Shaping``, one line per shaping."""

from __future__ import annotations

from metarl.registry import Registry
from metarl.shaping import shapings
from metarl.shaping.base import Shaping


def _without_obs(factory):
    """Factories that do not read observations ignore ``obs_size``."""
    return lambda heuristic, gamma, obs_size, **kwargs: factory(heuristic, gamma, **kwargs)


REGISTRY: Registry[Shaping] = Registry("shaping")

HAND_DESIGNED = ("none", "naive", "potential")
"""The shapings without meta-parameters: a discovered shaping (any other entry) is judged against each of them."""

REGISTRY.register("none", _without_obs(shapings.make_none))
REGISTRY.register("naive", _without_obs(shapings.make_naive))
REGISTRY.register("potential", _without_obs(shapings.make_potential))
REGISTRY.register("blend", shapings.make_blend)
REGISTRY.register("learned", shapings.make_learned)
