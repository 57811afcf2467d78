"""Hand-designed level samplers (no meta-parameters). Each is a distribution over the bank, given as logits.

- ``uniform``: every level alike (domain randomization).
- ``hardest``: uniform over the levels of the hardest category only.
- ``sec``: Self-Evolving Curriculum — a bandit over difficulty categories. After every update, each
  category c that was trained on gets ``Q(c) ← (1 − α) Q(c) + α r(c)`` with r(c) the mean |Â| of its
  envs; categories are drawn with p(c) ∝ exp(Q(c)/τ), then a level uniformly within the category.
  **Unsampled arms keep their Q** (no decay), as in the SEC paper: Boltzmann sampling keeps drawing an
  arm in proportion to what it last promised, and all arms start at Q = 0 so none is starved at first.
- ``plr``: Prioritized Level Replay. A level's score is its latest positive value loss (mean clipped GAE
  advantage). With probability ``replay_prob`` an env replays a seen level drawn from
  ``(1 − ρ) P_rank + ρ P_stale`` (rank prioritization h = rank^(−1/β); staleness ∝ updates since last
  sampled); otherwise it draws an unseen level uniformly (all levels once every one has been seen).
- ``learnability``: SFL-style. p = a level's running success rate (prior 0.5 before its first episode);
  train uniformly on the ``top_fraction`` of levels with the highest p(1 − p), and with probability
  ``explore`` on a uniform level, which refreshes the estimates.
- ``learnability_weighted``: the same p, each level drawn in proportion to p(1 − p) (a zone-of-proximal-development
  curriculum, as in ProCuRL), and with probability ``explore`` a uniform level. Where fewer levels are learnable than
  the top set holds (a small level space, many of it unsolvable), the top set fills with levels whose p(1 − p) is
  tiny but not 0 — a level that failed k times keeps p = 0.5^(k+1) — and those are drawn as often as the learnable
  ones; in proportion, each gets its tiny share.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from metarl.curricula.base import CurriculumState, hand_designed, per_level_mean
from metarl.envs.levels import LevelSpace


def _log(p):
    return jnp.log(jnp.maximum(p, 0.0) + 1e-30) + jnp.where(p > 0, 0.0, -jnp.inf)


def _category_sizes(space: LevelSpace):
    return jnp.bincount(space.category, length=space.num_categories).astype(jnp.float32)


def make_uniform(space: LevelSpace):
    return hand_designed("uniform", space, lambda state, key: jnp.zeros((space.num_levels,)))


def make_hardest(space: LevelSpace):
    hardest = space.category == jnp.max(space.category)
    return hand_designed("hardest", space, lambda state, key: jnp.where(hardest, 0.0, -jnp.inf))


def sec_category_probs(category_q, temperature: float):
    return jax.nn.softmax(category_q / temperature)


def sec_update_q(category_q, category_reward, trained, alpha: float):
    """Q(c) ← (1 − α) Q(c) + α r(c) for the categories trained on; the others keep their Q."""
    return jnp.where(trained, (1 - alpha) * category_q + alpha * category_reward, category_q)


def make_sec(space: LevelSpace, alpha: float = 0.5, temperature: float = 0.4):
    if not 0 < alpha <= 1:
        raise ValueError(f"sec alpha must be in (0, 1], got {alpha}")
    if not temperature > 0:
        raise ValueError(f"sec temperature must be > 0, got {temperature}")
    sizes = _category_sizes(space)

    def logits(state: CurriculumState, key):
        del key
        p_category = sec_category_probs(state.category_q, temperature)
        return _log(p_category[space.category] / sizes[space.category])

    def extra_update(old: CurriculumState, new: CurriculumState, ids, signals):
        reward, trained = per_level_mean(signals.abs_advantage, space.category[ids], space.num_categories)
        return new.replace(category_q=sec_update_q(old.category_q, reward, trained, alpha))

    return hand_designed("sec", space, logits, extra_update)


def rank_weights(score, valid, beta: float):
    """h(S_i) = 1 / rank(S_i) (rank 1 = highest score among ``valid``), sharpened by 1/β, normalized."""
    order = jnp.argsort(jnp.where(valid, -score, jnp.inf))
    rank = jnp.empty_like(order).at[order].set(jnp.arange(1, score.shape[0] + 1))
    weights = jnp.where(valid, (1.0 / rank) ** (1.0 / beta), 0.0)
    return weights / jnp.maximum(weights.sum(), 1e-30)


def plr_probs(state: CurriculumState, replay_prob: float, beta: float, staleness: float):
    seen = state.seen
    p_rank = rank_weights(state.score, seen, beta)
    stale = jnp.where(seen, (state.step - state.last_sampled).astype(jnp.float32), 0.0)
    p_stale = jnp.where(stale.sum() > 0, stale / jnp.maximum(stale.sum(), 1e-30), p_rank)
    p_replay = (1 - staleness) * p_rank + staleness * p_stale
    unseen = ~seen
    p_new = jnp.where(jnp.any(unseen), unseen / jnp.maximum(unseen.sum(), 1), jnp.full(seen.shape, 1.0 / seen.shape[0]))
    replay = jnp.where(jnp.any(seen), replay_prob, 0.0)
    return replay * p_replay + (1 - replay) * p_new


def make_plr(space: LevelSpace, replay_prob: float = 0.5, beta: float = 0.3, staleness: float = 0.3):
    for name, value in (("replay_prob", replay_prob), ("staleness", staleness)):
        if not 0 <= value <= 1:
            raise ValueError(f"plr {name} must be in [0, 1], got {value}")
    if not beta > 0:
        raise ValueError(f"plr beta must be > 0, got {beta}")
    return hand_designed("plr", space, lambda state, key: _log(plr_probs(state, replay_prob, beta, staleness)))


def learnability_probs(success, key, top_fraction: float, explore: float, weighting: str = "top"):
    """(K,) sampling probabilities: ``weighting`` 'top' (uniform over the ``top_fraction`` highest p(1 − p)) or
    'proportional' (∝ p(1 − p)), mixed with ``explore`` of uniform."""
    learnability = success * (1 - success)
    if weighting == "proportional":
        total = learnability.sum()
        weights = jnp.where(total > 0, learnability / jnp.maximum(total, 1e-30), 1.0 / success.shape[0])
        return explore / success.shape[0] + (1 - explore) * weights
    k = max(1, int(round(top_fraction * success.shape[0])))
    noisy = learnability + 1e-6 * jax.random.uniform(key, learnability.shape)  # random order among ties
    threshold = jax.lax.top_k(noisy, k)[0][-1]
    top = noisy >= threshold
    return explore / success.shape[0] + (1 - explore) * top / top.sum()


def make_learnability(space: LevelSpace, top_fraction: float = 0.25, explore: float = 0.1, weighting: str = "top"):
    if not 0 < top_fraction <= 1:
        raise ValueError(f"learnability top_fraction must be in (0, 1], got {top_fraction}")
    if not 0 <= explore <= 1:
        raise ValueError(f"learnability explore must be in [0, 1], got {explore}")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"learnability weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    name = "learnability" if weighting == "top" else f"learnability_{WEIGHTINGS[weighting]}"
    return hand_designed(name, space, lambda state, key: _log(learnability_probs(state.success, key, top_fraction, explore, weighting)))


def make_learnability_weighted(space: LevelSpace, explore: float = 0.1):
    return make_learnability(space, explore=explore, weighting="proportional")


WEIGHTINGS = {"top": "top", "proportional": "weighted"}  # learnability's weightings, and the registry suffix of each
