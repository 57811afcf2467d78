import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs
from metarl.envs import gridworld as gw

GRID_ENVS = [name for name in envs.names() if name.startswith("GridWorld-")]


def rollout(spec, params, key, steps=40):
    obs, state = spec.reset(key, params)
    step = jax.jit(spec.step)
    out = []
    for t in range(steps):
        action = jnp.int32(jax.random.randint(jax.random.fold_in(key, 1000 + t), (), 0, 4))
        obs, state, reward, terminated, truncated, stats = step(jax.random.fold_in(key, t), state, action, params)
        out.append((np.asarray(obs), float(reward), bool(terminated), bool(truncated)))
    return out


def level_with_one_object(reward=0.7, terminate_prob=0.0, respawn_prob=0.0, max_steps=50):
    params = gw.configuration_params("sparse")
    return params.replace(
        reward=params.reward.at[0].set(reward),
        terminate_prob=params.terminate_prob.at[0].set(terminate_prob),
        respawn_prob=params.respawn_prob.at[0].set(respawn_prob),
        max_steps=jnp.int32(max_steps),
    )


def placed(spec, params, agent, obj):
    """A state with the agent and object 0 at given cells."""
    _, state = spec.reset(jax.random.PRNGKey(0), params)
    return state.replace(agent=jnp.asarray(agent, jnp.int32), objects=state.objects.at[0].set(jnp.asarray(obj, jnp.int32)))


def test_every_configuration_is_registered_and_the_mixes_too():
    assert {f"GridWorld-{name}" for name in gw.CONFIGURATIONS} <= set(GRID_ENVS)
    assert {"GridWorld-train", "GridWorld-heldout"} <= set(GRID_ENVS)
    assert not set(gw.TRAIN_CONFIGURATIONS) & set(gw.HELD_OUT_CONFIGURATIONS)


def test_deterministic_given_a_key_and_different_for_another():
    spec = envs.make("GridWorld-dense")
    first = rollout(spec, spec.default_params, jax.random.PRNGKey(3))
    second = rollout(spec, spec.default_params, jax.random.PRNGKey(3))
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:] == b[1:]
    other = rollout(spec, spec.default_params, jax.random.PRNGKey(4))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_collecting_an_object_pays_its_reward_and_terminates_with_its_probability():
    spec = envs.make("GridWorld-sparse")
    for terminate_prob, expect_terminal in ((1.0, True), (0.0, False)):
        params = level_with_one_object(reward=0.7, terminate_prob=terminate_prob)
        state = placed(spec, params, agent=(4, 4), obj=(4, 5))  # object to the right
        obs, state2, reward, terminated, truncated, stats = spec.step(jax.random.PRNGKey(1), state, jnp.int32(1), params)
        assert float(reward) == pytest.approx(0.7)
        assert bool(terminated) is expect_terminal and not bool(truncated)
        if not expect_terminal:
            assert not bool(state2.present[0])  # collected and, with respawn 0, gone
            assert int(state2.agent[0]) == 4 and int(state2.agent[1]) == 5


def test_respawn_probability_one_brings_the_object_back_on_a_free_cell():
    spec = envs.make("GridWorld-sparse")
    params = level_with_one_object(respawn_prob=1.0)
    state = placed(spec, params, agent=(4, 4), obj=(4, 5))
    _, state2, reward, *_ = spec.step(jax.random.PRNGKey(1), state, jnp.int32(1), params)
    assert float(reward) > 0 and bool(state2.present[0])
    cell = tuple(int(v) for v in state2.objects[0])
    assert cell != (4, 5) and not bool(params.walls[cell])


def test_walls_block_moves_and_episodes_truncate_at_max_steps():
    spec = envs.make("GridWorld-small")  # 5x5 room inside the 9x9 grid
    params = spec.default_params.replace(max_steps=jnp.int32(3))
    _, state = spec.reset(jax.random.PRNGKey(0), params)
    state = state.replace(agent=jnp.asarray((2, 2), jnp.int32), present=jnp.zeros_like(state.present))
    _, state, _, terminated, truncated, _ = spec.step(jax.random.PRNGKey(1), state, jnp.int32(0), params)  # up: wall
    assert tuple(int(v) for v in state.agent) == (2, 2) and not bool(truncated)
    for t in range(2):
        _, state, _, terminated, truncated, stats = spec.step(jax.random.PRNGKey(2 + t), state, jnp.int32(3), params)
    assert bool(truncated) and not bool(terminated) and int(stats["episode_length"]) == 3


def test_rewards_only_come_from_objects_and_match_the_level():
    spec = envs.make("GridWorld-harmful")
    params = spec.default_params
    rewards = {r for _, r, _, _ in rollout(spec, params, jax.random.PRNGKey(5), steps=200)}
    allowed = {0.0} | {float(r) for r, a in zip(params.reward, params.object_active, strict=True) if a}
    assert all(any(abs(r - v) < 1e-5 for v in allowed) for r in rewards), (rewards, allowed)
    assert len(rewards) > 1  # something was collected in 200 random steps


@pytest.mark.parametrize("name", ["GridWorld-train", "GridWorld-heldout"])
def test_vmap_over_levels_equals_one_level_at_a_time(name):
    spec = envs.make(name)
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    levels = jax.vmap(spec.level)(keys)
    obs, states = jax.vmap(spec.reset)(keys, levels)
    actions = jnp.arange(6, dtype=jnp.int32) % 4
    batched = jax.vmap(spec.step)(keys, states, actions, levels)
    for i in range(6):
        level = jax.tree.map(lambda x, i=i: x[i], levels)
        o, s = spec.reset(keys[i], level)
        np.testing.assert_array_equal(o, obs[i])
        single = spec.step(keys[i], s, actions[i], level)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(batched), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b)[i])


def test_level_sampling_covers_the_configurations_and_keeps_reward_signs():
    spec = envs.make("GridWorld-train")
    levels = jax.vmap(spec.level)(jax.random.split(jax.random.PRNGKey(1), 200))
    max_steps = set(np.asarray(levels.max_steps).tolist())
    assert max_steps == {gw.CONFIGURATIONS[c][1] for c in gw.TRAIN_CONFIGURATIONS}
    base = {c: gw.configuration_params(c) for c in gw.TRAIN_CONFIGURATIONS}
    signs = {tuple(np.sign(np.asarray(p.reward)).tolist()) for p in base.values()}
    for reward in np.asarray(levels.reward):
        assert tuple(np.sign(reward).tolist()) in signs
    jitter = np.abs(np.asarray(levels.reward)).max() / max(float(np.abs(np.asarray(p.reward)).max()) for p in base.values())
    assert 1.0 < jitter <= 1.0 + gw.REWARD_JITTER + 1e-6


def test_observation_shows_agent_and_present_objects_by_type():
    spec = envs.make("GridWorld-dense")
    obs, state = spec.reset(jax.random.PRNGKey(2), spec.default_params)
    maps = np.asarray(obs).reshape(1 + gw.NUM_TYPES, gw.SIZE, gw.SIZE)
    assert maps[0].sum() == 1 and maps[0][tuple(np.asarray(state.agent))] == 1
    active = np.asarray(spec.default_params.object_active)
    assert maps[1:].sum() == active.sum()  # distinct cells, one mark per object
