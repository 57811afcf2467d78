"""Actor-critic networks: MLP towers for vector observations, a small conv torso for MinAtar."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from metarl.config import PPOConfig

_ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(_dense(width, np.sqrt(2))(x))
        return x


def patches_3x3(x):
    """(..., H, W, C) -> (..., H-2, W-2, 9C): the 3x3 VALID neighbourhoods, by slicing (im2col)."""
    height, width = x.shape[-3], x.shape[-2]
    shifted = [x[..., i : height - 2 + i, j : width - 2 + j, :] for i in range(3) for j in range(3)]
    return jnp.concatenate(shifted, axis=-1)


class MinAtarTorso(nn.Module):
    """Conv(16, 3x3, VALID) -> flatten -> Dense, the torso of the MinAtar baselines.

    The convolution is computed as a Dense layer on 3x3 patches: the same function, but XLA on CPU
    runs this matmul form ~20x faster than its convolution kernels for these tiny images (measured
    in benchmarks/inner_loop.py's MinAtar case).
    """

    hidden: int
    activation: str
    channels: int = 16

    @nn.compact
    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        x = act(_dense(self.channels, np.sqrt(2))(patches_3x3(x)))
        x = x.reshape(x.shape[:-3] + (-1,))
        return act(_dense(self.hidden, np.sqrt(2))(x))


class ActorCritic(nn.Module):
    """``__call__(obs) -> (policy_params, head)``; ``value(obs)`` runs the head's path alone.

    ``head_size == 1``: the head is a state value V(s) (shape ``batch``). ``head_size = m > 1``: it is the
    logits of a categorical prediction y(s) over m bins (shape ``batch + (m,)``), the ``predictor``
    agent of target objectives (LPG).

    policy_params are logits (discrete) or (mean, log_std) (continuous). With an MLP the actor and
    critic have separate towers (as in PureJaxRL); with the conv torso they share it (as in the MinAtar
    baselines).
    """

    action_kind: str
    action_dim: int
    torso: str  # "mlp" | "cnn"
    hidden_sizes: Sequence[int]
    activation: str
    obs_rank: int = 1
    """Rank of one observation; leading axes beyond it are batch axes."""
    head_size: int = 1

    def setup(self):
        if self.torso == "cnn":
            self.shared = MinAtarTorso(self.hidden_sizes[0], self.activation)
        else:
            self.actor = MLP(self.hidden_sizes, self.activation)
            self.critic = MLP(self.hidden_sizes, self.activation)
        self.value_head = _dense(self.head_size, 1.0 if self.head_size == 1 else 0.01)
        self.policy_head = _dense(self.action_dim, 0.01)
        if self.action_kind == "continuous":
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))

    def _inputs(self, obs):
        obs = obs.astype(jnp.float32)
        if self.torso == "cnn":
            return obs
        return obs.reshape(obs.shape[: obs.ndim - self.obs_rank] + (-1,))

    def value(self, obs):
        x = self._inputs(obs)
        features = self.shared(x) if self.torso == "cnn" else self.critic(x)
        return self._head(features)

    def _head(self, features):
        out = self.value_head(features)
        return out[..., 0] if self.head_size == 1 else out

    def __call__(self, obs):
        x = self._inputs(obs)
        if self.torso == "cnn":
            actor_features = critic_features = self.shared(x)
        else:
            actor_features, critic_features = self.actor(x), self.critic(x)
        value = self._head(critic_features)
        head = self.policy_head(actor_features)
        if self.action_kind == "discrete":
            return head, value
        return (head, jnp.broadcast_to(self.log_std, head.shape)), value


def resolve_torso(config: PPOConfig, obs_shape: tuple[int, ...]) -> str:
    """'auto' picks the conv torso for image observations (H, W, C), the MLP otherwise."""
    if config.network != "auto":
        return config.network
    return "cnn" if len(obs_shape) == 3 else "mlp"


def make_actor_critic(config: PPOConfig, obs_shape: tuple[int, ...], action_kind: str, action_dim: int, head_size: int = 1) -> ActorCritic:
    return ActorCritic(
        action_kind=action_kind,
        action_dim=action_dim,
        torso=resolve_torso(config, obs_shape),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_rank=len(obs_shape),
        head_size=head_size,
    )
