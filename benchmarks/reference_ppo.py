"""A straightforward single-file jitted PPO, the yardstick for metarl's inner loop.

Written the plain way (one shared script, GAE cut at any episode end, no objective indirection, no
lifetime masking), so `inner_loop.py` can report metarl's speed as a ratio to it measured in the same
process. It is a benchmark baseline only: metarl itself never imports this file.
"""

from __future__ import annotations

import flax.linen as nn
import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax


class Net(nn.Module):
    num_actions: int
    hidden: int = 64
    conv: bool = False  # MinAtar: Conv(16, 3x3) -> Dense(hidden), relu, one torso shared by actor and critic

    @nn.compact
    def __call__(self, x):
        orth = nn.initializers.orthogonal
        if self.conv:
            x = nn.relu(nn.Conv(16, (3, 3), padding="VALID", kernel_init=orth(np.sqrt(2)))(x.astype(jnp.float32)))
            x = nn.relu(nn.Dense(self.hidden, kernel_init=orth(np.sqrt(2)))(x.reshape(x.shape[0], -1)))
            return nn.Dense(self.num_actions, kernel_init=orth(0.01))(x), nn.Dense(1, kernel_init=orth(1.0))(x)[:, 0]
        x = x.reshape(x.shape[0], -1)
        a = nn.tanh(nn.Dense(self.hidden, kernel_init=orth(np.sqrt(2)))(x))
        a = nn.tanh(nn.Dense(self.hidden, kernel_init=orth(np.sqrt(2)))(a))
        logits = nn.Dense(self.num_actions, kernel_init=orth(0.01))(a)
        c = nn.tanh(nn.Dense(self.hidden, kernel_init=orth(np.sqrt(2)))(x))
        c = nn.tanh(nn.Dense(self.hidden, kernel_init=orth(np.sqrt(2)))(c))
        return logits, nn.Dense(1, kernel_init=orth(1.0))(c)[:, 0]


def make_reference_train(env_id="CartPole-v1", num_envs=4, num_steps=128, total_timesteps=500_000, epochs=4,
                         minibatches=4, lr=2.5e-4, gamma=0.99, lam=0.95, clip=0.2, ent=0.01, vf=0.5, max_grad=0.5, conv=False,
                         hidden=64):
    """``conv``: the MinAtar conv torso (written the plain way, with flax's Conv) instead of two MLP towers;
    ``hidden``: the width of each Dense layer."""
    env, params = gymnax.make(env_id)
    num_updates = total_timesteps // (num_envs * num_steps)
    batch = num_envs * num_steps
    net = Net(env.action_space(params).n, hidden=hidden, conv=conv)
    tx = optax.chain(optax.clip_by_global_norm(max_grad),
                     optax.adam(lambda c: lr * (1.0 - (c // (epochs * minibatches)) / num_updates), eps=1e-5))

    def train(key):
        key, k_net, k_env = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, num_envs), params)
        weights = net.init(k_net, obs)
        opt = tx.init(weights)

        def update(carry, _):
            weights, opt, state, obs, key, ep_ret, last = carry

            def step(c, _):
                state, obs, key, ep_ret, last = c
                key, k_a, k_s = jax.random.split(key, 3)
                logits, value = net.apply(weights, obs)
                action = jax.random.categorical(k_a, logits)
                logp = jax.nn.log_softmax(logits)[jnp.arange(num_envs), action]
                nobs, state, r, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                    jax.random.split(k_s, num_envs), state, action, params)
                done = term | trunc
                ep_ret = ep_ret + r
                last = jnp.where(done, ep_ret, last)
                ep_ret = jnp.where(done, 0.0, ep_ret)
                return (state, nobs, key, ep_ret, last), (obs, action, logp, value, r, done)

            (state, obs, key, ep_ret, last), traj = jax.lax.scan(step, (state, obs, key, ep_ret, last), None, num_steps)
            t_obs, t_act, t_logp, t_val, t_rew, t_done = traj
            _, last_val = net.apply(weights, obs)

            def gae_step(c, x):
                adv, next_val = c
                done, val, rew = x
                delta = rew + gamma * next_val * (1 - done) - val
                adv = delta + gamma * lam * (1 - done) * adv
                return (adv, val), adv

            _, adv = jax.lax.scan(gae_step, (jnp.zeros(num_envs), last_val), (t_done, t_val, t_rew), reverse=True)
            ret = adv + t_val
            data = jax.tree.map(lambda x: x.reshape((batch,) + x.shape[2:]), (t_obs, t_act, t_logp, t_val, adv, ret))

            def loss_fn(w, mb):
                o, a, old_logp, old_v, adv, ret = mb
                logits, v = net.apply(w, o)
                logp_all = jax.nn.log_softmax(logits)
                logp = logp_all[jnp.arange(a.shape[0]), a]
                vc = old_v + jnp.clip(v - old_v, -clip, clip)
                v_loss = 0.5 * jnp.maximum((v - ret) ** 2, (vc - ret) ** 2).mean()
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                ratio = jnp.exp(logp - old_logp)
                pi_loss = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv).mean()
                entropy = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
                return pi_loss + vf * v_loss - ent * entropy

            def epoch(c, k):
                perm = jax.random.permutation(k, batch)
                mbs = jax.tree.map(lambda x: x[perm].reshape((minibatches, -1) + x.shape[1:]), data)

                def mb_step(c, mb):
                    w, o = c
                    g = jax.grad(loss_fn)(w, mb)
                    u, o = tx.update(g, o)
                    return (optax.apply_updates(w, u), o), None

                return jax.lax.scan(mb_step, c, mbs)[0], None

            key, k = jax.random.split(key)
            (weights, opt), _ = jax.lax.scan(epoch, (weights, opt), jax.random.split(k, epochs))
            return (weights, opt, state, obs, key, ep_ret, last), last.mean()

        init = (weights, opt, state, obs, key, jnp.zeros(num_envs), jnp.zeros(num_envs))
        _, returns = jax.lax.scan(update, init, None, num_updates)
        return returns

    return train
