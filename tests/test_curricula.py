"""Curricula: every registry entry in the scan (jit, vmap over a population), SEC and PLR by hand, level spaces."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import perturbed, tiny

from metarl import curricula, envs, objectives
from metarl.curricula.base import LevelSignals, initial_state, record
from metarl.curricula.samplers import learnability_probs, plr_probs, rank_weights, sec_category_probs, sec_update_q
from metarl.envs.levels import LevelSpace
from metarl.inner.train import default_task, make_inner
from metarl.types import LifetimeContext, MetaParams


@pytest.fixture(scope="module")
def maze_levels():
    return envs.make("Maze-levels")


@functools.lru_cache  # at the default (moved) parameters, once per entry and process
def default_levels_sampled_on_fixed_signals(name, space):
    return levels_sampled_on_fixed_signals(name, space)


def levels_sampled_on_fixed_signals(name, space, meta_params=None, updates=4, num_envs=64, **kwargs):
    """The level ids (updates, num_envs) a curriculum (``kwargs``: its factory's) samples when every level always
    gives the same made-up learning signals (one fixed table), with the same keys for every curriculum;
    ``meta_params`` default: the initial ones, moved."""
    curriculum = curricula.make(name, space=space, **kwargs)
    meta_params = perturbed(curriculum.meta_init(jax.random.PRNGKey(0)), 4000) if meta_params is None else meta_params
    table = jax.random.uniform(jax.random.PRNGKey(7), (4, space.num_levels))
    state, sampled = curriculum.init(jax.random.PRNGKey(0)), []
    for update in range(updates):
        context = LifetimeContext(update, updates)
        ids, state = curriculum.sample(meta_params, state, jax.random.PRNGKey(100 + update), num_envs, context)
        signals = LevelSignals(table[0, ids], table[1, ids], (table[2, ids] > 0.5).astype(jnp.float32), jnp.ones_like(table[3, ids]))
        state = curriculum.update(meta_params, state, ids, signals, context)
        sampled.append(np.asarray(ids))
    return np.stack(sampled)


@pytest.mark.parametrize("name", curricula.names())
@pytest.mark.heavy
def test_every_curriculum_trains_a_population_in_the_scan(name, maze_levels):
    """Each registry entry in the jitted, vmapped scan, compiled once: level fractions, finite losses and held-out
    scores; on the same signals and keys its levels differ from every other entry's (one wired to another's
    factory would fail); and a learned curriculum's parameters reach the scan: members that differ only in them
    (same key) train on other levels, while members of a hand-designed one with the same key train identically."""
    config = tiny(num_steps=24)
    space = maze_levels.level_space
    mine = default_levels_sampled_on_fixed_signals(name, space)
    for other in curricula.names():
        if other != name:
            assert not np.array_equal(mine, default_levels_sampled_on_fixed_signals(other, space)), (name, other)
    curriculum = curricula.make(name, space=space)
    inner = make_inner(config, maze_levels, objectives.make("ppo"), curriculum=curriculum)
    start = curriculum.meta_init(jax.random.PRNGKey(0))
    members = jax.tree.map(lambda *xs: jnp.stack(xs), start, perturbed(start, 4000))
    population = MetaParams(objective={}, curriculum=members, shaping={})
    train = jax.jit(jax.vmap(inner.train, in_axes=(0, None, 0)))  # members (η_c, or none) x their own keys
    key = jax.random.PRNGKey(1)
    output = train(population, default_task(config, maze_levels), jnp.stack([key, key]))
    fractions = np.asarray(output.metrics["level_category_fraction"])
    assert fractions.shape == (2, config.num_updates, space.num_categories)
    np.testing.assert_allclose(fractions.sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(output.metrics["policy_loss"])))
    for value in output.heldout.values():  # the final agents on the held-out levels
        assert value.shape == (2,) and np.all((np.asarray(value) >= 0) & np.isfinite(np.asarray(value)))
    if name == "hardest":
        assert np.all(fractions[..., -1] == 1.0)
    if jax.tree.leaves(start):
        assert not np.array_equal(levels_sampled_on_fixed_signals(name, space, start), mine), "sampling ignores the parameters"
        assert not np.array_equal(fractions[0], fractions[1]), "the parameters do not reach the levels trained on"
    else:
        np.testing.assert_array_equal(fractions[0], fractions[1])
        np.testing.assert_array_equal(np.asarray(output.metrics["policy_loss"][0]), np.asarray(output.metrics["policy_loss"][1]))


@pytest.mark.heavy
def test_the_curriculum_state_rides_in_the_scan(maze_levels):
    config = tiny(num_steps=24)
    curriculum = curricula.make("plr", space=maze_levels.level_space)
    inner = make_inner(config, maze_levels, objectives.make("ppo"), curriculum=curriculum)
    runner = inner.init(jax.random.PRNGKey(0), maze_levels.default_params)
    for n in range(3):
        runner, _ = inner.update(runner, {}, maze_levels.default_params, _context(n, 3))
    state = runner.curriculum_state
    assert int(state.step) == 3 and int(state.count.sum()) >= 3 and int(state.seen.sum()) >= 1


def _context(n, total):
    from metarl.types import LifetimeContext

    return LifetimeContext(jnp.int32(n), jnp.int32(total))


def _toy_space(categories=(0, 0, 1, 2)) -> LevelSpace:
    k = len(categories)
    return LevelSpace(params={"x": jnp.arange(k)}, difficulty=jnp.linspace(0, 1, k), category=jnp.asarray(categories, jnp.int32),
                      num_categories=3, heldout={"x": jnp.arange(1)}, max_episode_steps=1)


def test_sec_updates_q_and_samples_as_computed_by_hand():
    # Q = [0, 0, 0], α = 0.5. Envs on levels 0, 1 (category 0) with |Â| 0.4, 0.8 and level 3 (category 2) with 0.2:
    # r = [0.6, –, 0.2] → Q = [0.3, 0, 0.1]; category 1 was not trained on and keeps Q = 0 (no decay).
    q = sec_update_q(jnp.zeros(3), jnp.array([0.6, 0.0, 0.2]), jnp.array([True, False, True]), alpha=0.5)
    np.testing.assert_allclose(q, [0.3, 0.0, 0.1], rtol=1e-6)
    # p(c) ∝ exp(Q/τ) with τ = 0.4: exp(0.75), exp(0), exp(0.25) normalized.
    expected = np.exp([0.75, 0.0, 0.25]) / np.exp([0.75, 0.0, 0.25]).sum()
    np.testing.assert_allclose(sec_category_probs(q, 0.4), expected, rtol=1e-6)

    space = _toy_space()
    sec = curricula.make("sec", space=space, alpha=0.5, temperature=0.4)
    state = sec.init(jax.random.PRNGKey(0))
    zeros = jnp.zeros(3)
    signals = LevelSignals(abs_advantage=jnp.array([0.4, 0.8, 0.2]), positive_advantage=zeros, success=zeros, episodes=zeros)
    state = sec.update({}, state, jnp.array([0, 1, 3]), signals, _context(0, 1))
    np.testing.assert_allclose(state.category_q, [0.3, 0.0, 0.1], rtol=1e-6)
    # Sampling: category 0's two levels share its probability; check the empirical frequencies.
    ids, _ = sec.sample({}, state, jax.random.PRNGKey(1), 200_000, _context(0, 1))
    frequency = np.bincount(np.asarray(ids), minlength=4) / 200_000
    np.testing.assert_allclose(frequency, [expected[0] / 2, expected[0] / 2, expected[1], expected[2]], atol=4e-3)


def test_plr_rank_prioritization_staleness_and_unseen_levels():
    np.testing.assert_allclose(rank_weights(jnp.array([0.1, 0.5, 0.3, 9.0]), jnp.array([True, True, True, False]), beta=1.0),
                               np.array([1 / 3, 1, 1 / 2, 0]) / (1 / 3 + 1 + 1 / 2), rtol=1e-6)
    space = _toy_space()
    state = initial_state(space)
    p = plr_probs(state, replay_prob=0.5, beta=0.3, staleness=0.3)
    np.testing.assert_allclose(p, 0.25, rtol=1e-6)  # nothing seen: uniform over unseen levels
    signals = LevelSignals(jnp.zeros(2), positive_advantage=jnp.array([0.2, 0.1]), success=jnp.zeros(2), episodes=jnp.zeros(2))
    state = record(state, jnp.array([0, 1]), signals, 4)
    p = np.asarray(plr_probs(state, replay_prob=0.5, beta=1.0, staleness=0.0))
    # half replays seen levels by rank (level 0 rank 1, level 1 rank 2), half draws the two unseen ones uniformly
    np.testing.assert_allclose(p, [0.5 * 2 / 3, 0.5 * 1 / 3, 0.25, 0.25], rtol=1e-6)


def test_learnability_top_set_fills_with_failed_levels_and_the_weighted_one_does_not():
    """Eight levels: one learnable (p = 0.5), one solved, six failed k = 1..6 times (p = 0.5^(k+1)). The top quarter (2
    levels) takes the learnable one and the least-failed one, each half of the non-exploring mass; in proportion to
    p(1 − p) the failed ones get their tiny shares."""
    success = jnp.array([0.5, 1.0] + [0.5 ** (k + 1) for k in range(1, 7)], jnp.float32)
    top = np.asarray(learnability_probs(success, jax.random.PRNGKey(0), top_fraction=0.25, explore=0.0))
    np.testing.assert_allclose(top, [0.5, 0, 0.5, 0, 0, 0, 0, 0], atol=1e-7)
    weighted = np.asarray(learnability_probs(success, jax.random.PRNGKey(0), 0.25, explore=0.2, weighting="proportional"))
    learnability = np.asarray(success * (1 - success))
    np.testing.assert_allclose(weighted, 0.2 / 8 + 0.8 * learnability / learnability.sum(), rtol=1e-5)
    assert weighted.argmax() == 0 and weighted[1] == pytest.approx(0.2 / 8) and np.all(np.diff(weighted[2:]) < 0)
    # nothing learnable (every p is 0 or 1): uniform, not a division by zero
    flat = np.asarray(learnability_probs(jnp.array([0.0, 1.0, 1.0, 0.0]), jax.random.PRNGKey(0), 0.25, 0.1, "proportional"))
    np.testing.assert_allclose(flat, 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="weighting must be one of top, proportional"):
        curricula.make("learnability", space=_toy_space(), weighting="ranked")


def test_record_keeps_running_statistics_per_level():
    space = _toy_space()
    state = initial_state(space)
    signals = LevelSignals(abs_advantage=jnp.array([1.0, 3.0, 2.0]), positive_advantage=jnp.array([0.5, 0.7, 0.1]),
                           success=jnp.array([1.0, 0.0, 1.0]), episodes=jnp.array([1.0, 1.0, 0.0]))
    state = record(state, jnp.array([2, 2, 0]), signals, 4)
    np.testing.assert_allclose(state.abs_advantage, [2.0, 0, 2.0, 0])  # first visit: the mean itself
    np.testing.assert_allclose(state.score, [0.1, 0, 0.6, 0], rtol=1e-6)
    np.testing.assert_allclose(state.success, [0.5, 0.5, 0.5 * 0.5 + 0.5 * 0.5, 0.5])  # level 0 ended no episode: prior kept
    assert state.seen.tolist() == [True, False, True, False] and int(state.step) == 1


@pytest.mark.parametrize("name", envs.LEVEL_ENVS)
def test_level_spaces_bin_difficulty_and_hold_out_the_hardest(name):
    space = envs.make(name).level_space
    categories = np.asarray(space.category)
    assert set(categories.tolist()) == set(range(space.num_categories))
    difficulty = np.asarray(space.difficulty)
    assert np.all(np.diff(difficulty[np.argsort(categories, kind="stable")][np.r_[0, -1]]) >= 0)
    assert space.num_heldout > 0
    first = jax.tree.map(lambda x: x[0], space.params)
    assert jax.tree.structure(first) == jax.tree.structure(jax.tree.map(lambda x: x[0], space.heldout))


def test_maze_levels_difficulty_is_the_shortest_path():
    from metarl.envs import maze

    space = maze.level_space()
    for index in (0, 7, 100):
        level = space.take(index)
        distance = maze.distances_from(np.asarray(level.walls), tuple(np.asarray(level.goal)))[tuple(np.asarray(level.start))]
        assert abs(maze.difficulty_of(int(distance)) - float(space.difficulty[index])) < 1e-6


@pytest.mark.parametrize("env_name", [name for name in envs.LEVEL_ENVS if name != "Maze-levels"])  # Maze-levels: the scan above
@pytest.mark.parametrize("name", curricula.names())
def test_every_curriculum_samples_levels_of_every_level_space(name, env_name):
    """Each sampler on each other level space: level ids inside the bank, one per env and update (the scan on
    Maze-levels trains with every sampler; this checks the other spaces' shapes and bins)."""
    space = envs.make(env_name).level_space
    sampled = levels_sampled_on_fixed_signals(name, space, updates=2, num_envs=8)
    assert sampled.shape == (2, 8) and sampled.min() >= 0 and sampled.max() < space.num_levels


@pytest.mark.parametrize("base", curricula.HAND_DESIGNED)
def test_a_learned_residual_starts_as_its_base_sampler_and_moves_away_from_it(base):
    """``learned`` with ``base=NAME`` at its initial parameters (zero output layer) draws exactly the levels the base
    sampler draws, update after update (its state kept as the base keeps it); moved parameters draw others; and a
    level the base never draws (logit -inf, e.g. hardest's easier categories) stays undrawn whatever the residual.
    (Uniform is the plain scorer, whose draws stored runs made with their own keys: there the same distribution.)"""
    space = envs.make("Maze-levels").level_space
    params = curricula.make("learned", space=space, base=base).meta_init(jax.random.PRNGKey(0))
    if base == "uniform":
        from metarl.curricula.learned import level_features, scorer

        logits = scorer(params, level_features(space, initial_state(space), 0.3, True))
        np.testing.assert_array_equal(logits, np.zeros(space.num_levels))
        return
    alone = levels_sampled_on_fixed_signals(base, space)
    np.testing.assert_array_equal(levels_sampled_on_fixed_signals("learned", space, meta_params=params, base=base), alone)
    moved = levels_sampled_on_fixed_signals("learned", space, meta_params=perturbed(params, 3, scale=2.0), base=base)
    assert not np.array_equal(moved, alone)
    never = ~np.isin(np.arange(space.num_levels), alone)
    if base == "hardest":
        assert never.any() and not np.isin(moved, np.flatnonzero(never)).any()


def test_a_learned_residual_names_the_allowed_bases():
    space = envs.make("Maze-pocket").level_space
    with pytest.raises(ValueError, match=r"base must be one of uniform, hardest, .*learnability.*got 'learned'"):
        curricula.make("learned", space=space, base="learned")


START_SPACES = {  # env: (layout name, held-out distance name, pocket starts, farthest solvable start)
    "Maze-starts": ("STARTS_LAYOUT", "STARTS_HELDOUT_DISTANCE", 7, 22),
    "Maze-pocket": ("POCKET_LAYOUT", "POCKET_HELDOUT_DISTANCE", 21, 14),
}


def test_every_start_cell_env_is_checked():
    assert set(START_SPACES) == {name for name in envs.LEVEL_ENVS if name.startswith("Maze-") and name != "Maze-levels"}


@pytest.mark.parametrize("env_name", sorted(START_SPACES))
def test_start_cell_levels_are_the_start_cells_of_one_maze(env_name):
    """Maze-starts / Maze-pocket: one layout and goal for every level; difficulty is the shortest path (the pocket:
    unreachable, difficulty 1); the held-out starts are solvable and the farthest."""
    from metarl.envs import maze

    layout_name, heldout_name, pocket_size, farthest_expected = START_SPACES[env_name]
    space = envs.make(env_name).level_space
    walls, goal = maze.starts_layout(getattr(maze, layout_name))
    distance = maze.distances_from(walls, goal)
    farthest = int(distance.max())
    pocket = 0
    for index in range(space.num_levels):
        level = space.take(index)
        assert np.array_equal(np.asarray(level.walls), walls) and tuple(np.asarray(level.goal)) == goal
        d = int(distance[tuple(np.asarray(level.start))])
        assert d != 0  # never the goal itself
        pocket += d < 0
        expected = 1.0 if d < 0 else (d - 1) / (farthest - 1)
        assert abs(float(space.difficulty[index]) - expected) < 1e-6
    assert pocket == pocket_size and farthest == farthest_expected
    heldout = [int(distance[tuple(np.asarray(s))]) for s in np.asarray(space.heldout.start)]
    assert sorted(heldout) == list(range(getattr(maze, heldout_name), farthest + 1))


@pytest.mark.parametrize("progress", [True, False])
def test_the_curriculum_report_reads_the_scorer_over_success_and_progress(progress, tmp_path):
    """The report's grid is the scorer's own logit: 0 everywhere at the start (zero output layer), moved parameters
    move it; its spread over n/N is 0 for a scorer without n/N and not for one whose n/N weights are moved; and
    `metarl plot` writes it beside a run's learned curriculum."""
    from metarl.analysis.curriculum import scorer_grid
    from metarl.app.plots import curriculum_report
    from metarl.io.learned import LearnedComponent, save_learned

    space = envs.make("Maze-pocket").level_space
    kwargs = {"base": "learnability", "progress": progress}
    params = curricula.make("learned", space=space, **kwargs).meta_init(jax.random.PRNGKey(0))
    spreads = lambda rows: [v for row in rows if "spread_over_progress" in row for v in row["spread_over_progress"].values()]  # noqa: E731
    start = scorer_grid(params, kwargs)
    assert all(v == 0 for row in start if "logit_at_success" in row for v in row["logit_at_success"].values())
    moved = perturbed(params, 5, scale=1.0)
    grid = scorer_grid(moved, kwargs)
    assert any(v != 0 for row in grid if "logit_at_success" in row for v in row["logit_at_success"].values())
    assert (max(spreads(grid)) > 0.01) == progress
    run = tmp_path / "run"
    (run / "learned").mkdir(parents=True)
    path = run / "learned" / "curriculum_learned.msgpack"
    save_learned(path, LearnedComponent("curriculum", "learned", kwargs, moved, {}))
    report = json.loads(curriculum_report(path).read_text())
    assert report["base"] == "learnability" and report["grid"] == json.loads(json.dumps(grid))
