"""Every registered env trains: a tiny PPO run per registry entry (2 updates of 2 envs x 8 steps, one epoch
of one minibatch), with its losses finite and the agent's parameters moved. Parametrized over the env
registry, so an env registered later is covered with no new test code (envs whose constructor downloads a data
set are left out, as in test_envs.py).

The grid worlds are one env's dynamics (metarl.envs.gridworld: one ``reset`` and ``step``; each registered
name is a different mix of levels), so they train in one compiled call, vmapped over a level of each
registered name; every other env compiles its own (29 compiles in all, ~50 s of one core with the tests'
cheap code generation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import envs, objectives
from metarl.config import PPOConfig
from metarl.envs import gridworld
from metarl.envs.gymnax_adapter import NEEDS_DOWNLOAD
from metarl.inner import level_task, make_inner

TINY_ENV = PPOConfig(num_envs=2, num_steps=8, total_timesteps=2 * 8 * 2, update_epochs=1, num_minibatches=1, hidden_sizes=(8,))
GRID_WORLDS = tuple(name for name in envs.names() if name in gridworld.registered())
GROUPS = [(name,) for name in envs.names() if name not in NEEDS_DOWNLOAD and name not in GRID_WORLDS] + [GRID_WORLDS]


def _group_id(names):
    return names[0] if len(names) == 1 else f"{len(names)}-grid-worlds"


@pytest.mark.heavy
@pytest.mark.parametrize("names", GROUPS, ids=_group_id)
def test_every_registered_env_trains(names):
    specs = [envs.make(name) for name in names]
    spec = specs[0]
    for other in specs[1:]:  # one compiled program is only right for envs with the same dynamics and shapes
        assert (other.reset, other.step, other.obs_shape, other.action_kind, other.action_dim, other.level_space) == (
            spec.reset, spec.step, spec.obs_shape, spec.action_kind, spec.action_dim, spec.level_space), other.name
    inner = make_inner(TINY_ENV, spec, objectives.make("ppo"))
    keys = jax.random.split(jax.random.PRNGKey(0), len(specs))
    # each env's own level (a sampled level for a distribution of levels, else its default params)
    tasks = [level_task(s, TINY_ENV.num_updates, k) for s, k in zip(specs, keys, strict=True)]

    def initial_and_trained(task, key):
        return inner.init(key, task.env_params).agent_params, inner.train({}, task, key)

    if len(specs) == 1:  # no vmap: tracing a batched program costs a second more per env
        initial, output = jax.tree.map(lambda x: jnp.asarray(x)[None], jax.jit(initial_and_trained)(tasks[0], keys[0]))
    else:
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *tasks)
        initial, output = jax.jit(jax.vmap(initial_and_trained))(stacked, keys)
    metrics = jax.tree.map(np.asarray, output.metrics)
    assert metrics["policy_loss"].shape == (len(specs), TINY_ENV.num_updates)
    assert metrics["active"].all()
    checked = [name for name in metrics if name.endswith("_loss")] + ["entropy", "approx_kl", "episodes_completed"]
    for i, name in enumerate(names):
        for metric in checked:
            assert np.isfinite(metrics[metric][i]).all(), (name, metric, metrics[metric][i])
        before = jax.tree.leaves(jax.tree.map(lambda x, i=i: np.asarray(x[i]), initial))
        after = jax.tree.leaves(jax.tree.map(lambda x, i=i: np.asarray(x[i]), output.agent_params))
        assert all(np.isfinite(x).all() for x in after), name
        assert any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True)), f"{name}: the agent did not change"
        if output.heldout is not None:  # envs with a level space end with the held-out evaluation
            assert all(np.isfinite(np.asarray(v)[i]) for v in output.heldout.values()), name
