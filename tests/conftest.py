import os

# Two XLA host devices, so tests can compare a 1-device and a 2-device population mesh.
# Set before anything imports jax.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import dataclasses

import pytest

from metarl.config import PPOConfig

# A lifetime small enough to compile and run in a few seconds on 2 CPU cores.
TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))


@pytest.fixture
def tiny_config() -> PPOConfig:
    return TINY


def tiny(**overrides) -> PPOConfig:
    return dataclasses.replace(TINY, **overrides)
