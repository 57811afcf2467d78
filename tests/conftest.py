import os

# Two XLA host devices, so tests can compare a 1-device and a 2-device population mesh.
# Set before anything imports jax.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import dataclasses
import tempfile

import jax
import pytest

from metarl.config import PPOConfig

# Many tests build the same programs again (a fresh make_train per run); the persistent cache turns
# those recompiles into look-ups. A per-session folder keeps runs independent.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="metarl-jax-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

# A lifetime small enough to compile and run in a few seconds on 2 CPU cores.
TINY = PPOConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 3, update_epochs=2, num_minibatches=2, hidden_sizes=(16,))


@pytest.fixture
def tiny_config() -> PPOConfig:
    return TINY


def tiny(**overrides) -> PPOConfig:
    return dataclasses.replace(TINY, **overrides)


# A meta-training run of a few seconds: tiny PPO, 4 members, 2 generations, one checkpoint per generation.
TINY_META = """
command = "meta-train"
name = "{objective}_s{seed}"
[base]
num_generations = 2
chunk_size = 1
eval_seeds = 0
ppo = { num_envs = 4, num_steps = 16, total_timesteps = 192, update_epochs = 2, num_minibatches = 2, hidden_sizes = [16] }
es = { population_size = 4, antithetic = false }
tasks = { normalize = false }
verdict = { num_seeds = 0 }
"""



def member_evaluator(config, built):
    """The ES member evaluator of a built meta-train run (``metarl.meta.run.build``): what its loop evaluates."""
    from metarl.meta.tasks import make_member_evaluator

    return make_member_evaluator(config, built.objective, built.env_specs, config.tasks.seeds_per_member, built.plugins)
