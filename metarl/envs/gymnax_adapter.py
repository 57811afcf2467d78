"""The one module that imports gymnax (1.0: six-value ``step``, auto-reset, ``final_observation``).

It turns a gymnax environment into an :class:`EnvSpec`: the static structure (shapes, action space)
plus ``reset``/``step`` functions whose traced numbers live in ``EnvParams`` passed on every call, so a
batch of env variants is a ``vmap`` over params. Episode statistics come from gymnax's own
``LogWrapper``; continuous actions are clipped to the action box here, so the policy's log-probability
stays that of the unclipped sample.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces
from gymnax.environments.classic_control import cartpole
from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper

from metarl.envs.levels import make_level_space
from metarl.envs.spec import EnvSpec
from metarl.errors import ConfigError

# gymnax envs whose constructor downloads a data set (no use on an offline machine).
NEEDS_DOWNLOAD = frozenset({"MNISTBandit-bsuite"})


def env_ids() -> list[str]:
    return list(gymnax.registered_envs)


def make_gymnax(env_id: str, *, flatten_observations: bool = False, env_params: dict[str, Any] | None = None, **env_kwargs) -> EnvSpec:
    """An :class:`EnvSpec` for a registered gymnax env.

    ``env_params`` overrides fields of the env's default ``EnvParams`` (e.g. ``max_steps_in_episode``);
    ``env_kwargs`` go to the env's constructor.
    """
    env, default_params = gymnax.make(env_id, **env_kwargs)
    if env_params:
        unknown = sorted(set(env_params) - set(vars(default_params)))
        if unknown:
            raise ConfigError(f"env_params: unknown fields {unknown} for {env_id}; allowed: {sorted(vars(default_params))}")
        default_params = default_params.replace(**env_params)
    if flatten_observations:
        env = FlattenObservationWrapper(env)
    return _wrap(env, default_params, env_id)


def _wrap(env, default_params, env_id: str) -> EnvSpec:
    """The EnvSpec of a gymnax env (episode statistics from gymnax's LogWrapper)."""
    env = LogWrapper(env)

    obs_space = env.observation_space(default_params)
    action_space = env.action_space(default_params)
    if isinstance(action_space, spaces.Discrete):
        action_kind, action_dim, low, high = "discrete", int(action_space.n), None, None
    elif isinstance(action_space, spaces.Box):
        action_kind = "continuous"
        action_dim = int(np.prod(action_space.shape))
        low = tuple(np.broadcast_to(np.asarray(action_space.low, np.float32), (action_dim,)).tolist())
        high = tuple(np.broadcast_to(np.asarray(action_space.high, np.float32), (action_dim,)).tolist())
    else:
        raise ConfigError(f"env: {env_id} has a {type(action_space).__name__} action space; metarl supports Discrete and Box")
    action_shape = tuple(action_space.shape)

    def reset(key, params):
        return env.reset(key, params)

    def step(key, state, action, params):
        if action_kind == "continuous":
            action = jnp.clip(action, jnp.asarray(low), jnp.asarray(high)).reshape(action_shape)
        obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)
        stats = {
            "final_observation": info["final_observation"],
            "episode_return": info["returned_episode_returns"],
            "episode_length": info["returned_episode_lengths"],
            "episode_done": info["returned_episode"],
        }
        return obs, state, jnp.asarray(reward, jnp.float32).reshape(()), terminated.reshape(()), truncated.reshape(()), stats

    return EnvSpec(
        name=env_id,
        reset=reset,
        step=step,
        default_params=default_params,
        obs_shape=tuple(obs_space.shape),
        action_kind=action_kind,
        action_dim=action_dim,
        action_low=low,
        action_high=high,
    )


# --- CartPole levels: physics and start-state spread set by a difficulty in [0, 1] ---

CARTPOLE_LEVEL_STEPS = 200  # a level is solved (success) when the pole stays up for this many steps


def _cartpole_level_env():
    @struct.dataclass
    class CartPoleLevelParams(cartpole.EnvParams):
        start_spread: float = 0.05  # each state variable starts uniform in ±start_spread

    class CartPoleLevels(cartpole.CartPole):
        """gymnax CartPole whose reset draws the start state from ±``params.start_spread`` (gymnax: ±0.05)."""

        @property
        def default_params(self):
            return CartPoleLevelParams(max_steps_in_episode=CARTPOLE_LEVEL_STEPS)

        def reset_env(self, key, params):
            obs, state = super().reset_env(key, params)
            scale = params.start_spread / 0.05
            state = state.replace(x=state.x * scale, x_dot=state.x_dot * scale,
                                  theta=state.theta * scale, theta_dot=state.theta_dot * scale)
            return self.get_obs(state), state

    return CartPoleLevels(), CartPoleLevelParams


def cartpole_level(params_class, difficulty: float):
    """Harder = shorter pole (faster dynamics), weaker push and a wider spread of start states."""
    length = 0.5 - 0.3 * difficulty
    masspole = 0.1
    return params_class(
        length=length,
        polemass_length=masspole * length,
        force_mag=10.0 - 4.0 * difficulty,
        start_spread=0.05 + 0.1 * difficulty,
        max_steps_in_episode=CARTPOLE_LEVEL_STEPS,
    )


def make_cartpole_levels(num_levels: int = 64, num_heldout: int = 16, num_categories: int = 4) -> EnvSpec:
    """``CartPole-levels``: a bank of ``num_levels`` CartPoles of difficulty evenly spread in [0, 1], and
    ``num_heldout`` held-out levels of difficulty in [0.9, 1] (between the bank's). Episodes last at most
    :data:`CARTPOLE_LEVEL_STEPS` steps; surviving them is a success."""
    env, params_class = _cartpole_level_env()
    difficulty = np.linspace(0.0, 1.0, num_levels)
    heldout_difficulty = np.linspace(0.9, 1.0, num_heldout + 2)[1:-1]
    space = make_level_space(
        [cartpole_level(params_class, float(d)) for d in difficulty],
        difficulty,
        [cartpole_level(params_class, float(d)) for d in heldout_difficulty],
        num_categories,
        CARTPOLE_LEVEL_STEPS,
    )
    spec = _wrap(env, env.default_params, "CartPole-levels")
    return dataclasses.replace(spec, default_params=space.take(0), sample_params=space.sample, level_space=space)
