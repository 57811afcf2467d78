"""Target objectives: LPG and TA-LPG (Oh et al., NeurIPS 2020; Jackson et al., ICLR 2024), and a hand-set rule.

A target objective reads a whole rollout backward in time and emits, for every step, a policy target
π̂_t (a scalar, a learned "advantage") and a prediction target ŷ_t (a distribution over m bins). The
``predictor`` agent (policy π_θ and a prediction head y_θ(s), no value head) is updated with

    L(θ) = −E[log π_θ(a_t|s_t) · π̂_t] + α_y · E[KL(y_θ(s_t) ‖ ŷ_t)] − β0 · H(π_θ)

(β0 is :attr:`PPOConfig.ent_coef`, added by the agent). The targets are computed once per update from
the rollout-time agent and held fixed over the update's epochs and minibatches.

**LPG.** Per step t the input is ``[r_t, d_t, γ, π(a_t|s_t), φ(y_t), φ(y_{t+1})]`` with φ a small MLP
shared by both predictions (m → 16 → 1) and d_t the termination flag. A GRU runs from the last step
to the first, its state reset where an episode ended (so nothing flows back across an episode
boundary); two linear heads give π̂_t and ŷ_t = softmax(·). The target regularizers of the paper
(β1 target entropy, β2 ‖π̂‖², β3 ‖ŷ‖²; 1e-3, 5e-3, 1e-3) act on η only, so they are returned as the
``meta_regularizer`` that the meta-gradient outer loop adds to its meta-loss; ES ignores them (its
fitness is the return alone).

**TA-LPG** appends ``[n/N, log N]`` to every step's input, as in the paper. The public code of that
paper (groove) feeds the raw update index and lifetime instead; metarl follows the paper, whose
normalized progress keeps the input O(1) for any lifetime.

**pg_td** is a hand-set member of the family, the sanity check of the agent update: the prediction y
is read as a distribution over a fixed value support z (m bins on [−v_max, v_max]), V(s) = Σ y·z;
π̂_t = G_t^λ − V(s_t) with the TD(λ) return G^λ bootstrapped from V, and ŷ_t is the two-hot
projection of G_t^λ onto z (smoothed by ε so the KL stays finite). That is an actor-critic policy
gradient with a TD target, written as (π̂, ŷ).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from metarl.errors import ConfigError
from metarl.objectives.base import Objective, TargetInputs, TrajectoryInputs, no_meta_params

TINY = 1e-8


def _check_positive_int(value, name: str) -> None:
    if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ConfigError(f"objective_kwargs.{name}: must be a positive integer, got {value!r}")


def _check_nonnegative(value, name: str) -> None:
    if not (isinstance(value, (int, float)) and value >= 0):
        raise ConfigError(f"objective_kwargs.{name}: must be a number >= 0, got {value!r}")


def target_loss(alpha_y: float):
    """``−mean(log π · π̂) + α_y · mean KL(y ‖ ŷ)``: the agent update of the whole target family."""

    def loss(meta_params, inputs: TargetInputs):
        del meta_params
        y_log = jax.nn.log_softmax(inputs.y_logits)
        kl = jnp.sum(jnp.exp(y_log) * (y_log - jnp.log(inputs.y_hat + TINY)), axis=-1)
        policy_term = -jnp.mean(inputs.log_prob * inputs.pi_hat)
        prediction_term = jnp.mean(kl)
        return policy_term + alpha_y * prediction_term, {"prediction_loss": prediction_term}

    return loss


def step_features(inputs: TrajectoryInputs, *, temporal: bool) -> jax.Array:
    """(T, E, 4 [+2]): ``[r, d, γ, π(a|s)]`` and, for TA-LPG, ``[n/N, log N]`` on every step."""
    shape = inputs.reward.shape
    columns = [
        inputs.reward,
        inputs.terminated.astype(jnp.float32),
        jnp.broadcast_to(jnp.asarray(inputs.discount, jnp.float32), shape),
        inputs.action_prob,
    ]
    if temporal:
        columns.append(jnp.broadcast_to(inputs.context.progress, shape))
        columns.append(jnp.broadcast_to(inputs.context.log_num_updates, shape))
    return jnp.stack(columns, axis=-1).astype(jnp.float32)


class _ReverseGRU(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x, reset):
        """x: (T, E, F); reset: (T, E), True where the carry from t+1 must not reach t."""
        cell = nn.GRUCell(features=self.hidden)

        def body(module, carry, inputs):
            x_t, reset_t = inputs
            carry = jnp.where(reset_t[:, None], 0.0, carry)
            carry, out = module(carry, x_t)
            return carry, out

        scan = nn.scan(body, variable_broadcast="params", split_rngs={"params": False}, reverse=True)
        carry = jnp.zeros(x.shape[1:-1] + (self.hidden,), x.dtype)
        _, outputs = scan(cell, carry, (x, reset))
        return outputs


class LPGNetwork(nn.Module):
    """``(features, y, next_y, episode_end) -> (π̂, ŷ)``, all time-major (T, E, ·)."""

    hidden: int
    num_bins: int
    embed_hidden: int = 16

    @nn.compact
    def __call__(self, features, y, next_y, episode_end):
        embed = nn.Sequential([nn.Dense(self.embed_hidden), nn.relu, nn.Dense(1)], name="y_embedding")
        x = jnp.concatenate([features, embed(y), embed(next_y)], axis=-1)
        h = _ReverseGRU(self.hidden, name="gru")(x, episode_end)
        pi_hat = nn.Dense(1, name="pi_hat")(h)[..., 0]
        y_hat = jax.nn.softmax(nn.Dense(self.num_bins, name="y_hat")(h), axis=-1)
        return pi_hat, y_hat


def meta_regularizer(pi_hat, y_hat, betas: tuple[float, float, float]):
    """β1·(−H(ŷ)) + β2·‖π̂‖² + β3·‖ŷ‖², to be *minimized* by a meta-gradient."""
    beta1, beta2, beta3 = betas
    entropy = -jnp.sum(y_hat * jnp.log(y_hat + TINY), axis=-1)
    return -beta1 * jnp.mean(entropy) + beta2 * jnp.mean(pi_hat**2) + beta3 * jnp.mean(jnp.sum(y_hat**2, axis=-1))


def make_lpg(
    hidden: int = 32,
    num_bins: int = 8,
    temporal: bool = False,
    alpha_y: float = 0.5,
    betas: tuple[float, float, float] = (1e-3, 5e-3, 1e-3),
    name: str = "lpg",
) -> Objective:
    """LPG (``temporal=True``: TA-LPG). ``hidden`` is the GRU width (the paper's recent code uses 256;
    32 keeps a CPU meta-training run affordable), ``num_bins`` the size m of y."""
    _check_positive_int(hidden, "hidden")
    _check_positive_int(num_bins, "num_bins")
    _check_nonnegative(alpha_y, "alpha_y")
    betas = tuple(float(b) for b in betas)
    if len(betas) != 3 or min(betas) < 0:
        raise ConfigError(f"objective_kwargs.betas: must be three numbers >= 0 (target entropy, L2 on π̂, L2 on ŷ), got {betas!r}")
    network = LPGNetwork(hidden=hidden, num_bins=num_bins)
    num_features = 6 if temporal else 4

    def init(key):
        features = jnp.zeros((2, 1, num_features))
        y = jnp.full((2, 1, num_bins), 1.0 / num_bins)
        return network.init(key, features, y, y, jnp.zeros((2, 1), bool))

    def targets(meta_params, inputs: TrajectoryInputs):
        features = step_features(inputs, temporal=temporal)
        pi_hat, y_hat = network.apply(meta_params, features, inputs.y, inputs.next_y, inputs.episode_end)
        aux = {"pi_hat_mean": jnp.mean(pi_hat), "pi_hat_std": jnp.std(pi_hat), "meta_regularizer": meta_regularizer(pi_hat, y_hat, betas)}
        return pi_hat, y_hat, aux

    return Objective(name=name, init=init, loss=target_loss(alpha_y), agent="predictor", targets=targets, head_size=num_bins)


def make_ta_lpg(
    hidden: int = 32, num_bins: int = 8, alpha_y: float = 0.5, betas: tuple[float, float, float] = (1e-3, 5e-3, 1e-3)
) -> Objective:
    """Temporally-aware LPG: every step's input also carries n/N and log N."""
    return make_lpg(hidden=hidden, num_bins=num_bins, temporal=True, alpha_y=alpha_y, betas=betas, name="ta_lpg")


