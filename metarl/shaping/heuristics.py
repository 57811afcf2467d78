"""Heuristic auxiliary rewards r_aux(s, a, s') and the potentials Φ(s) they come from (one registry).

A heuristic is domain knowledge that may help or mislead; a shaping (:mod:`metarl.shaping`) decides how
much of it reaches the learner. Each heuristic names the envs whose observations it can read.

- ``goal_distance`` (mazes): r_aux = −d(s', goal) / 12 with d the Manhattan distance — helpful;
  Φ(s) = −d(s, goal) / 12.
- ``center`` (mazes): r_aux = +1 for every step that ends in the central 3 x 3 cells — misspecified:
  loitering there pays more than the goal; Φ(s) = 1[s in the center].
- ``pd_good`` (CartPole): a PD controller pushes toward the side the pole falls to
  (u = θ + 0.25 θ̇ + 0.01 x + 0.05 ẋ > 0 → push right); r_aux = +5 if the action matches it, else −1;
  Φ(s) = −|u| / 0.05 (states the controller barely needs to correct are better).
- ``pd_bad`` (CartPole): the same controller with the signs flipped, r_aux = −5 if the action matches,
  else +1; Φ(s) = +|u| / 0.05.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp

from metarl.envs import maze
from metarl.registry import Registry

MAZE_ENVS = ("Maze-open", "Maze-levels", "Maze-starts", "Maze-pocket")
CARTPOLE_ENVS = ("CartPole-v1", "CartPole-levels")


class Heuristic(NamedTuple):
    name: str
    aux: Callable  # (obs, action, next_obs) -> r_aux, elementwise over leading axes
    potential: Callable  # (obs) -> Φ
    envs: tuple[str, ...]  # envs whose observations it reads (empty: any)


def _none() -> Heuristic:
    zero = lambda obs: jnp.zeros(obs.shape[:-1], jnp.float32)  # noqa: E731
    return Heuristic("none", lambda obs, action, next_obs: zero(obs), zero, ())


def _goal_distance(obs):
    agent, goal = maze.decode_positions(obs)
    return jnp.sum(jnp.abs(agent - goal), axis=-1).astype(jnp.float32) / 12.0


def _in_center(obs):
    agent, _ = maze.decode_positions(obs)
    middle = maze.SIZE // 2
    return jnp.all(jnp.abs(agent - middle) <= 1, axis=-1).astype(jnp.float32)


def make_goal_distance() -> Heuristic:
    return Heuristic("goal_distance", lambda obs, action, next_obs: -_goal_distance(next_obs), lambda obs: -_goal_distance(obs), MAZE_ENVS)


def make_center() -> Heuristic:
    return Heuristic("center", lambda obs, action, next_obs: _in_center(next_obs), _in_center, MAZE_ENVS)


def pd_signal(obs):
    x, x_dot, theta, theta_dot = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
    return theta + 0.25 * theta_dot + 0.01 * x + 0.05 * x_dot


def pd_action(obs):
    return (pd_signal(obs) > 0).astype(jnp.int32)


def make_pd(good: bool) -> Callable[[], Heuristic]:
    match_reward, miss_reward, sign = (5.0, -1.0, -1.0) if good else (-5.0, 1.0, 1.0)

    def factory() -> Heuristic:
        def aux(obs, action, next_obs):
            return jnp.where(action == pd_action(obs), match_reward, miss_reward).astype(jnp.float32)

        return Heuristic("pd_good" if good else "pd_bad", aux, lambda obs: sign * jnp.abs(pd_signal(obs)) / 0.05, CARTPOLE_ENVS)

    return factory


REGISTRY: Registry[Heuristic] = Registry("heuristic")
REGISTRY.register("none", _none)
REGISTRY.register("goal_distance", make_goal_distance)
REGISTRY.register("center", make_center)
REGISTRY.register("pd_good", make_pd(True))
REGISTRY.register("pd_bad", make_pd(False))
