"""LPG-style grid worlds: an agent, objects with a reward, a termination and a respawn probability.

A *level* is a :class:`GridParams` (walls, object slots and their reward / termination / respawn
probabilities, episode length). Every level of the family has the same static shapes (a
``SIZE`` x ``SIZE`` grid with ``MAX_OBJECTS`` object slots), so a batch of levels is a ``vmap`` over
params like any other env. The family's members are the named :data:`CONFIGURATIONS`; an env of the
registry (``GridWorld-<name>``) is a *distribution* over some of them, and its ``sample_params(key)``
draws a level: a configuration, with each object's reward scaled by a factor in [0.75, 1.25].

Dynamics (one step): the agent moves up/right/down/left, or stays if a wall is in the way. Stepping on
a present object collects it: its reward is paid, the episode terminates with the object's
termination probability, and the object disappears. Every absent object reappears at a random free
cell with its respawn probability per step. Episodes are truncated after ``max_steps`` steps.

Observation: a flat float vector of ``SIZE * SIZE * (1 + NUM_TYPES)`` (agent one-hot, then one
occupancy map per object type), so the default MLP agent applies. Objects of one type look alike;
the type is what an agent can learn the value of.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from metarl.envs.spec import EnvSpec

SIZE = 9  # outer grid, walls included
NUM_TYPES = 3
MAX_OBJECTS = 6
ACTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # up, right, down, left


@struct.dataclass
class GridParams:
    walls: jax.Array  # (SIZE, SIZE) bool
    object_type: jax.Array  # (MAX_OBJECTS,) int32 in [0, NUM_TYPES)
    object_active: jax.Array  # (MAX_OBJECTS,) bool: slot used by this level
    reward: jax.Array  # (MAX_OBJECTS,) float32
    terminate_prob: jax.Array  # (MAX_OBJECTS,) float32
    respawn_prob: jax.Array  # (MAX_OBJECTS,) float32
    max_steps: jax.Array  # () int32


@struct.dataclass
class GridState:
    agent: jax.Array  # (2,) int32
    objects: jax.Array  # (MAX_OBJECTS, 2) int32
    present: jax.Array  # (MAX_OBJECTS,) bool
    time: jax.Array  # () int32
    episode_return: jax.Array  # running return of the current episode
    returned_episode_return: jax.Array  # return of the last finished episode
    returned_episode_length: jax.Array


# name: (interior side, max_steps, [(type, reward, terminate_prob, respawn_prob), ...])
# Types: 0 = "apple" (rewarding), 1 = "thorn" (harmful), 2 = "goal"-like (rewarding, often terminal).
CONFIGURATIONS: dict[str, tuple[int, int, list[tuple[int, float, float, float]]]] = {
    # many small rewards close by that come back quickly: greedy collection is right
    "dense": (7, 50, [(0, 1.0, 0.0, 0.1), (0, 1.0, 0.0, 0.1), (0, 1.0, 0.0, 0.1), (1, -1.0, 0.0, 0.5)]),
    # one rewarding goal that ends the episode: reach it quickly
    "sparse": (7, 50, [(2, 1.0, 1.0, 0.0)]),
    # few objects that respawn rarely over long episodes: credit over long delays
    "long": (7, 100, [(0, 1.0, 0.0, 0.02), (2, 2.0, 0.0, 0.01)]),
    # rewarding objects guarded by harmful ones that may end the episode: avoid the thorns
    "harmful": (7, 50, [(0, 1.0, 0.0, 0.2), (1, -1.0, 0.5, 0.2), (1, -1.0, 0.5, 0.2), (1, -1.0, 0.5, 0.2)]),
    # a 5x5 room with quickly respawning rewards: short episodes
    "small": (5, 30, [(0, 1.0, 0.0, 0.2), (0, 1.0, 0.0, 0.2)]),
    # --- held out from meta-training ---
    # a small room with a goal and a harmful terminal trap
    "trap": (5, 30, [(2, 1.0, 1.0, 0.0), (1, -1.0, 1.0, 0.0)]),
    # a large room where apples and thorns both respawn often
    "mixed": (7, 50, [(0, 1.0, 0.0, 0.3), (0, 1.0, 0.0, 0.3), (1, -1.0, 0.0, 0.3), (1, -1.0, 0.0, 0.3), (2, 2.0, 1.0, 0.0)]),
}
TRAIN_CONFIGURATIONS = ("dense", "sparse", "long", "harmful", "small")
HELD_OUT_CONFIGURATIONS = ("trap", "mixed")
REWARD_JITTER = 0.25


def configuration_params(name: str) -> GridParams:
    """The level of a named configuration (rewards unjittered)."""
    side, max_steps, objects = CONFIGURATIONS[name]
    lo = (SIZE - side) // 2
    walls = np.ones((SIZE, SIZE), bool)
    walls[lo : lo + side, lo : lo + side] = False
    slots = np.zeros((MAX_OBJECTS, 4), np.float32)
    slots[: len(objects)] = np.asarray(objects, np.float32)
    active = np.arange(MAX_OBJECTS) < len(objects)
    return GridParams(
        walls=jnp.asarray(walls),
        object_type=jnp.asarray(slots[:, 0], jnp.int32),
        object_active=jnp.asarray(active),
        reward=jnp.asarray(slots[:, 1]),
        terminate_prob=jnp.asarray(slots[:, 2]),
        respawn_prob=jnp.asarray(slots[:, 3]),
        max_steps=jnp.int32(max_steps),
    )


def _distinct_free_cells(key, free, count: int):
    """(count, 2): ``count`` distinct cells drawn uniformly among ``free`` (SIZE, SIZE) bool, in one
    top-k of Gumbel noise (sampling without replacement) instead of ``count`` sequential draws."""
    scores = jax.random.gumbel(key, (SIZE * SIZE,)) + jnp.where(free.reshape(-1), 0.0, -1e9)
    _, index = jax.lax.top_k(scores, count)
    return jnp.stack([index // SIZE, index % SIZE], axis=-1).astype(jnp.int32)


def _occupancy(cells, mask):
    """(SIZE, SIZE) bool: the cells of the rows of ``cells`` where ``mask``."""
    grid = jnp.zeros((SIZE, SIZE), bool)
    return grid.at[cells[:, 0], cells[:, 1]].max(mask)


def _observe(state: GridState, params: GridParams):
    agent = jnp.zeros((SIZE, SIZE), jnp.float32).at[state.agent[0], state.agent[1]].set(1.0)
    shown = state.present & params.object_active
    type_maps = jnp.zeros((NUM_TYPES, SIZE, SIZE), jnp.float32)
    type_maps = type_maps.at[params.object_type, state.objects[:, 0], state.objects[:, 1]].max(shown.astype(jnp.float32))
    return jnp.concatenate([agent.reshape(-1), type_maps.reshape(-1)])


def _reset(key, params: GridParams) -> tuple[jax.Array, GridState]:
    cells = _distinct_free_cells(key, ~params.walls, MAX_OBJECTS + 1)
    agent = cells[0]
    state = GridState(
        agent=agent,
        objects=cells[1:],
        present=params.object_active,
        time=jnp.int32(0),
        episode_return=jnp.float32(0.0),
        returned_episode_return=jnp.float32(0.0),
        returned_episode_length=jnp.int32(0),
    )
    return _observe(state, params), state


def _move(state: GridState, action, params: GridParams):
    target = state.agent + jnp.asarray(ACTIONS)[action]
    blocked = params.walls[target[0], target[1]]
    return jnp.where(blocked, state.agent, target)


def _step_no_reset(key, state: GridState, action, params: GridParams):
    term_key, respawn_key, place_key = jax.random.split(key, 3)
    agent = _move(state, action, params)
    hit = state.present & params.object_active & jnp.all(state.objects == agent, axis=-1)
    reward = jnp.sum(jnp.where(hit, params.reward, 0.0))
    terminated = jnp.any(hit & (jax.random.uniform(term_key, (MAX_OBJECTS,)) < params.terminate_prob))
    present = state.present & ~hit
    # Absent objects respawn with their probability, each on a free cell (not a wall, the agent or an object).
    respawn = ~present & params.object_active & (jax.random.uniform(respawn_key, (MAX_OBJECTS,)) < params.respawn_prob)
    taken = params.walls | _occupancy(state.objects, present)
    taken = taken.at[agent[0], agent[1]].set(True)
    objects = jnp.where(respawn[:, None], _distinct_free_cells(place_key, ~taken, MAX_OBJECTS), state.objects)
    present = present | respawn
    time = state.time + 1
    truncated = (time >= params.max_steps) & ~terminated
    state = state.replace(agent=agent, objects=objects, present=present, time=time, episode_return=state.episode_return + reward)
    return state, reward, terminated, truncated


def reset(key, params: GridParams):
    return _reset(key, params)


def step(key, state: GridState, action, params: GridParams):
    """One step with auto-reset, in the :class:`EnvSpec` contract."""
    step_key, reset_key = jax.random.split(key)
    state, reward, terminated, truncated = _step_no_reset(step_key, state, action, params)
    done = terminated | truncated
    final_obs = _observe(state, params)
    reset_obs, reset_state = _reset(reset_key, params)
    returned_return = jnp.where(done, state.episode_return, state.returned_episode_return)
    returned_length = jnp.where(done, state.time, state.returned_episode_length)
    next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
    next_state = next_state.replace(returned_episode_return=returned_return, returned_episode_length=returned_length)
    obs = jnp.where(done, reset_obs, final_obs)
    stats = {
        "final_observation": final_obs,
        "episode_return": returned_return,
        "episode_length": returned_length,
        "episode_done": done,
    }
    return obs, next_state, reward, terminated, truncated, stats


def _stack(levels: list[GridParams]) -> GridParams:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *levels)


def make_sampler(configurations: tuple[str, ...], jitter: float = REWARD_JITTER):
    """``sample(key) -> GridParams``: a configuration uniformly, rewards scaled by U[1 − jitter, 1 + jitter]."""
    stacked = _stack([configuration_params(name) for name in configurations])

    def sample(key) -> GridParams:
        choice_key, jitter_key = jax.random.split(key)
        index = jax.random.randint(choice_key, (), 0, len(configurations))
        level = jax.tree.map(lambda x: x[index], stacked)
        scale = jax.random.uniform(jitter_key, (MAX_OBJECTS,), minval=1.0 - jitter, maxval=1.0 + jitter)
        return level.replace(reward=level.reward * scale)

    return sample


def make_gridworld(name: str, configurations: tuple[str, ...]) -> EnvSpec:
    """An env of the family: ``default_params`` is the first configuration, ``sample_params`` the distribution."""
    unknown = [c for c in configurations if c not in CONFIGURATIONS]
    if unknown:
        raise ValueError(f"unknown grid-world configurations {unknown}; known: {sorted(CONFIGURATIONS)}")
    return EnvSpec(
        name=name,
        reset=reset,
        step=step,
        default_params=configuration_params(configurations[0]),
        obs_shape=(SIZE * SIZE * (1 + NUM_TYPES),),
        action_kind="discrete",
        action_dim=len(ACTIONS),
        sample_params=make_sampler(configurations),
    )


def registered() -> dict[str, tuple[str, ...]]:
    """The grid-world envs of the registry: one per configuration, the training mix and the held-out mix."""
    envs: dict[str, Any] = {f"GridWorld-{name}": (name,) for name in CONFIGURATIONS}
    envs["GridWorld-train"] = TRAIN_CONFIGURATIONS
    envs["GridWorld-heldout"] = HELD_OUT_CONFIGURATIONS
    return envs
