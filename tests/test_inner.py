import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, perturbed, tiny

from metarl import envs, objectives
from metarl.inner import default_task, final_return, make_train
from metarl.types import LifetimeContext, Task


def _train(name="ppo", config=TINY, env="CartPole-v1", **kwargs):
    env_spec = envs.make(env)
    objective = objectives.make(name, **kwargs)
    return make_train(config, env_spec, objective), objective, default_task(config, env_spec)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_trees_close(a, b, rtol=1e-5, atol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, equal_nan=True)


def test_metrics_are_stacked_per_update():
    train, objective, task = _train()
    output = jax.jit(train)({}, task, jax.random.PRNGKey(0))
    for name in ("episode_return", "episode_length", "policy_loss", "value_loss", "entropy", "approx_kl", "drift_mean", "active"):
        assert output.metrics[name].shape == (TINY.num_updates,), name
    assert bool(jnp.all(output.metrics["active"]))
    assert jnp.all(jnp.isfinite(output.metrics["value_loss"]))


def test_same_key_gives_identical_output_and_other_keys_differ():
    train, _, task = _train("lpo")
    meta_params = objectives.make("lpo").init(jax.random.PRNGKey(0))
    jitted = jax.jit(train)
    first = jitted(meta_params, task, jax.random.PRNGKey(7))
    second = jitted(meta_params, task, jax.random.PRNGKey(7))
    assert_trees_equal(first, second)
    other = jitted(meta_params, task, jax.random.PRNGKey(8))
    assert not np.array_equal(first.metrics["policy_loss"], other.metrics["policy_loss"])


@pytest.mark.slow  # 15-21 s: in CI's slow step, so the README's test command stays within 8 min on 2 cores
@pytest.mark.heavy
def test_jit_matches_no_jit():
    train, _, task = _train(config=tiny(num_steps=8, total_timesteps=4 * 8 * 2))
    with jax.disable_jit():
        eager = train({}, task, jax.random.PRNGKey(3))
    jitted = jax.jit(train)({}, task, jax.random.PRNGKey(3))
    assert_trees_close(eager, jitted, rtol=1e-4, atol=1e-4)


def test_train_compiles_once_for_new_keys_and_meta_params():
    env_spec = envs.make("CartPole-v1")
    objective = objectives.make("ta_lpo")
    train = make_train(TINY, env_spec, objective)
    task = default_task(TINY, env_spec)
    counted = jax.jit(chex.assert_max_traces(train, n=1))
    for seed in range(3):
        jax.block_until_ready(counted(objective.init(jax.random.PRNGKey(seed)), task, jax.random.PRNGKey(seed)))
    # A different lifetime N is a traced value too: no retrace.
    jax.block_until_ready(counted(objective.init(jax.random.PRNGKey(0)), task._replace(num_updates=jnp.int32(2)), jax.random.PRNGKey(0)))
    chex.clear_trace_counter()


@pytest.mark.heavy
def test_vmap_over_seeds_equals_each_seed_alone():
    train, _, task = _train()
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batched = jax.jit(jax.vmap(train, in_axes=(None, None, 0)))({}, task, keys)
    single = jax.jit(train)
    for i in range(3):
        alone = single({}, task, keys[i])
        assert_trees_close(jax.tree.map(lambda x: x[i], batched), alone)


@pytest.mark.heavy
def test_vmap_over_a_population_of_meta_params_equals_each_member_alone():
    # a drift large enough to tell members apart: unit output scale, no dead zone (offset) near r = 1
    train, objective, task = _train("ta_lpo", output_scale=1.0, offset=0.0)
    population = jax.vmap(objective.init)(jax.random.split(jax.random.PRNGKey(1), 4))
    key = jax.random.PRNGKey(5)
    batched = jax.jit(jax.vmap(train, in_axes=(0, None, None)))(population, task, key)
    single = jax.jit(train)
    for i in range(4):
        alone = single(jax.tree.map(lambda x: x[i], population), task, key)
        # atol 1e-4: TA-LPO's context enters as a second product, whose rounding XLA may order differently under
        # vmap; a few updates of training carry it to ~2e-5 on small losses (1e-5 held before the split)
        assert_trees_close(jax.tree.map(lambda x: x[i], batched), alone, atol=1e-4)
    # different members really are different learners
    assert not np.allclose(batched.metrics["policy_loss"][0], batched.metrics["policy_loss"][1])


