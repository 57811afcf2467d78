"""The curriculum registry: ``make(name, space, **kwargs) -> Curriculum``, one line per sampler."""

from __future__ import annotations

from metarl.curricula.base import Curriculum
from metarl.curricula.learned import make_learned
from metarl.curricula.samplers import make_hardest, make_learnability, make_learnability_weighted, make_plr, make_sec, make_uniform
from metarl.registry import Registry

REGISTRY: Registry[Curriculum] = Registry("curriculum")

REGISTRY.register("uniform", make_uniform)
REGISTRY.register("hardest", make_hardest)
REGISTRY.register("sec", make_sec)
REGISTRY.register("plr", make_plr)
REGISTRY.register("learnability", make_learnability)
REGISTRY.register("learnability_weighted", make_learnability_weighted)
HAND_DESIGNED = ("uniform", "hardest", "sec", "plr", "learnability", "learnability_weighted")
"""The samplers without meta-parameters: a discovered curriculum (any other entry) is judged against each of them."""


def make_learned_curriculum(space, hidden: int = 16, progress: bool = True, base: str = "uniform") -> Curriculum:
    """``learned`` (:mod:`metarl.curricula.learned`); ``base``: the hand-designed sampler its scorer is a residual on
    (``uniform``: the plain scorer)."""
    if base not in HAND_DESIGNED:
        raise ValueError(f"learned curriculum base must be one of {', '.join(HAND_DESIGNED)} (a hand-designed sampler), got {base!r}")
    return make_learned(space, hidden, progress, None if base == "uniform" else REGISTRY.make(base, space=space))


REGISTRY.register("learned", make_learned_curriculum)

NONE = "none"  # no curriculum: every env trains on the task's own level (not a registry entry)