def value_support(num_bins: int, v_max: float) -> jax.Array:
    return jnp.linspace(-v_max, v_max, num_bins)


def two_hot(values, support) -> jax.Array:
    """(...,) -> (..., m): the distribution on ``support`` with mean ``values`` (clipped to its range)."""
    num_bins = support.shape[0]
    values = jnp.clip(values, support[0], support[-1])
    position = (values - support[0]) / (support[-1] - support[0]) * (num_bins - 1)
    low = jnp.clip(jnp.floor(position), 0, num_bins - 2)
    weight = position - low
    low = low.astype(jnp.int32)
    return jax.nn.one_hot(low, num_bins) * (1.0 - weight)[..., None] + jax.nn.one_hot(low + 1, num_bins) * weight[..., None]


def td_lambda_returns(reward, terminated, episode_end, next_values, discount, lam):
    """G_t = r_t + γ(1 − d_t)·[(1 − λ)·V(s_{t+1}) + λ·G_{t+1}], with G_{t+1} := V(s_{t+1}) at episode ends and at T."""

    def body(next_return, inputs):
        r, term, end, next_value = inputs
        bootstrap = jnp.where(end, next_value, (1.0 - lam) * next_value + lam * next_return)
        g = r + discount * (1.0 - term.astype(jnp.float32)) * bootstrap
        return g, g

    _, returns = jax.lax.scan(body, next_values[-1], (reward, terminated, episode_end, next_values), reverse=True)
    return returns


