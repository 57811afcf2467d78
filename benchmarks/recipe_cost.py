"""Cost of one ES generation of each env's discovery recipe, beside a single-file PPO at the same settings.

    python benchmarks/recipe_cost.py              # CartPole-v1, Acrobot-v1, Breakout-MinAtar -> results/recipe_cost-<device>.json
    python benchmarks/recipe_cost.py --quick      # smaller populations and lifetimes (smoke check)

A generation of a recipe is population x seeds-per-member whole PPO trainings at the recipe's inner settings,
vmapped into one program (what `metarl meta-train` runs, less ES's ask and tell, which cost microseconds). For
each recipe the same number of trainings of `reference_ppo.py` (plain single-file PPO, no learned objective,
no lifetime masking), vmapped the same way, is timed in the same process, so the ratio holds on a noisy
machine where seconds do not. Each timing is the best of ``--repeats`` runs of an already-compiled program.

Each recipe's report also says how close the generation runs to the CPU's arithmetic peak: the network's
floating-point operations in one generation (rollout forwards, then forwards and backwards per epoch, as XLA
counts them on loop-free programs) per second, against the rate of a large float32 matrix product measured in
the same run (what this CPU and XLA reach at best).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from metarl import envs, objectives
from metarl.config import MetaTrainConfig, PPOConfig
from metarl.inner import default_task, make_train
from metarl.rl.networks import make_actor_critic

sys.path.insert(0, str(Path(__file__).parent))
from inner_loop import best_time, compiled  # noqa: E402
from reference_ppo import make_reference_train  # noqa: E402

# (name, env, inner settings, population, seeds per member): the recipes of results/README.md.
RECIPES = {
    "CartPole-v1": (MetaTrainConfig().ppo, 16, 2),
    "Acrobot-v1": (MetaTrainConfig().ppo, 16, 2),
    # sweeps/minatar_cpu.toml: 16 envs x 32 steps, 32 updates, lr 5e-3 constant, the conv torso.
    "Breakout-MinAtar": (PPOConfig(num_envs=16, num_steps=32, total_timesteps=16384, update_epochs=4, num_minibatches=4, lr=0.005,
                                   hidden_sizes=(64,), activation="relu", anneal_lr=False), 16, 1),
}


def flops_of(executable) -> float:
    analysis = executable.cost_analysis()
    if isinstance(analysis, list):  # older jax: one dict per computation
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", 0.0))


def network_flops(env_name: str, ppo: PPOConfig, runs: int) -> float:
    """The network arithmetic of one generation: per update, a forward pass on every rollout step and, per
    epoch, a forward and backward pass on every sample. Counted by XLA on loop-free programs (its cost analysis
    of a program with loops counts each loop body once), then multiplied by the loop counts."""
    spec = envs.make(env_name)
    net = make_actor_critic(ppo, spec.obs_shape, spec.action_kind, spec.action_dim)
    minibatch = ppo.batch_size // ppo.num_minibatches
    obs = jnp.zeros((ppo.num_envs, *spec.obs_shape), jnp.float32)
    weights = net.init(jax.random.PRNGKey(0), obs)
    forward = jax.jit(net.apply).lower(weights, obs).compile()
    batch = jnp.zeros((minibatch, *spec.obs_shape), jnp.float32)

    def loss(weights, batch):
        logits, value = net.apply(weights, batch)
        return jnp.sum(logits) + jnp.sum(value)

    backward = jax.jit(jax.grad(loss)).lower(weights, batch).compile()
    per_update = ppo.num_steps * flops_of(forward) + ppo.update_epochs * ppo.num_minibatches * flops_of(backward)
    return runs * ppo.num_updates * per_update


def matmul_peak(repeats: int, size: int = 2048) -> float:
    """FLOP/s of a float32 (size x size) @ (size x size) product: what XLA reaches on this CPU at best."""
    a = jax.random.normal(jax.random.PRNGKey(0), (size, size), jnp.float32)
    product, _ = compiled(lambda a: a @ a, a)
    return 2 * size**3 / best_time(product, a, repeats=max(repeats, 3))


def metarl_generation(env_name: str, ppo: PPOConfig, runs: int, population: int, repeats: int) -> dict:
    """``runs`` trainings with LPO's meta-parameters perturbed per member (as an ES population is), one program."""
    spec = envs.make(env_name)
    objective = objectives.make("lpo")
    train = make_train(ppo, spec, objective)
    task = default_task(ppo, spec)
    mean = objective.init(jax.random.PRNGKey(0))
    noise = jax.tree.map(lambda x: 0.03 * jax.random.normal(jax.random.PRNGKey(1), (population, *x.shape)), mean)
    members = jax.tree.map(lambda m, n: jnp.repeat(m + n, runs // population, axis=0), mean, noise)
    keys = jax.random.split(jax.random.PRNGKey(2), runs)
    executable, compile_seconds = compiled(jax.vmap(train, in_axes=(0, None, 0)), members, task, keys)
    seconds = best_time(executable, members, task, keys, repeats=repeats)
    steps = runs * ppo.num_updates * ppo.batch_size
    return {"compile_seconds": round(compile_seconds, 2), "seconds": round(seconds, 3), "env_steps": steps,
            "steps_per_second": round(steps / seconds)}


def reference_generation(env_name: str, ppo: PPOConfig, runs: int, repeats: int) -> dict:
    conv = spec_is_image(env_name)
    train = make_reference_train(env_name, num_envs=ppo.num_envs, num_steps=ppo.num_steps, total_timesteps=ppo.total_timesteps,
                                 epochs=ppo.update_epochs, minibatches=ppo.num_minibatches, lr=ppo.lr, conv=conv,
                                 hidden=ppo.hidden_sizes[0])
    keys = jax.random.split(jax.random.PRNGKey(2), runs)
    executable, compile_seconds = compiled(jax.vmap(train), keys)
    seconds = best_time(executable, keys, repeats=repeats)
    steps = runs * ppo.num_updates * ppo.batch_size
    return {"compile_seconds": round(compile_seconds, 2), "seconds": round(seconds, 3), "env_steps": steps,
            "steps_per_second": round(steps / seconds)}


def spec_is_image(env_name: str) -> bool:
    return len(envs.make(env_name).obs_shape) == 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="population 4, a quarter of each lifetime (smoke check)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--envs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/recipe_cost-<device>.json)")
    args = parser.parse_args()

    device = jax.devices()[0]
    peak = matmul_peak(args.repeats)
    report = {"device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count(),
                         "cpu_cores": os.cpu_count(), "machine": platform.machine()},
              "jax": jax.__version__, "repeats": args.repeats, "quick": args.quick,
              "matmul_float32_flops_per_second": round(peak), "recipes": {}}
    for env_name in args.envs:
        ppo, population, seeds = RECIPES[env_name]
        if args.quick:
            population = 4
            ppo = dataclasses.replace(ppo, total_timesteps=max(ppo.total_timesteps // 4, ppo.batch_size))
        runs = population * seeds
        ours = metarl_generation(env_name, ppo, runs, population, args.repeats)
        reference = reference_generation(env_name, ppo, runs, args.repeats)
        entry = {"inner": {"num_envs": ppo.num_envs, "num_steps": ppo.num_steps, "num_updates": ppo.num_updates,
                           "update_epochs": ppo.update_epochs, "num_minibatches": ppo.num_minibatches},
                 "population": population, "seeds_per_member": seeds, "trainings_per_generation": runs,
                 "metarl_lpo_generation": ours, "reference_ppo_same_trainings": reference,
                 "ratio_metarl_to_reference_seconds": round(ours["seconds"] / reference["seconds"], 3)}
        flops = network_flops(env_name, ppo, runs)
        entry["network_flops_per_generation"] = flops
        entry["metarl_network_flops_per_second"] = round(flops / ours["seconds"])
        entry["metarl_fraction_of_matmul_peak"] = round(flops / ours["seconds"] / peak, 4)
        entry["reference_fraction_of_matmul_peak"] = round(flops / reference["seconds"] / peak, 4)
        report["recipes"][env_name] = entry
        print(json.dumps({env_name: entry}), flush=True)

    suffix = "-quick" if args.quick else ""
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"recipe_cost-{device.platform}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
