"""Environment registry: every gymnax env by its gymnax id, plus metarl's own JAX envs (``GridWorld-*``,
``Maze-levels``, ``Maze-starts``, ``Maze-pocket``, ``Maze-open``) and ``CartPole-levels`` (a level space over CartPole physics).

``make(name, **kwargs) -> EnvSpec``. Register a new env with ``register(name, factory)``.
"""

from __future__ import annotations

import functools

from metarl.envs import gridworld, gymnax_adapter, maze
from metarl.envs.spec import EnvSpec
from metarl.registry import Registry

REGISTRY: Registry[EnvSpec] = Registry("env")

for _env_id in gymnax_adapter.env_ids():
    REGISTRY.register(_env_id, functools.partial(gymnax_adapter.make_gymnax, _env_id))
for _env_id, _configurations in gridworld.registered().items():
    REGISTRY.register(_env_id, functools.partial(gridworld.make_gridworld, _env_id, _configurations))

LEVEL_ENVS = ("CartPole-levels", "Maze-levels", "Maze-starts", "Maze-pocket")  # envs with a level space (curricula choose their levels)
REGISTRY.register("CartPole-levels", gymnax_adapter.make_cartpole_levels)
REGISTRY.register("Maze-levels", maze.make_maze_levels)
REGISTRY.register("Maze-starts", maze.make_maze_starts)
REGISTRY.register("Maze-pocket", maze.make_maze_pocket)
REGISTRY.register("Maze-open", maze.make_maze_open)

make = REGISTRY.make
register = REGISTRY.register
names = REGISTRY.names
check = REGISTRY.check

__all__ = ["EnvSpec", "LEVEL_ENVS", "REGISTRY", "make", "register", "names", "check"]
