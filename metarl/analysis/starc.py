"""A STARC distance (Skalse et al., 2024) between a shaped reward and the env reward, on a tabular maze.

For a deterministic MDP, rewards are arrays R(s, a) (the successor s' is fixed by s and a). STARC:

1. canonicalize with value-adjusted levelling under the uniform random policy π:
   C(R)(s, a) = R(s, a) + γ V^π_R(s') − V^π_R(s), with V = 0 at terminal states. Adding a potential
   shaping γΦ(s') − Φ(s) (Φ = 0 at terminals) leaves C(R) unchanged;
2. normalize: s(R) = C(R) / ‖C(R)‖₂ (positive scaling leaves it unchanged; a constant-zero C stays 0);
3. d(R₁, R₂) = ‖s(R₁) − s(R₂)‖₂ / 2 ∈ [0, 1]: 0 for rewards that differ only by potential shaping and
   scaling, 1 for opposite ones.

:func:`maze_rewards` builds R(s, a) of a maze level for the env reward (1 on reaching the goal; the
env's time discount of the goal reward is left out, as a tabular reward cannot see time) and for any
shaping, evaluated at a given training progress n/N.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metarl.envs import maze
from metarl.shaping.base import ShapingInputs
from metarl.types import LifetimeContext


class TabularMaze:
    """States = free cells; ``next_state[s, a]``, ``terminal[s]`` (the goal), and observations per state."""

    def __init__(self, params: maze.MazeParams):
        walls = np.asarray(params.walls)
        self.cells = [(r, c) for r in range(maze.SIZE) for c in range(maze.SIZE) if not walls[r, c]]
        index = {cell: i for i, cell in enumerate(self.cells)}
        goal = tuple(int(x) for x in np.asarray(params.goal))
        self.terminal = np.array([cell == goal for cell in self.cells])
        self.next_state = np.zeros((len(self.cells), len(maze.ACTIONS)), np.int32)
        for i, (r, c) in enumerate(self.cells):
            for a, (dr, dc) in enumerate(maze.ACTIONS):
                target = (r + dr, c + dc)
                self.next_state[i, a] = index[target] if not walls[target] else i
        self.obs = jnp.stack([maze.observe(jnp.asarray(cell, jnp.int32), params) for cell in self.cells])


def policy_value(reward, next_state, terminal, gamma: float, iterations: int = 2000):
    """V^π for the uniform random policy; terminal states have V = 0 (no action is taken there)."""
    value = np.zeros(reward.shape[0])
    for _ in range(iterations):
        new = np.where(terminal, 0.0, np.mean(reward + gamma * value[next_state], axis=1))
        if np.max(np.abs(new - value)) < 1e-10:
            return new
        value = new
    return value


def canonical(reward, next_state, terminal, gamma: float):
    value = policy_value(reward, next_state, terminal, gamma)
    canon = reward + gamma * value[next_state] - value[:, None]
    return np.where(terminal[:, None], 0.0, canon)  # no decision is made at a terminal state


def starc_distance(reward_a, reward_b, next_state, terminal, gamma: float) -> float:
    def standardized(reward):
        canon = canonical(np.asarray(reward, np.float64), next_state, terminal, gamma)
        norm = np.linalg.norm(canon)
        return canon / norm if norm > 1e-12 else canon

    return float(np.linalg.norm(standardized(reward_a) - standardized(reward_b)) / 2)


def maze_rewards(tabular: TabularMaze, shaping, shaping_params, heuristic, progress: float, reward_scale: float = 1.0):
    """(env reward R(s, a), shaped reward R'(s, a)) on every free cell and action of the maze."""
    next_obs = tabular.obs[tabular.next_state]  # (S, A, obs)
    obs = jnp.broadcast_to(tabular.obs[:, None], next_obs.shape)
    actions = jnp.broadcast_to(jnp.arange(len(maze.ACTIONS)), tabular.next_state.shape)
    reached = jnp.asarray(tabular.terminal[tabular.next_state] & ~tabular.terminal[:, None])
    env_reward = reached.astype(jnp.float32) * reward_scale
    aux = heuristic.aux(obs, actions, next_obs) * reward_scale
    inputs = ShapingInputs(obs, actions, next_obs, env_reward, aux, reached, reached)
    context = LifetimeContext(jnp.float32(progress), jnp.float32(1.0))
    shaped = jax.jit(lambda p: shaping.apply(p, inputs, context).reward)(shaping_params)
    return np.asarray(env_reward), np.asarray(shaped)
