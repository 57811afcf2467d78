import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs
from metarl.envs.gymnax_adapter import NEEDS_DOWNLOAD
from metarl.errors import ConfigError, RegistryError

REQUIRED = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "Breakout-MinAtar", "SpaceInvaders-MinAtar", "Asterix-MinAtar", "Freeway-MinAtar"]


OFFLINE = [name for name in envs.names() if name not in NEEDS_DOWNLOAD]


@pytest.mark.parametrize("name", OFFLINE)
def test_every_registered_env_resets_and_steps_with_the_six_value_api(name):
    spec = envs.make(name)
    obs, state = spec.reset(jax.random.PRNGKey(0), spec.default_params)
    assert obs.shape == spec.obs_shape
    action = jnp.zeros((spec.action_dim,)) if spec.action_kind == "continuous" else jnp.int32(0)
    out = jax.jit(spec.step)(jax.random.PRNGKey(1), state, action, spec.default_params)
    obs, _, reward, terminated, truncated, stats = out
    assert obs.shape == spec.obs_shape and reward.shape == () and terminated.dtype == jnp.bool_ and truncated.shape == ()
    assert stats["final_observation"].shape == spec.obs_shape


def test_required_envs_are_registered():
    assert set(REQUIRED) <= set(envs.names())


def test_time_limit_is_truncation_not_termination_and_final_observation_is_kept():
    spec = envs.make("CartPole-v1", env_params={"max_steps_in_episode": 3})
    obs, state = spec.reset(jax.random.PRNGKey(0), spec.default_params)
    step = jax.jit(spec.step)
    flags = []
    for t in range(3):
        # alternate actions keep the pole up for 3 steps
        obs_next, state, reward, terminated, truncated, stats = step(jax.random.PRNGKey(t), state, jnp.int32(t % 2), spec.default_params)
        flags.append((bool(terminated), bool(truncated), bool(stats["episode_done"])))
        last_final, last_obs = stats["final_observation"], obs_next
    assert flags[-1] == (False, True, True)
    assert flags[0] == (False, False, False)
    assert not np.allclose(last_final, last_obs)  # obs was auto-reset; the pre-reset obs is kept
    assert float(stats["episode_return"]) == 3.0 and int(stats["episode_length"]) == 3


def test_vmap_over_env_params_gives_variants():
    spec = envs.make("CartPole-v1")
    params = jax.vmap(lambda g: spec.default_params.replace(gravity=g))(jnp.array([9.8, 30.0]))
    obs, state = jax.vmap(spec.reset, in_axes=(None, 0))(jax.random.PRNGKey(0), params)
    out = jax.vmap(spec.step, in_axes=(None, 0, None, 0))(jax.random.PRNGKey(1), state, jnp.int32(1), params)
    assert not np.allclose(out[0][0], out[0][1])


def test_continuous_actions_are_clipped_to_the_box():
    spec = envs.make("Pendulum-v1")
    _, state = spec.reset(jax.random.PRNGKey(0), spec.default_params)
    big = spec.step(jax.random.PRNGKey(1), state, jnp.array([100.0]), spec.default_params)
    edge = spec.step(jax.random.PRNGKey(1), state, jnp.array([spec.action_high[0]]), spec.default_params)
    np.testing.assert_allclose(big[0], edge[0])


def test_bad_env_names_and_params_are_named():
    with pytest.raises(RegistryError, match="known envs: .*CartPole-v1"):
        envs.make("CartPol")
    with pytest.raises(ConfigError, match="max_step"):
        envs.make("CartPole-v1", env_params={"max_step": 3})
