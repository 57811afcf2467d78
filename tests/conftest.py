import dataclasses
import functools
import inspect
import os
import tempfile

import jax
import pytest

from metarl.config import PPOConfig

# Two XLA host devices, so tests can compare a 1-device and a 2-device population mesh; and cheap code
# generation (LLVM at -O0, its expensive passes off, XLA:CPU's elemental emitter for fusions instead of its
# fusion emitters), which compiles a tiny meta-train generation in 2.2 s instead of 10.2 s: IEEE float32 with
# no fast-math, but ordered or fused differently, so last bits may differ from XLA's default code. Processes
# the tests start inherit the flags. Checks that must run as users run, with XLA's default code generation,
# run in a fresh process (`default_codegen` below): the long learning checks (cheap code runs slower) and the
# checks whose numbers depend on how XLA compiles (two programs compared bit for bit, finite differences at a
# kink). Set before jax starts its backend.
DEFAULT_CODEGEN = "METARL_TEST_CODEGEN"
CHEAP_CODEGEN = " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true --xla_cpu_use_fusion_emitters=false"


def pytest_configure(config):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    if os.environ.get(DEFAULT_CODEGEN) != "default":
        flags += CHEAP_CODEGEN
    os.environ["XLA_FLAGS"] = flags.strip()


# Many tests build the same programs again (a fresh make_train per run); the persistent cache turns
# those recompiles into look-ups. One folder per test session, shared by its pytest-xdist workers and by
# the processes tests start (the CLI, fresh-process checks), never the user's own cache.
_session = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_cache = os.path.join(tempfile.gettempdir(), f"metarl-jax-cache-{_session}") if _session else tempfile.mkdtemp(prefix="metarl-jax-cache-")
os.makedirs(_cache, exist_ok=True)
jax.config.update("jax_compilation_cache_dir", _cache)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"

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
outer = { population_size = 4, antithetic = false }
tasks = { normalize = false }
verdict = { num_seeds = 0 }
"""



def member_evaluator(config, built):
    """The ES member evaluator of a built meta-train run (``metarl.meta.run.build``): what its loop evaluates."""
    from metarl.meta.tasks import make_member_evaluator

    return make_member_evaluator(config, built.objective, built.env_specs, config.tasks.seeds_per_member, built.components)


def in_default_codegen(test_file: str, function: str, *args, timeout: int = 600) -> str:
    """Run ``function(*args)`` of the test module ``test_file`` in a fresh process with XLA's default code
    generation (checks whose numbers depend on how XLA compiles, e.g. two programs compared bit for bit, and
    the long learning checks through ``default_codegen``). Returns the process's output; fails the calling
    test with its error."""
    import subprocess
    import sys
    from pathlib import Path

    module = Path(test_file)
    env = {**os.environ, DEFAULT_CODEGEN: "default", "XLA_FLAGS": os.environ["XLA_FLAGS"].replace(CHEAP_CODEGEN.strip(), "").strip()}
    script = (f"import sys; sys.path.insert(0, {str(module.parent)!r}); import {module.stem} as m; "
              f"m.{function}(*{args!r})")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def default_codegen(test):
    """Decorate a test without arguments to run it in a fresh process with XLA's default code generation."""

    @functools.wraps(test)
    def run_as_users_run():
        if os.environ.get(DEFAULT_CODEGEN) == "default":  # already in that process
            return test()
        print(in_default_codegen(inspect.getfile(test), test.__name__))

    return run_as_users_run


def perturbed(params, seed: int, scale: float = 0.5):
    """``params`` moved by ``scale`` · N(0, 1) in every leaf, drawn from ``PRNGKey(seed)`` (learned components start
    at a hand-set point; the registry tests move them to see that their output moves)."""
    import jax.numpy as jnp

    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), max(len(leaves), 1))
    return jax.tree.unflatten(treedef, [x + scale * jax.random.normal(k, jnp.shape(x)) for x, k in zip(leaves, keys, strict=False)])

