"""Mazes: reach the goal in a walled grid. The level space of the curriculum experiments and the
sparse-reward testbed of the reward-shaping experiments.

A *level* is a :class:`MazeParams`: interior walls, a start cell, a goal cell and a step limit, all of
the same static shapes, so a batch of levels is a ``vmap`` over params. Reaching the goal pays
``1 − 0.9 · t / max_steps`` (faster is better, as in MiniGrid), ends the episode and counts as a
success; there is no other reward. Episodes are truncated after ``max_steps`` steps.

Observation: three flat ``SIZE x SIZE`` maps (walls, agent, goal), :data:`OBS_SIZE` floats.
Difficulty of a level: the shortest-path distance from start to goal (breadth-first search at level
generation), ``(distance − 1) / (MAX_DISTANCE − 1)`` clipped to [0, 1].

Registered envs:
- ``Maze-levels``: a bank of :data:`NUM_LEVELS` random mazes (wall density 0–40 %), their
  difficulties spread evenly over five bins, plus :data:`NUM_HELDOUT` held-out mazes of difficulty
  ≥ :data:`HELDOUT_DIFFICULTY` (drawn with another seed; never trained on). ``sample_params`` draws a
  bank level uniformly (what a run without a curriculum trains on).
- ``Maze-starts``: one fixed maze whose levels are its start cells (:data:`STARTS_LAYOUT`): a 22-step winding
  corridor to the goal, and a walled-off pocket of 7 starts that can never reach it. Early in training the far starts
  are as hopeless as the pocket and the near ones trivial: built so that a curriculum might save updates
  (whether any does is a measurement: see results/README.md).
- ``Maze-pocket``: the same idea with the waste made the majority (:data:`POCKET_LAYOUT`): a 14-step corridor and a
  pocket of 21 starts, so uniform sampling spends three fifths of its episodes where nothing can be learned.
- ``Maze-open``: one open 7 x 7 room, start and goal in opposite corners (12 steps apart): a sparse
  reward that random exploration rarely finds, the shaping testbed.
"""

from __future__ import annotations

from collections import deque
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from metarl.envs.levels import LevelSpace, make_level_space
from metarl.envs.spec import EnvSpec

SIZE = 9  # outer grid, border walls included; the interior is 7 x 7
OBS_SIZE = 3 * SIZE * SIZE
ACTIONS = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], np.int32)  # up, right, down, left
MAX_STEPS = 48
MAX_DISTANCE = 16
NUM_LEVELS = 256
NUM_HELDOUT = 32
NUM_CATEGORIES = 5
HELDOUT_DIFFICULTY = 0.8
BANK_SEED, HELDOUT_SEED = 0, 1


@struct.dataclass
class MazeParams:
    walls: jax.Array  # (SIZE, SIZE) bool
    start: jax.Array  # (2,) int32
    goal: jax.Array  # (2,) int32
    max_steps: jax.Array  # () int32


@struct.dataclass
class MazeState:
    agent: jax.Array  # (2,) int32
    time: jax.Array
    episode_return: jax.Array
    returned_episode_return: jax.Array
    returned_episode_length: jax.Array


def observe(agent, params: MazeParams):
    walls = params.walls.astype(jnp.float32).reshape(-1)
    agent_map = jnp.zeros((SIZE, SIZE), jnp.float32).at[agent[0], agent[1]].set(1.0).reshape(-1)
    goal_map = jnp.zeros((SIZE, SIZE), jnp.float32).at[params.goal[0], params.goal[1]].set(1.0).reshape(-1)
    return jnp.concatenate([walls, agent_map, goal_map])


