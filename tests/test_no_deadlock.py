"""Guard against the XLA CPU deadlock seen with jax/jaxlib 0.10.2 (shared/ANCHORS.md).

Vmapped training is run in a fresh process under a timeout, with XLA's default code generation (the code
users run, not the tests' cheap codegen): a version bump that brings the hang back makes this test fail
instead of hanging CI.
"""

import os
import subprocess

import pytest
from conftest import CHEAP_CODEGEN, in_default_codegen


def train_vmapped_over_seeds_and_members():
    """Runs in the fresh process: seeds and population members vmapped, as meta-training does."""
    flags = os.environ.get("XLA_FLAGS", "")
    assert not any(flag in flags for flag in CHEAP_CODEGEN.split()), f"not XLA's default code generation: {flags}"
    import jax

    from metarl import envs, objectives
    from metarl.config import PPOConfig
    from metarl.inner import default_task, make_train

    config = PPOConfig(num_envs=4, num_steps=32, total_timesteps=4 * 32 * 4, num_minibatches=2, hidden_sizes=(32,))
    env = envs.make("CartPole-v1")
    objective = objectives.make("lpo")
    train = make_train(config, env, objective)
    population = jax.vmap(objective.init)(jax.random.split(jax.random.PRNGKey(0), 4))
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    seeds = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))(objective.init(jax.random.PRNGKey(0)), default_task(config, env), keys)
    jax.block_until_ready(seeds)
    members = jax.jit(jax.vmap(train, in_axes=(0, None, 0)))(population, default_task(config, env), keys)
    jax.block_until_ready(members)
    print("ok")


@pytest.mark.heavy
@pytest.mark.slow  # the longest end-to-end checks (36-100 s each on 2 cores) run in CI's slow step
def test_vmapped_training_finishes_in_a_fresh_process():
    try:
        output = in_default_codegen(__file__, "train_vmapped_over_seeds_and_members", timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("vmapped training did not finish in 240 s: likely the XLA CPU deadlock (see pyproject.toml's jax pin)")
    assert output.strip().endswith("ok")
