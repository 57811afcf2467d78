"""The shapings of the registry. ``γ`` is the agent's discount (``ppo.gamma``); Φ and r_aux come from the heuristic.

- ``none``: r (the heuristic is ignored).
- ``naive``: r + w · r_aux (``weight`` w, default 1).
- ``potential``: r + γ Φ(s') − Φ(s), with Φ(s') = 0 when s' is terminal (Ng et al., 1999: optimal
  policies are unchanged).
- ``blend`` (BARFI, Gupta et al. 2023): r + φ1(s) + φ2(s) · r_aux with φ1, φ2 linear in the observation
  (plus a bias) and a learned discount γ_φ = sigmoid(g). Starts at φ1 = 0, φ2 = ``init_aux_weight``
  (1: the naive sum, as BARFI starts) and γ_φ = γ.
- ``learned``: progress-aware. A one-hidden-layer tanh MLP of ``[observation, r, r_aux, n/N]`` outputs
  (Δw, b); the reward is r + (``init_aux_weight`` + Δw) · r_aux + b. Its output layer starts at zero.
  With ``progress=False`` it does not see n/N.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from metarl.shaping.base import Shaped, Shaping, ShapingInputs
from metarl.shaping.heuristics import Heuristic


def _no_params(key) -> dict:
    del key
    return {}


def _flat_obs(obs, leading: int):
    return obs.reshape(obs.shape[:leading] + (-1,)).astype(jnp.float32)


def make_none(heuristic: Heuristic, gamma: float) -> Shaping:
    return Shaping("none", _no_params, lambda params, inputs, context: Shaped(inputs.reward, jnp.float32(gamma)))


def make_naive(heuristic: Heuristic, gamma: float, weight: float = 1.0) -> Shaping:
    def apply(params, inputs: ShapingInputs, context):
        return Shaped(inputs.reward + weight * inputs.aux_reward, jnp.float32(gamma))

    return Shaping("naive", _no_params, apply)


def potential_reward(reward, potential, next_potential, terminated, gamma):
    """r + γ Φ(s') − Φ(s), with Φ = 0 at terminal states."""
    return reward + gamma * jnp.where(terminated, 0.0, next_potential) - potential


def make_potential(heuristic: Heuristic, gamma: float) -> Shaping:
    def apply(params, inputs: ShapingInputs, context):
        potential, next_potential = heuristic.potential(inputs.obs), heuristic.potential(inputs.next_obs)
        reward = potential_reward(inputs.reward, potential, next_potential, inputs.terminated, gamma)
        return Shaped(reward, jnp.float32(gamma))

    return Shaping("potential", _no_params, apply)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def make_blend(heuristic: Heuristic, gamma: float, obs_size: int, init_aux_weight: float = 1.0) -> Shaping:
    def init(key):
        del key
        return {"w1": jnp.zeros((obs_size,)), "b1": jnp.float32(0.0), "w2": jnp.zeros((obs_size,)), "b2": jnp.float32(init_aux_weight),
                "discount_logit": jnp.float32(_logit(min(gamma, 0.999)))}

    def apply(params, inputs: ShapingInputs, context):
        x = _flat_obs(inputs.obs, inputs.reward.ndim)
        phi1 = x @ params["w1"] + params["b1"]
        phi2 = x @ params["w2"] + params["b2"]
        return Shaped(inputs.reward + phi1 + phi2 * inputs.aux_reward, jax.nn.sigmoid(params["discount_logit"]))

    return Shaping("blend", init, apply)


def make_learned(heuristic: Heuristic, gamma: float, obs_size: int, hidden: int = 16, progress: bool = True,
                 init_aux_weight: float = 1.0) -> Shaping:
    if not (isinstance(hidden, int) and hidden > 0):
        raise ValueError(f"learned shaping hidden must be a positive integer, got {hidden!r}")
    num_inputs = obs_size + 2 + int(progress)

    def init(key):
        return {"w1": jax.random.normal(key, (num_inputs, hidden)) / jnp.sqrt(num_inputs), "b1": jnp.zeros((hidden,)),
                "w2": jnp.zeros((hidden, 2)), "b2": jnp.zeros((2,))}

    def apply(params, inputs: ShapingInputs, context):
        weight, bonus = learned_weight_and_bonus(params, inputs, context.progress, progress, init_aux_weight)
        return Shaped(inputs.reward + weight * inputs.aux_reward + bonus, jnp.float32(gamma))

    return Shaping("learned", init, apply)


def learned_weight_and_bonus(params, inputs: ShapingInputs, progress_value, progress: bool, init_aux_weight: float):
    """The ``learned`` shaping's heuristic weight w and bonus b per step (its reward is r + w · r_aux + b), at training
    progress ``progress_value`` (n/N; ignored with ``progress=False``)."""
    leading = inputs.reward.ndim
    columns = [_flat_obs(inputs.obs, leading), inputs.reward[..., None], inputs.aux_reward[..., None]]
    if progress:
        columns.append(jnp.broadcast_to(progress_value, inputs.reward.shape)[..., None])
    out = jnp.tanh(jnp.concatenate(columns, axis=-1) @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]
    return init_aux_weight + out[..., 0], out[..., 1]
