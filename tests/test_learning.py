"""Real learning checks (slow): PPO solves CartPole-v1 and clearly learns Pendulum-v1 and Breakout-MinAtar,
each in a fresh process with XLA's default code generation, as users run (conftest.default_codegen).

Thresholds are the issue's for CartPole (>= 475 within 5e5 steps for 3 of 3 seeds) and, for the others,
far above what a random policy gets (Pendulum ≈ −1200, Breakout ≈ 0.5 per episode).
"""

import dataclasses

import jax
import numpy as np
import pytest
from conftest import default_codegen

from metarl import envs, objectives
from metarl.inner import default_task, final_return, make_train
from metarl.presets import CLASSIC_CONTROL, MINATAR, PENDULUM

pytestmark = pytest.mark.slow


def train_seeds(env_name, config, num_seeds, objective="ppo"):
    env = envs.make(env_name)
    train = jax.jit(jax.vmap(make_train(config, env, objectives.make(objective)), in_axes=(None, None, 0)))
    output = train({}, default_task(config, env), jax.random.split(jax.random.PRNGKey(0), num_seeds))
    returns = np.asarray(output.metrics["episode_return"])
    print(f"{env_name}: first-5-updates return {np.nanmean(returns[:, :5]):.2f}, final per seed {np.asarray(final_return(output))}")
    return np.asarray(final_return(output)), returns


@default_codegen
def test_ppo_solves_cartpole_for_3_of_3_seeds():
    config = dataclasses.replace(CLASSIC_CONTROL, total_timesteps=500_000)
    finals, _ = train_seeds("CartPole-v1", config, 3)
    assert (finals >= 475).all(), finals


@pytest.mark.manual  # 50 s: CartPole's check runs in CI, Pendulum's and Breakout's by hand (pytest -m slow)
@default_codegen
def test_ppo_learns_pendulum():
    config = dataclasses.replace(PENDULUM, total_timesteps=1_000_000)
    finals, _ = train_seeds("Pendulum-v1", config, 2)
    assert (finals > -400).all(), finals


@pytest.mark.manual
@default_codegen
def test_ppo_learns_breakout_minatar():
    """30 updates of 64 x 128 steps (246k steps a seed; 61 s in the slow tier on 2 cores, so it is run by hand; the
    former 1M-step check took 2 min 10 s). Measured: first-5-updates return 0.72 (the
    untrained agent gets ~0.5 an episode), final 7.4 and 8.7 for seeds 0 and 1, and still climbing."""
    config = dataclasses.replace(MINATAR, total_timesteps=64 * 128 * 30)
    finals, returns = train_seeds("Breakout-MinAtar", config, 2)
    early = np.nanmean(returns[:, :5])
    assert (finals > 5.0).all() and (finals > early + 3.0).all(), (early, finals)
