"""What the inner loop needs to know about an environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, eq=False)
class EnvSpec:
    """Static structure of an environment plus pure ``reset``/``step`` functions.

    ``reset(key, params) -> (obs, state)``
    ``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, stats)``

    ``step`` auto-resets: ``obs`` is the first observation of the next episode when
    ``terminated | truncated``; ``stats["final_observation"]`` is the observation reached before the reset
    (used to bootstrap truncated episodes). ``stats`` also carries ``episode_return``,
    ``episode_length`` (of the episode that ended at this step) and ``episode_done``.

    ``sample_params(key) -> params`` draws a level when the env is a *distribution* of levels (metarl's
    grid worlds); for a single env it is ``None`` and :meth:`level` returns ``default_params``.
    ``level_space`` (a :class:`metarl.envs.levels.LevelSpace`) is the bank of levels a curriculum picks from,
    with each level's difficulty and held-out hardest levels; ``None`` for envs without one.
    """

    name: str
    reset: Callable
    step: Callable
    default_params: Any
    obs_shape: tuple[int, ...]
    action_kind: str  # "discrete" | "continuous"
    action_dim: int
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    sample_params: Callable | None = None
    level_space: Any = None  # a metarl.envs.levels.LevelSpace when a curriculum can choose this env's levels

    def level(self, key) -> Any:
        """The env params one task trains on: a sampled level for a distribution, else the defaults."""
        if self.sample_params is None:
            return self.default_params
        return self.sample_params(key)