def decode_positions(obs):
    """(agent (…, 2), goal (…, 2)) int32 cells from observations (…, OBS_SIZE): for heuristics and analyses."""
    agent = jnp.argmax(obs[..., SIZE * SIZE : 2 * SIZE * SIZE], axis=-1)
    goal = jnp.argmax(obs[..., 2 * SIZE * SIZE :], axis=-1)
    to_cell = lambda index: jnp.stack([index // SIZE, index % SIZE], axis=-1).astype(jnp.int32)  # noqa: E731
    return to_cell(agent), to_cell(goal)


def _fresh_state(params: MazeParams, returned_return, returned_length) -> MazeState:
    return MazeState(params.start, jnp.int32(0), jnp.float32(0.0), returned_return, returned_length)


def reset(key, params: MazeParams):
    del key  # a level fixes its start
    state = _fresh_state(params, jnp.float32(0.0), jnp.int32(0))
    return observe(state.agent, params), state


def move(agent, action, params: MazeParams):
    target = agent + jnp.asarray(ACTIONS)[action]
    return jnp.where(params.walls[target[0], target[1]], agent, target)


def step(key, state: MazeState, action, params: MazeParams):
    """One step with auto-reset (the :class:`EnvSpec` contract); ``stats["success"]``: the goal was reached."""
    del key
    agent = move(state.agent, action, params)
    time = state.time + 1
    reached = jnp.all(agent == params.goal)
    reward = jnp.where(reached, 1.0 - 0.9 * time.astype(jnp.float32) / params.max_steps.astype(jnp.float32), 0.0)
    terminated = reached
    truncated = (time >= params.max_steps) & ~reached
    done = terminated | truncated
    episode_return = state.episode_return + reward
    final_obs = observe(agent, params)
    returned_return = jnp.where(done, episode_return, state.returned_episode_return)
    returned_length = jnp.where(done, time, state.returned_episode_length)
    running = MazeState(agent, time, episode_return, returned_return, returned_length)
    next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), _fresh_state(params, returned_return, returned_length), running)
    obs = jnp.where(done, observe(params.start, params), final_obs)
    stats = {
        "final_observation": final_obs,
        "episode_return": returned_return,
        "episode_length": returned_length,
        "episode_done": done,
        "success": reached,
    }
    return obs, next_state, reward.astype(jnp.float32), terminated, truncated, stats


# --- level generation (numpy, once per process) ---


def distances_from(walls: np.ndarray, source) -> np.ndarray:
    """Breadth-first shortest-path distance of every cell from ``source`` (−1: unreachable or wall)."""
    distance = np.full(walls.shape, -1, np.int32)
    distance[tuple(source)] = 0
    queue = deque([tuple(source)])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ACTIONS:
            nr, nc = r + dr, c + dc
            if not walls[nr, nc] and distance[nr, nc] < 0:
                distance[nr, nc] = distance[r, c] + 1
                queue.append((nr, nc))
    return distance


def difficulty_of(distance: int) -> float:
    return float(np.clip((distance - 1) / (MAX_DISTANCE - 1), 0.0, 1.0))


