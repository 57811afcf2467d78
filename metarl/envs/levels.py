"""Level spaces: a finite bank of training levels with a difficulty, binned into categories.

A curriculum (:mod:`metarl.curricula`) picks, at every update, which levels of the bank each of the
agent's parallel envs trains on. The bank is a *stacked* env-params pytree (leading axis K), so picking
levels is a gather and training on them a ``vmap`` over params. ``difficulty`` in [0, 1] describes each
level (the learned sampler sees it; bandit samplers see only its bin, the ``category``). ``heldout`` is a
second bank of the hardest levels, drawn apart from the training bank and never trained on: fitness and
evaluation of a curriculum are measured there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True, eq=False)
class LevelSpace:
    params: Any  # stacked env params, leading axis K
    difficulty: jax.Array  # (K,) float32 in [0, 1]
    category: jax.Array  # (K,) int32 in [0, num_categories)
    num_categories: int
    heldout: Any  # stacked env params of the hardest levels, leading axis M
    max_episode_steps: int  # static bound on an episode's length (held-out evaluation runs this many steps)

    @property
    def num_levels(self) -> int:
        return int(self.difficulty.shape[0])

    @property
    def num_heldout(self) -> int:
        return int(jax.tree.leaves(self.heldout)[0].shape[0])

    def sample(self, key):
        """A training level drawn uniformly (what a run without a curriculum trains on)."""
        return self.take(jax.random.randint(key, (), 0, self.num_levels))

    def take(self, ids):
        """The env params of levels ``ids`` (any shape): a gather on every leaf."""
        return jax.tree.map(lambda x: x[ids], self.params)


def stack(levels: list) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *levels)


def bin_difficulty(difficulty: np.ndarray, num_categories: int) -> np.ndarray:
    """Equal-width bins of [0, 1]: category c holds difficulties in [c/C, (c+1)/C) (1.0 in the last)."""
    return np.minimum((np.asarray(difficulty) * num_categories).astype(np.int32), num_categories - 1)


def make_level_space(params: list, difficulty, heldout: list, num_categories: int, max_episode_steps: int) -> LevelSpace:
    difficulty = np.asarray(difficulty, np.float32)
    if difficulty.min() < 0 or difficulty.max() > 1:
        raise ValueError(f"level difficulty must lie in [0, 1], got [{difficulty.min()}, {difficulty.max()}]")
    return LevelSpace(
        params=stack(params),
        difficulty=jnp.asarray(difficulty),
        category=jnp.asarray(bin_difficulty(difficulty, num_categories)),
        num_categories=num_categories,
        heldout=stack(heldout),
        max_episode_steps=max_episode_steps,
    )
