import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from metarl.config import PPOConfig
from metarl.rl import distributions
from metarl.rl.networks import make_actor_critic, patches_3x3


def test_patch_dense_equals_a_valid_3x3_convolution():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 10, 10, 4))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 16))
    conv = nn.Conv(16, (3, 3), padding="VALID", use_bias=False)
    expected = conv.apply({"params": {"kernel": kernel}}, x)
    # im2col order is (row offset, column offset, channel), the same as the kernel's flattening
    got = patches_3x3(x) @ kernel.reshape(9 * 4, 16)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_torso_choice_and_heads():
    image = make_actor_critic(PPOConfig(), (10, 10, 4), "discrete", 3)
    vector = make_actor_critic(PPOConfig(), (4,), "continuous", 2)
    assert image.torso == "cnn" and vector.torso == "mlp"
    params = vector.init(jax.random.PRNGKey(0), jnp.zeros((7, 4)))
    (mean, log_std), value = vector.apply(params, jnp.zeros((7, 4)))
    assert mean.shape == (7, 2) and log_std.shape == (7, 2) and value.shape == (7,)


def test_gaussian_and_categorical_log_probs_match_closed_forms():
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([[0.1, -0.3]])
    action = jnp.array([[1.0, 0.0]])
    std = jnp.exp(log_std)
    expected = jnp.sum(-0.5 * ((action - mean) / std) ** 2 - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi), -1)
    np.testing.assert_allclose(distributions.DIAGONAL_GAUSSIAN.log_prob((mean, log_std), action), expected, rtol=1e-6)
    logits = jnp.array([[1.0, 2.0, 0.5]])
    probs = jax.nn.softmax(logits)
    np.testing.assert_allclose(distributions.CATEGORICAL.log_prob(logits, jnp.array([1])), jnp.log(probs[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(distributions.CATEGORICAL.entropy(logits), -jnp.sum(probs * jnp.log(probs), -1), rtol=1e-6)