def test_shorter_task_lifetime_equals_a_run_configured_with_that_lifetime():
    """A traced lifetime N < scan length skips the remaining updates and leaves the agent as after N."""
    long_config = tiny(total_timesteps=TINY.batch_size * 5)
    short_config = tiny(total_timesteps=TINY.batch_size * 3)
    env_spec = envs.make("CartPole-v1")
    objective = objectives.make("ppo", clip_eps=0.2)
    short = jax.jit(make_train(short_config, env_spec, objective))({}, default_task(short_config, env_spec), jax.random.PRNGKey(2))
    long_train = jax.jit(make_train(long_config, env_spec, objective))
    masked = long_train({}, Task(jnp.int32(3), env_spec.default_params), jax.random.PRNGKey(2))
    assert masked.metrics["active"].tolist() == [True, True, True, False, False]
    assert_trees_close(masked.agent_params, short.agent_params, rtol=1e-6, atol=1e-6)
    for name, values in short.metrics.items():
        if name != "active":
            np.testing.assert_allclose(masked.metrics[name][:3], values, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert np.isfinite(float(final_return(short)))  # episodes ended in the last update: a number to compare
    assert float(final_return(masked)) == pytest.approx(float(final_return(short)), rel=1e-6)


@functools.lru_cache  # at the default (moved) parameters, once per entry and process
def default_update_on_a_fixed_batch(name):
    return update_on_a_fixed_batch(name)


def update_on_a_fixed_batch(name, meta_params=None):
    """The objective's loss and its gradient in the agent's outputs (the direction the agent is moved in) on one
    fixed batch, at ``meta_params`` (default: the initial ones, moved). A drift objective reads ratios and
    advantages; a target objective first computes its targets from one fixed trajectory."""
    from metarl.objectives import DriftInputs, TargetInputs, TrajectoryInputs

    objective = objectives.make(name)
    meta_params = perturbed(objective.init(jax.random.PRNGKey(0)), 5000) if meta_params is None else meta_params
    k = jax.random.split(jax.random.PRNGKey(11), 8)
    context = LifetimeContext(3, 10)
    log_prob = jnp.log(jax.random.uniform(k[0], (24,), minval=0.1, maxval=0.9))
    if objective.targets is None:
        inputs = DriftInputs(log_prob, log_prob + 0.3 * jax.random.normal(k[1], (24,)), 2.0 * jax.random.normal(k[2], (24,)), context)
        wrt = ("log_prob",)
    else:
        m, end = objective.head_size, jax.random.bernoulli(k[3], 0.1, (8, 3))
        y, next_y = (jax.nn.softmax(jax.random.normal(key, (8, 3, m))) for key in k[5:7])
        trajectory = TrajectoryInputs(jax.random.normal(k[4], (8, 3)), end, end, jnp.float32(0.99), jnp.exp(log_prob).reshape(8, 3),
                                      y, next_y, context)
        pi_hat, y_hat, _ = jax.jit(objective.targets)(meta_params, trajectory)
        inputs = TargetInputs(log_prob, jax.random.normal(k[7], (24, m)), pi_hat.reshape(24), y_hat.reshape(24, m), context)
        wrt = ("log_prob", "y_logits")
    loss, grads = jax.value_and_grad(lambda xs: objective.loss(meta_params, inputs._replace(**dict(zip(wrt, xs, strict=True))))[0])(
        tuple(getattr(inputs, f) for f in wrt))
    return objective.agent, np.concatenate([np.ravel(loss), *(np.ravel(g) for g in grads)])


def different(a, b):
    return a[0] != b[0] or a[1].shape != b[1].shape or not np.allclose(a[1], b[1])


@pytest.mark.parametrize("name", objectives.names())
@pytest.mark.heavy
def test_every_objective_trains_a_population_on_sampled_levels(name):
    """Each registry entry's inner loop, compiled once: a population of meta-parameters x sampled grid-world
    levels in one jitted call, with the objective's loss terms finite. Its update on one fixed batch differs from
    every other entry's (one wired to another's factory would fail); and a learned objective's parameters reach
    the agent: members that differ only in them (same key, same level) end with other agent parameters, while
    members of a hand-designed objective with the same key end identical."""
    from metarl.inner import level_task

    mine = default_update_on_a_fixed_batch(name)
    for other in objectives.names():
        if other != name:
            assert different(mine, default_update_on_a_fixed_batch(other)), (name, other)
    # meta-training's learning rate (0.01, constant): at PPO's 2.5e-4 the tiny lifetime keeps |r - 1| so small
    # that LPO's drift stays in its exact-zero band (the offset), and every member trains alike
    train, objective, _ = _train(name, config=tiny(lr=0.01, anneal_lr=False), env="GridWorld-train")
    spec = envs.make("GridWorld-train")
    start = objective.init(jax.random.PRNGKey(0))
    population = jax.tree.map(lambda *xs: jnp.stack(xs), start, perturbed(start, 5000))
    key = jax.random.PRNGKey(1)
    output = jax.jit(jax.vmap(lambda p, k: train(p, level_task(spec, TINY.num_updates, k), k)))(population, jnp.stack([key, key]))
    assert output.metrics["policy_loss"].shape == (2, TINY.num_updates)
    losses = [key for key in output.metrics if key.endswith("_loss")]
    assert "policy_loss" in losses and len(losses) >= 2  # the objective's term and the agent's head term
    for key in losses + ["entropy", "approx_kl"]:
        assert jnp.all(jnp.isfinite(output.metrics[key])), key
    first, second = (jax.tree.map(lambda x, i=i: np.asarray(x[i]), output.agent_params) for i in (0, 1))
    if jax.tree.leaves(start):
        assert different(update_on_a_fixed_batch(name, start), mine), "the update ignores the meta-parameters"
        assert any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True)), \
            "the meta-parameters do not reach the agent's training"
    else:
        assert_trees_equal(first, second)


