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


class MinAtarTorso(nn.Module):
    """Conv(16, 3x3) -> flatten -> Dense, the torso of the MinAtar baselines."""

    hidden: int
    activation: str

    @nn.compact
    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        x = act(nn.Conv(16, kernel_size=(3, 3), padding="VALID", kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        x = x.reshape(x.shape[:-3] + (-1,))
        return act(_dense(self.hidden, np.sqrt(2))(x))


class ActorCritic(nn.Module):
    """Returns ``(policy_params, value)``; policy_params are logits or (mean, log_std).

    With an MLP the actor and critic have separate towers (as in PureJaxRL); with the conv torso
    they share it (as in the MinAtar baselines).
    """

    action_kind: str
    action_dim: int
    torso: str  # "mlp" | "cnn"
    hidden_sizes: Sequence[int]
    activation: str
    obs_rank: int = 1
    """Rank of one observation; leading axes beyond it are batch axes."""

    @nn.compact
    def __call__(self, obs):
        obs = obs.astype(jnp.float32)
        if self.torso == "cnn":
            features = MinAtarTorso(self.hidden_sizes[0], self.activation)(obs)
            actor_features = critic_features = features
        else:
            flat = obs.reshape(obs.shape[: obs.ndim - self.obs_rank] + (-1,))
            actor_features = MLP(self.hidden_sizes, self.activation, name="actor")(flat)
            critic_features = MLP(self.hidden_sizes, self.activation, name="critic")(flat)
        value = _dense(1, 1.0)(critic_features)[..., 0]
        head = _dense(self.action_dim, 0.01)(actor_features)
        if self.action_kind == "discrete":
            return head, value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return (head, jnp.broadcast_to(log_std, head.shape)), value



def resolve_torso(config: PPOConfig, obs_shape: tuple[int, ...]) -> str:
    """'auto' picks the conv torso for image observations (H, W, C), the MLP otherwise."""
    if config.network != "auto":
        return config.network
    return "cnn" if len(obs_shape) == 3 else "mlp"


def make_actor_critic(config: PPOConfig, obs_shape: tuple[int, ...], action_kind: str, action_dim: int) -> ActorCritic:
    return ActorCritic(
        action_kind=action_kind,
        action_dim=action_dim,
        torso=resolve_torso(config, obs_shape),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        obs_rank=len(obs_shape),
    )
