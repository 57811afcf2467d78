import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import default_codegen

from metarl import envs, objectives
from metarl.config import PPOConfig
from metarl.errors import ConfigError
from metarl.inner import default_task, final_return, make_train
from metarl.objectives import TrajectoryInputs
from metarl.objectives.lpg import step_features, td_lambda_returns, two_hot, value_support
from metarl.types import LifetimeContext

TARGET = [name for name in objectives.names() if objectives.make(name).targets is not None]
LEARNED_TARGET = [name for name in TARGET if jax.tree.leaves(objectives.make(name).init(jax.random.PRNGKey(0)))]
T, E = 10, 3


MID_LIFE = LifetimeContext(5, 20)


def trajectory(objective, seed=0, context=MID_LIFE, episode_end=None):
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    m = objective.head_size
    end = jnp.zeros((T, E), bool) if episode_end is None else episode_end
    return TrajectoryInputs(
        reward=jax.random.normal(keys[0], (T, E)),
        terminated=end,
        episode_end=end,
        discount=jnp.float32(0.99),
        action_prob=jax.random.uniform(keys[1], (T, E), minval=0.1, maxval=0.9),
        y=jax.nn.softmax(jax.random.normal(keys[2], (T, E, m))),
        next_y=jax.nn.softmax(jax.random.normal(keys[3], (T, E, m))),
        context=context,
    )


def random_params(objective, seed=1):
    params = objective.init(jax.random.PRNGKey(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 7), max(len(leaves), 1))
    return jax.tree.unflatten(tree, [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=False)])


def test_the_family_has_lpg_ta_lpg_and_the_hand_set_rule():
    assert {"lpg", "ta_lpg", "pg_td"} <= set(TARGET)
    assert {"lpg", "ta_lpg"} <= set(LEARNED_TARGET)
    for name in TARGET:
        assert objectives.make(name).agent == "predictor"


@pytest.mark.parametrize("name", TARGET)
def test_targets_have_the_trajectory_shape_and_a_distribution_for_y_hat(name):
    objective = objectives.make(name)
    pi_hat, y_hat, aux = jax.jit(objective.targets)(random_params(objective), trajectory(objective))
    assert pi_hat.shape == (T, E) and y_hat.shape == (T, E, objective.head_size)
    np.testing.assert_allclose(np.asarray(y_hat.sum(-1)), 1.0, rtol=1e-5)
    assert float(y_hat.min()) > 0 and all(jnp.isfinite(v) for v in aux.values())


@pytest.mark.parametrize("name", TARGET)
@pytest.mark.parametrize("t", [0, 4, 9])
def test_targets_run_backward_in_time(name, t):
    """A reward at step t changes targets only at steps <= t (and only in its own env)."""
    objective = objectives.make(name)
    params = random_params(objective)
    inputs = trajectory(objective)
    changed = inputs._replace(reward=inputs.reward.at[t, 1].add(3.0))
    base_pi, base_y, _ = objective.targets(params, inputs)
    new_pi, new_y, _ = objective.targets(params, changed)
    diff = np.abs(np.asarray(new_pi - base_pi)) + np.abs(np.asarray(new_y - base_y)).sum(-1)
    assert diff[: t + 1, 1].max() > 1e-6  # it does reach back to step t
    assert diff[t + 1 :, 1].max(initial=0.0) == 0.0  # never forward in time
    assert diff[:, [0, 2]].max() == 0.0  # nor into other envs


@pytest.mark.parametrize("name", TARGET)
def test_nothing_flows_back_across_an_episode_boundary(name):
    objective = objectives.make(name)
    params = random_params(objective)
    end = jnp.zeros((T, E), bool).at[3, :].set(True)  # an episode ends at step 3
    inputs = trajectory(objective, episode_end=end)
    changed = inputs._replace(reward=inputs.reward.at[6, :].add(3.0))
    base_pi, base_y, _ = objective.targets(params, inputs)
    new_pi, new_y, _ = objective.targets(params, changed)
    np.testing.assert_array_equal(np.asarray(base_pi[:4]), np.asarray(new_pi[:4]))
    np.testing.assert_array_equal(np.asarray(base_y[:4]), np.asarray(new_y[:4]))


