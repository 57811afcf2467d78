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
