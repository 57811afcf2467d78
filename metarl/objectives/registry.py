"""The objective registry: one line per member of the family."""

from __future__ import annotations

from metarl.objectives.base import Objective
from metarl.objectives.dpo import make_dpo
from metarl.objectives.lpo import make_lpo, make_ta_lpo
from metarl.objectives.ppo import make_ppo
from metarl.registry import Registry

REGISTRY: Registry[Objective] = Registry("objective")

REGISTRY.register("ppo", make_ppo)
REGISTRY.register("dpo", make_dpo)
REGISTRY.register("lpo", make_lpo)
REGISTRY.register("ta_lpo", make_ta_lpo)
