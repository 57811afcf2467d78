"""The shaping interface: the reward (and discount) the agent learns from, made from the env reward r and
a heuristic's auxiliary reward r_aux.

``init(key) -> η_s`` (``{}`` for hand-designed shapings);
``apply(η_s, inputs: ShapingInputs, ctx) -> Shaped(reward, discount)`` over a whole rollout (T, E).

The env's own reward is what fitness and evaluation read (the inner loop logs episode returns before
shaping); the shaped reward only ever reaches the agent's learning targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex


class ShapingInputs(NamedTuple):
    obs: chex.Array  # (T, E, *obs)
    action: chex.Array
    next_obs: chex.Array  # the observation reached (before any auto-reset)
    reward: chex.Array  # env reward (times ppo.reward_scale)
    aux_reward: chex.Array  # the heuristic's r_aux
    terminated: chex.Array
    episode_end: chex.Array


class Shaped(NamedTuple):
    reward: chex.Array  # (T, E)
    discount: chex.Array  # () or (T, E): the discount the agent's targets use


class Shaping(NamedTuple):
    name: str
    init: Callable[[chex.PRNGKey], Any]
    apply: Callable[..., Shaped]
