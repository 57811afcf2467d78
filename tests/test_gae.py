import jax.numpy as jnp
import numpy as np
import pytest

from metarl.rl.gae import gae


def gae_reference(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Plain Python loop, one env: bootstrap through truncation, not termination; cut the trace at either."""
    T = len(rewards)
    advantages = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        bootstrap = 0.0 if terminated[t] else next_values[t]
        delta = rewards[t] + gamma * bootstrap - values[t]
        if terminated[t] or truncated[t]:
            running = 0.0
        running = delta + gamma * lam * running
        advantages[t] = running
    return advantages, advantages + values


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (1.0, 0.0)])
def test_gae_matches_python_loop_with_terminated_and_truncated_steps(gamma, lam):
    rng = np.random.default_rng(0)
    T, E = 12, 3
    rewards = rng.normal(size=(T, E)).astype(np.float32)
    values = rng.normal(size=(T, E)).astype(np.float32)
    next_values = rng.normal(size=(T, E)).astype(np.float32)
    terminated = np.zeros((T, E), bool)
    truncated = np.zeros((T, E), bool)
    terminated[3, 0] = terminated[7, 1] = True
    truncated[5, 0] = truncated[9, 2] = True
    terminated[10, 2] = truncated[10, 2] = True  # both at once: termination wins (no bootstrap)
    advantages, returns = gae(
        jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(next_values),
        jnp.asarray(terminated), jnp.asarray(terminated | truncated), gamma, lam,
    )
    for e in range(E):
        ref_adv, ref_ret = gae_reference(rewards[:, e], values[:, e], next_values[:, e], terminated[:, e], truncated[:, e], gamma, lam)
        np.testing.assert_allclose(advantages[:, e], ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(returns[:, e], ref_ret, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_but_termination_does_not():
    ones = jnp.ones((1, 1))
    zeros = jnp.zeros((1, 1))
    truncated_adv, _ = gae(ones, zeros, 10 * ones, zeros.astype(bool), ones.astype(bool), 0.5, 0.9)
    terminated_adv, _ = gae(ones, zeros, 10 * ones, ones.astype(bool), ones.astype(bool), 0.5, 0.9)
    assert float(truncated_adv[0, 0]) == pytest.approx(1 + 0.5 * 10)
    assert float(terminated_adv[0, 0]) == pytest.approx(1.0)
