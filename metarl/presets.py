"""Inner-agent settings that train well per environment family (defaults of `metarl train --env ...`).

Each preset is a plain PPOConfig; command-line flags override any field.
"""

from __future__ import annotations

from metarl.config import PPOConfig

# PureJaxRL's classic-control settings: 4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4.
CLASSIC_CONTROL = PPOConfig()

# Pendulum needs a short horizon (gamma 0.95), more epochs, no entropy bonus and rewards scaled to O(1).
PENDULUM = PPOConfig(
    num_envs=16, num_steps=128, total_timesteps=1_000_000, update_epochs=10, num_minibatches=16,
    gamma=0.95, lr=1e-3, ent_coef=0.0, reward_scale=0.1,
)

# MinAtar settings of the LPO/TA-LPO papers: 64 envs x 128 steps, 4 epochs x 8 minibatches, conv torso.
MINATAR = PPOConfig(
    num_envs=64, num_steps=128, total_timesteps=10_000_000, update_epochs=4, num_minibatches=8,
    lr=5e-3, hidden_sizes=(64,), activation="relu",
)

# LPG-style grid worlds: each update is 20 steps x 64 envs and one gradient step (as in the LPG papers);
# lifetimes of 10-250 updates. lr 1e-2 because a single step per update must move the policy.
GRIDWORLD = PPOConfig(
    num_envs=64, num_steps=20, total_timesteps=64 * 20 * 250, update_epochs=1, num_minibatches=1,
    lr=1e-2, hidden_sizes=(64,), activation="relu",
)


def ppo_preset(env: str) -> PPOConfig:
    if env.startswith("GridWorld-"):
        return GRIDWORLD
    if env.endswith("-MinAtar"):
        return MINATAR
    if env.startswith("Pendulum"):
        return PENDULUM
    return CLASSIC_CONTROL