def make_pg_td(num_bins: int = 31, v_max: float = 10.0, lam: float = 0.9, smoothing: float = 0.05, alpha_y: float = 0.5) -> Objective:
    """The hand-set target rule: policy gradient with a TD(λ) target (no meta-parameters)."""
    _check_positive_int(num_bins, "num_bins")
    if num_bins < 2:
        raise ConfigError(f"objective_kwargs.num_bins: must be >= 2, got {num_bins}")
    if not v_max > 0:
        raise ConfigError(f"objective_kwargs.v_max: must be > 0, got {v_max!r}")
    if not 0.0 <= lam <= 1.0:
        raise ConfigError(f"objective_kwargs.lam: must be in [0, 1], got {lam!r}")
    if not 0.0 < smoothing < 1.0:
        raise ConfigError(f"objective_kwargs.smoothing: must be in (0, 1), got {smoothing!r}")

    def targets(meta_params, inputs: TrajectoryInputs):
        del meta_params
        support = value_support(num_bins, v_max)
        values, next_values = inputs.y @ support, inputs.next_y @ support
        returns = td_lambda_returns(inputs.reward, inputs.terminated, inputs.episode_end, next_values, inputs.discount, lam)
        pi_hat = returns - values
        y_hat = (1.0 - smoothing) * two_hot(returns, support) + smoothing / num_bins
        return pi_hat, y_hat, {"pi_hat_mean": jnp.mean(pi_hat), "pi_hat_std": jnp.std(pi_hat)}

    return Objective(name="pg_td", init=no_meta_params, loss=target_loss(alpha_y), agent="predictor", targets=targets, head_size=num_bins)