def test_ta_lpg_inputs_carry_progress_and_log_lifetime_and_lpg_does_not():
    objective = objectives.make("ta_lpg")
    inputs = trajectory(objective, context=LifetimeContext(5, 20))
    features = step_features(inputs, temporal=True)
    np.testing.assert_allclose(np.asarray(features[..., -2]), 5 / 20)
    np.testing.assert_allclose(np.asarray(features[..., -1]), np.log(20.0), rtol=1e-6)
    assert step_features(inputs, temporal=False).shape[-1] == features.shape[-1] - 2
    for name, should_change in (("ta_lpg", True), ("lpg", False)):
        objective = objectives.make(name)
        params = random_params(objective)
        early = objective.targets(params, trajectory(objective, context=LifetimeContext(1, 20)))[0]
        late = objective.targets(params, trajectory(objective, context=LifetimeContext(19, 200)))[0]
        assert (not np.array_equal(np.asarray(early), np.asarray(late))) is should_change, name


def test_two_hot_keeps_the_mean_and_td_lambda_matches_a_hand_computation():
    support = value_support(11, 5.0)
    values = jnp.array([-5.0, -1.3, 0.0, 2.75, 5.0, 9.0])
    probs = two_hot(values, support)
    np.testing.assert_allclose(np.asarray(probs @ support), np.clip(np.asarray(values), -5, 5), atol=1e-5)
    # lambda = 0: one-step TD targets r + γ(1 − d)V(s')
    reward = jnp.array([[1.0], [0.0], [2.0]])
    term = jnp.array([[False], [True], [False]])
    next_v = jnp.array([[0.5], [9.0], [1.5]])
    one_step = td_lambda_returns(reward, term, term, next_v, 0.9, 0.0)
    np.testing.assert_allclose(np.asarray(one_step[:, 0]), [1.0 + 0.9 * 0.5, 0.0, 2.0 + 0.9 * 1.5], rtol=1e-6)
    # lambda = 1: discounted returns to the episode end or the bootstrap at the rollout end
    full = td_lambda_returns(reward, term, term, next_v, 0.9, 1.0)
    np.testing.assert_allclose(np.asarray(full[:, 0]), [1.0 + 0.9 * 0.0, 0.0, 2.0 + 0.9 * 1.5], rtol=1e-6)


def test_bad_target_objective_arguments_are_named():
    with pytest.raises(ConfigError, match="objective_kwargs.hidden"):
        objectives.make("lpg", hidden=0)
    with pytest.raises(ConfigError, match="objective_kwargs.betas"):
        objectives.make("ta_lpg", betas=[1e-3, -1.0, 0.0])
    with pytest.raises(ConfigError, match="objective_kwargs.lam"):
        objectives.make("pg_td", lam=2.0)


GRID = PPOConfig(num_envs=64, num_steps=20, total_timesteps=64 * 20 * 150, update_epochs=1, num_minibatches=1,
                 lr=1e-2, hidden_sizes=(64,), activation="relu")


@pytest.mark.slow
@pytest.mark.manual  # minutes of CI time for what a default-tier or CI check already covers in part: run by hand (pytest -m slow)
@default_codegen
def test_agent_with_the_hand_set_target_rule_learns_a_grid_world():
    """Sanity check of the predictor agent's update: policy gradient with a TD target (pg_td) on GridWorld-dense."""
    spec = envs.make("GridWorld-dense")
    objective = objectives.make("pg_td")
    train = jax.jit(jax.vmap(make_train(GRID, spec, objective), in_axes=(None, None, 0)))
    output = train({}, default_task(GRID, spec), jax.random.split(jax.random.PRNGKey(0), 3))
    returns = np.asarray(output.metrics["episode_return"])
    first = np.nanmean(returns[:, 1:6], axis=1)
    final = np.asarray(final_return(output))
    print("pg_td on GridWorld-dense: first updates", first, "final", final)
    assert (final > first + 1.0).all() and final.mean() > 2.0
    assert np.asarray(output.metrics["entropy"])[:, -1].max() < np.log(4) - 0.05  # the policy moved off uniform
