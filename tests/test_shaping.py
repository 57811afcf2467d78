"""Shaping: every registry entry in the scan, potential shaping keeps optimal policies, fitness never sees the
shaped reward, heuristics, and the STARC distance."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import perturbed, tiny

from metarl import envs, objectives, shaping
from metarl.analysis.starc import TabularMaze, canonical, maze_rewards, starc_distance
from metarl.envs import maze
from metarl.inner.train import default_task, make_inner
from metarl.meta.fitness import score
from metarl.shaping.base import ShapingInputs
from metarl.shaping.shapings import potential_reward
from metarl.types import LifetimeContext, MetaParams

GAMMA = 0.99


@pytest.fixture(scope="module")
def open_maze():
    return envs.make("Maze-open")


def _build(name, heuristic_name="goal_distance", **kwargs):
    heuristic = shaping.heuristics.REGISTRY.make(heuristic_name)
    return shaping.make(name, heuristic=heuristic, gamma=GAMMA, obs_size=maze.OBS_SIZE, **kwargs), heuristic


@functools.lru_cache  # at the default (moved) parameters, once per entry and process
def default_shaped_on_a_fixed_rollout(name):
    return shaped_on_a_fixed_rollout(name)


def shaped_on_a_fixed_rollout(name, params=None):
    """(reward, discount) of the shaping on one fixed (T, E) batch of open-room transitions, at ``params``
    (default: its initial parameters, moved)."""
    built, heuristic = _build(name)
    params = perturbed(built.init(jax.random.PRNGKey(0)), 3000) if params is None else params
    keys = jax.random.split(jax.random.PRNGKey(42), 4)
    cells = jax.random.randint(keys[0], (2, 8, 3, 2), 1, maze.SIZE - 1)  # (now, next) x T x E x (row, column)
    room = maze.open_room()
    obs, next_obs = (jax.vmap(jax.vmap(lambda cell: maze.observe(cell, room)))(c) for c in cells)
    terminated = jax.random.bernoulli(keys[1], 0.2, (8, 3))
    action = jax.random.randint(keys[2], (8, 3), 0, 4)
    inputs = ShapingInputs(obs, action, next_obs, jax.random.normal(keys[3], (8, 3)), heuristic.aux(obs, action, next_obs),
                           terminated, terminated)
    out = built.apply(params, inputs, LifetimeContext(3, 10))
    return np.concatenate([np.ravel(out.reward), np.ravel(np.broadcast_to(out.discount, out.reward.shape))])


@pytest.mark.parametrize("name", shaping.names())
def test_every_shaping_trains_a_population_in_the_scan(name, open_maze):
    """Each registry entry in the jitted, vmapped scan, compiled once: finite losses; on one fixed batch its
    shaped reward differs from every other entry's (``naive`` wired to ``none`` would fail); and a learned
    shaping's parameters reach the agent: members that differ only in them (same key) train differently, while
    members of a hand-designed shaping with the same key train identically."""
    config = tiny(num_steps=24)
    built, heuristic = _build(name)
    mine = default_shaped_on_a_fixed_rollout(name)
    for other in shaping.names():
        if other != name:
            assert not np.allclose(mine, default_shaped_on_a_fixed_rollout(other)), (name, other)
    inner = make_inner(config, open_maze, objectives.make("ppo"), shaping=built, heuristic=heuristic)
    start = built.init(jax.random.PRNGKey(0))
    members = jax.tree.map(lambda *xs: jnp.stack(xs), start, perturbed(start, 3000))
    population = MetaParams(objective={}, curriculum={}, shaping=members)
    train = jax.jit(jax.vmap(inner.train, in_axes=(0, None, 0)))
    key = jax.random.PRNGKey(1)
    output = train(population, default_task(config, open_maze), jnp.stack([key, key]))
    assert output.metrics["policy_loss"].shape == (2, config.num_updates)
    value_loss = np.asarray(output.metrics["value_loss"])
    assert np.all(np.isfinite(value_loss))
    if jax.tree.leaves(start):
        assert not np.allclose(shaped_on_a_fixed_rollout(name, start), mine), "the shaped reward ignores the parameters"
        assert not np.allclose(value_loss[0], value_loss[1]), "the parameters do not reach the agent's training"
    else:
        np.testing.assert_array_equal(value_loss[0], value_loss[1])


def _value_iteration(reward, next_state, terminal, gamma, iterations=3000):
    q = np.zeros(reward.shape)
    for _ in range(iterations):
        value = np.where(terminal, 0.0, q.max(axis=1))
        q = reward + gamma * value[next_state]
    return q


def _optimal_actions(q, terminal):
    best = q.max(axis=1, keepdims=True)
    return [frozenset(np.flatnonzero(np.isclose(row, b, atol=1e-6))) for row, b, t in zip(q, best, terminal, strict=True) if not t]


@pytest.mark.parametrize("heuristic_name", ["goal_distance", "center"])
@pytest.mark.parametrize("level", ["open", "maze"])
def test_potential_shaping_keeps_the_optimal_policy_of_a_tabular_maze(heuristic_name, level):
    params = maze.open_room() if level == "open" else maze.level_space().take(17)
    tabular = TabularMaze(params)
    potential, heuristic = _build("potential", heuristic_name)
    naive, _ = _build("naive", heuristic_name)
    env_reward, shaped = maze_rewards(tabular, potential, {}, heuristic, progress=0.0)
    q_env = _value_iteration(env_reward, tabular.next_state, tabular.terminal, GAMMA)
    q_potential = _value_iteration(shaped, tabular.next_state, tabular.terminal, GAMMA)
    assert _optimal_actions(q_env, tabular.terminal) == _optimal_actions(q_potential, tabular.terminal)
    if heuristic_name == "center":  # the naive sum of the misleading heuristic does change it (the check can fail)
        _, naive_reward = maze_rewards(tabular, naive, {}, heuristic, progress=0.0)
        q_naive = _value_iteration(naive_reward, tabular.next_state, tabular.terminal, GAMMA)
        assert _optimal_actions(q_env, tabular.terminal) != _optimal_actions(q_naive, tabular.terminal)


def test_potential_reward_is_zero_at_terminal_successors():
    reward = potential_reward(jnp.array([1.0, 0.0]), jnp.array([2.0, 2.0]), jnp.array([5.0, 5.0]), jnp.array([True, False]), 0.9)
    np.testing.assert_allclose(reward, [1.0 - 2.0, 0.9 * 5.0 - 2.0])


def test_the_shaped_reward_never_reaches_fitness(open_maze):
    # A shaping that pays +100 per step would give returns in the thousands; fitness and the logged returns
    # must stay the env's (a maze episode returns at most 1).
    config = tiny(num_steps=48)
    built, heuristic = _build("naive", "center", weight=100.0)
    inner = make_inner(config, open_maze, objectives.make("ppo"), shaping=built, heuristic=heuristic)
    output = jax.jit(inner.train)(MetaParams(), default_task(config, open_maze), jax.random.PRNGKey(0))
    returns = np.asarray(output.metrics["episode_return"])
    assert np.nanmax(returns) <= 1.0 and np.isfinite(returns).any()
    for kind in ("final_return", "auc"):
        assert float(score(output, kind)) <= 1.0
    # while the agent did learn from the shaped reward: its value targets are on the shaped scale
    assert float(np.max(np.asarray(output.metrics["value_loss"]))) > 10.0


def test_heuristics_pay_what_their_docstring_says():
    pd_good = shaping.heuristics.REGISTRY.make("pd_good")
    pd_bad = shaping.heuristics.REGISTRY.make("pd_bad")
    falling_right = jnp.array([0.0, 0.0, 0.1, 0.5])
    assert float(pd_good.aux(falling_right, 1, falling_right)) == 5.0 and float(pd_good.aux(falling_right, 0, falling_right)) == -1.0
    assert float(pd_bad.aux(falling_right, 1, falling_right)) == -5.0 and float(pd_bad.aux(falling_right, 0, falling_right)) == 1.0
    params = maze.open_room()
    near, far = maze.observe(jnp.array([7, 6]), params), maze.observe(jnp.array([1, 1]), params)
    distance = shaping.heuristics.REGISTRY.make("goal_distance")
    assert float(distance.aux(far, 0, near)) == pytest.approx(-1 / 12) and float(distance.potential(far)) == pytest.approx(-1.0)
    center = shaping.heuristics.REGISTRY.make("center")
    assert float(center.aux(far, 0, maze.observe(jnp.array([4, 4]), params))) == 1.0 and float(center.aux(near, 0, far)) == 0.0


def test_starc_is_invariant_to_potential_shaping_and_scaling():
    tabular = TabularMaze(maze.level_space().take(3))
    potential, heuristic = _build("potential", "goal_distance")
    env_reward, shaped = maze_rewards(tabular, potential, {}, heuristic, progress=0.0)
    args = (tabular.next_state, tabular.terminal, GAMMA)
    assert starc_distance(env_reward, shaped, *args) < 1e-6
    assert starc_distance(env_reward, 3.0 * env_reward, *args) < 1e-6
    assert starc_distance(env_reward, -env_reward, *args) == pytest.approx(1.0)
    naive, _ = _build("naive", "center")
    center_reward = maze_rewards(tabular, naive, {}, shaping.heuristics.REGISTRY.make("center"), progress=0.0)[1]
    assert 0.05 < starc_distance(env_reward, center_reward, *args) < 1.0
    assert np.all(canonical(env_reward, *args)[tabular.terminal] == 0)


def test_blend_starts_at_the_naive_sum_and_learns_a_discount():
    built, heuristic = _build("blend", "goal_distance")
    params = built.init(jax.random.PRNGKey(0))
    tabular = TabularMaze(maze.open_room())
    naive, _ = _build("naive", "goal_distance")
    blended = maze_rewards(tabular, built, params, heuristic, 0.0)[1]
    np.testing.assert_allclose(blended, maze_rewards(tabular, naive, {}, heuristic, 0.0)[1], rtol=1e-6)
    assert float(jax.nn.sigmoid(params["discount_logit"])) == pytest.approx(GAMMA, abs=1e-5)


def test_the_learned_shaping_report_reads_weight_and_bonus_over_progress():
    """On a hand-made learned shaping whose net ignores its inputs (hidden-to-output weights 0, output biases
    (0.7, -0.2)), the report gives weight init + 0.7 and bonus -0.2 at every n/N, and the mean shaping term
    w · mean(r_aux) + b; a net that reads n/N moves the weight with it."""
    from metarl.analysis.shaping import PROGRESS_POINTS, learned_over_progress, random_rollout

    spec = envs.make("CartPole-v1")
    heuristic = shaping.heuristics.REGISTRY.make("pd_bad")
    built = shaping.make("learned", heuristic=heuristic, gamma=GAMMA, obs_size=4, hidden=3, init_aux_weight=0.5)
    params = dict(built.init(jax.random.PRNGKey(0)), b2=jnp.asarray([0.7, -0.2]))
    inputs = random_rollout(spec, heuristic, steps=256)
    assert inputs.aux_reward.shape == (256, 1) and set(np.unique(inputs.aux_reward).tolist()) == {-5.0, 1.0}
    rows = learned_over_progress(params, inputs, {"init_aux_weight": 0.5})
    assert [row["progress"] for row in rows] == list(PROGRESS_POINTS)
    for row in rows:
        assert row["aux_weight_mean"] == row["aux_weight_p10"] == row["aux_weight_p90"] == pytest.approx(1.2)
        assert row["bonus_mean"] == pytest.approx(-0.2)
        assert row["shaping_term_mean"] == pytest.approx(1.2 * float(inputs.aux_reward.mean()) - 0.2, abs=1e-4)
    w1 = params["w1"].at[-1].set(0.0).at[-1, 0].set(2.0)  # the progress input drives hidden unit 0 ...
    timed = dict(params, w1=w1, w2=params["w2"].at[0, 0].set(1.0))  # ... which adds to the weight
    weights = [row["aux_weight_mean"] for row in learned_over_progress(timed, inputs, {"init_aux_weight": 0.5})]
    assert all(b > a for a, b in zip(weights, weights[1:], strict=False))