@pytest.mark.parametrize("env", ["Pendulum-v1", "Breakout-MinAtar", "Acrobot-v1"])
def test_continuous_and_image_envs_run(env):
    config = tiny(network="auto")
    train, _, task = _train(config=config, env=env)
    output = jax.jit(train)({}, task, jax.random.PRNGKey(0))
    assert jnp.all(jnp.isfinite(output.metrics["value_loss"]))
    assert jnp.all(jnp.isfinite(output.metrics["entropy"]))


def test_a_learned_step_size_at_zero_trains_exactly_as_the_plain_lpo_and_at_log_2_as_twice_the_lr():
    """LPO with ``learned_step``: its extra meta-parameters log_step = (a, b) scale the inner lr by exp(a + b·n/N).
    At (0, 0) the run is the plain LPO's (to the last bits: the tests' cheap code generation fuses the extra product
    its own way; XLA's default gives the same bits); at (log 2, 0) it is the plain LPO's with the config's lr doubled."""
    import dataclasses

    plain_train, plain, task = _train("lpo", hidden=16)
    stepped_train, stepped, _ = _train("lpo", hidden=16, learned_step=True)
    key = jax.random.PRNGKey(4)
    params = plain.init(jax.random.PRNGKey(1))
    start = stepped.init(jax.random.PRNGKey(1))
    assert_trees_equal({k: v for k, v in start.items() if k != "log_step"}, params)  # the same drift net, from the same key
    np.testing.assert_array_equal(start["log_step"], 0.0)
    assert_trees_close(jax.jit(stepped_train)(start, task, key).agent_params, jax.jit(plain_train)(params, task, key).agent_params,
                       rtol=1e-6, atol=1e-9)
    doubled_train = make_train(dataclasses.replace(TINY, lr=2 * TINY.lr), envs.make("CartPole-v1"), plain)
    doubled = jax.jit(doubled_train)(params, task, key).agent_params
    log_2 = {**start, "log_step": jnp.array([jnp.log(2.0), 0.0])}
    assert_trees_close(jax.jit(stepped_train)(log_2, task, key).agent_params, doubled)
    assert not np.allclose(jax.tree.leaves(doubled)[0], jax.tree.leaves(jax.jit(plain_train)(params, task, key).agent_params)[0])