def _border() -> np.ndarray:
    walls = np.zeros((SIZE, SIZE), bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    return walls


def level(walls, start, goal, max_steps: int = MAX_STEPS) -> MazeParams:
    return MazeParams(jnp.asarray(walls, bool), jnp.asarray(start, jnp.int32), jnp.asarray(goal, jnp.int32), jnp.int32(max_steps))


def random_level(rng: np.random.Generator, target: tuple[float, float]) -> tuple[MazeParams, float]:
    """A random maze whose difficulty lies in ``target`` = [low, high] (rejection over wall layouts)."""
    interior = [(r, c) for r in range(1, SIZE - 1) for c in range(1, SIZE - 1)]
    while True:
        walls = _border()
        density = rng.uniform(0.0, 0.4)
        for r, c in interior:
            walls[r, c] = rng.random() < density
        free = [cell for cell in interior if not walls[cell]]
        if len(free) < 2:
            continue
        goal = free[rng.integers(len(free))]
        distance = distances_from(walls, goal)
        difficulty = np.clip((distance - 1) / (MAX_DISTANCE - 1), 0.0, 1.0)
        candidates = [cell for cell in free if distance[cell] > 0 and target[0] <= difficulty[cell] <= target[1]]
        if candidates:
            start = candidates[rng.integers(len(candidates))]
            return level(walls, start, goal), difficulty_of(int(distance[start]))


@cache
def level_space() -> LevelSpace:
    """The bank of ``Maze-levels`` (difficulties spread evenly over the bins) and its held-out hardest levels."""
    rng = np.random.default_rng(BANK_SEED)
    levels, difficulty = [], []
    for index in range(NUM_LEVELS):
        c = index % NUM_CATEGORIES
        params, d = random_level(rng, (c / NUM_CATEGORIES, (c + 1) / NUM_CATEGORIES - 1e-6 if c < NUM_CATEGORIES - 1 else 1.0))
        levels.append(params)
        difficulty.append(d)
    heldout_rng = np.random.default_rng(HELDOUT_SEED)
    heldout = [random_level(heldout_rng, (HELDOUT_DIFFICULTY, 1.0))[0] for _ in range(NUM_HELDOUT)]
    return make_level_space(levels, difficulty, heldout, NUM_CATEGORIES, MAX_STEPS)


# Start-cell level spaces: one fixed maze, the level is the start cell. A winding corridor leads to the goal (G); the
# walled-off bottom rows are a pocket no start there can leave. '#': wall, '.': free.
STARTS_LAYOUT = (  # ``Maze-starts``: a 22-step corridor, a pocket of 7 starts (a quarter of the 29 levels)
    "#########",
    "#G......#",
    "#######.#",
    "#.......#",
    "#.#######",
    "#.......#",
    "#########",
    "#.......#",
    "#########",
)
POCKET_LAYOUT = (  # ``Maze-pocket``: a 14-step corridor, a pocket of 21 starts (three fifths of the 35 levels)
    "#########",
    "#G......#",
    "#######.#",
    "#.......#",
    "#########",
    "#.......#",
    "#.......#",
    "#.......#",
    "#########",
)
STARTS_CATEGORIES = 4
STARTS_HELDOUT_DISTANCE = 18  # Maze-starts' held-out: the starts at least this far from the goal
POCKET_HELDOUT_DISTANCE = 11  # Maze-pocket's: the last 4 cells of its corridor


def starts_layout(layout: tuple[str, ...] = STARTS_LAYOUT) -> tuple[np.ndarray, tuple[int, int]]:
    """(walls (SIZE, SIZE) bool, goal cell) of a start-cell layout (:data:`STARTS_LAYOUT` by default)."""
    walls = np.array([[ch == "#" for ch in row] for row in layout], bool)
    goal = next((r, c) for r, row in enumerate(layout) for c, ch in enumerate(row) if ch == "G")
    return walls, goal


@cache
def starts_level_space(layout: tuple[str, ...] = STARTS_LAYOUT, heldout_distance: int = STARTS_HELDOUT_DISTANCE) -> LevelSpace:
    """Every free cell of ``layout`` but the goal as a start, in row-major order. Difficulty: the shortest-path distance
    to the goal, ``(d − 1) / (d_max − 1)``; a start that cannot reach the goal (the pocket) has difficulty 1, so a
    sampler that sees only difficulty cannot tell it from the farthest solvable start. Held-out: the solvable starts at
    least ``heldout_distance`` steps away (also in the bank: one maze has no other levels of that difficulty)."""
    walls, goal = starts_layout(layout)
    distance = distances_from(walls, goal)
    starts = [(r, c) for r in range(SIZE) for c in range(SIZE) if not walls[r, c] and (r, c) != goal]
    farthest = int(distance.max())
    difficulty = [float((distance[cell] - 1) / (farthest - 1)) if distance[cell] > 0 else 1.0 for cell in starts]
    heldout = [level(walls, cell, goal) for cell in starts if distance[cell] >= heldout_distance]
    return make_level_space([level(walls, cell, goal) for cell in starts], difficulty, heldout, STARTS_CATEGORIES, MAX_STEPS)


def open_room() -> MazeParams:
    return level(_border(), (1, 1), (SIZE - 2, SIZE - 2))


def _spec(name: str, default_params: MazeParams, space: LevelSpace | None) -> EnvSpec:
    return EnvSpec(
        name=name, reset=reset, step=step, default_params=default_params, obs_shape=(OBS_SIZE,),
        action_kind="discrete", action_dim=len(ACTIONS), sample_params=space.sample if space is not None else None, level_space=space,
    )


def make_maze_levels() -> EnvSpec:
    space = level_space()
    return _spec("Maze-levels", space.take(0), space)


def make_maze_starts() -> EnvSpec:
    space = starts_level_space()
    return _spec("Maze-starts", space.take(0), space)


def make_maze_pocket() -> EnvSpec:
    space = starts_level_space(POCKET_LAYOUT, POCKET_HELDOUT_DISTANCE)
    return _spec("Maze-pocket", space.take(0), space)


def make_maze_open() -> EnvSpec:
    return _spec("Maze-open", open_room(), None)
