"""Inner-loop speed: metarl's PPO vs raw env stepping and vs a plain single-file PPO, in one run.

    python benchmarks/inner_loop.py                 # full run, writes benchmarks/results/inner_loop-<device>.json
    python benchmarks/inner_loop.py --quick         # smaller budgets, for a smoke check

Ratios (metarl / raw stepping, metarl / reference PPO) are measured in the same process, one after the
other, so they hold on a noisy machine where absolute steps/s do not. Each timing is the best of
``--repeats`` runs of an already-compiled function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from metarl import envs, objectives
from metarl.config import PPOConfig
from metarl.inner import default_task, final_return, make_train
from metarl.presets import CLASSIC_CONTROL, MINATAR

sys.path.insert(0, str(Path(__file__).parent))
from reference_ppo import make_reference_train  # noqa: E402


def best_time(fn, *args, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def compiled(fn, *args):
    start = time.perf_counter()
    executable = jax.jit(fn).lower(*args).compile()
    return executable, time.perf_counter() - start


def random_stepping(env_name: str, num_envs: int, num_steps: int):
    """``run(key) -> summed reward``: vmapped env stepping with uniformly random actions in lax.scan, no
    learning (the env's ceiling); device.py measures the same program."""
    spec = envs.make(env_name)
    params = spec.default_params

    def run(key):
        obs, state = jax.vmap(spec.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

        def body(carry, _):
            state, key = carry
            key, action_key, step_key = jax.random.split(key, 3)
            if spec.action_kind == "discrete":
                actions = jax.random.randint(action_key, (num_envs,), 0, spec.action_dim)
            else:
                actions = jax.random.uniform(action_key, (num_envs, spec.action_dim), minval=-1.0, maxval=1.0)
            _, state, reward, *_ = jax.vmap(spec.step, in_axes=(0, 0, 0, None))(
                jax.random.split(step_key, num_envs), state, actions, params
            )
            return (state, key), reward

        return jax.lax.scan(body, (state, key), None, num_steps)[1].sum()

    return run


def raw_stepping(env_name: str, num_envs: int, num_steps: int, repeats: int) -> float:
    """Steps/s of vmapped env stepping with uniformly random actions, in lax.scan (no learning)."""
    run = random_stepping(env_name, num_envs, num_steps)
    executable, _ = compiled(run, jax.random.PRNGKey(0))
    return num_envs * num_steps / best_time(executable, jax.random.PRNGKey(1), repeats=repeats)


def metarl_ppo(env_name: str, config: PPOConfig, num_seeds: int, repeats: int) -> dict:
    env = envs.make(env_name)
    train = make_train(config, env, objectives.make("ppo"))
    task = default_task(config, env)
    if num_seeds == 1:
        fn, key = train, jax.random.PRNGKey(0)
    else:
        fn, key = jax.vmap(train, in_axes=(None, None, 0)), jax.random.split(jax.random.PRNGKey(0), num_seeds)
    executable, compile_seconds = compiled(fn, {}, task, key)
    seconds = best_time(executable, {}, task, key, repeats=repeats)
    output = executable({}, task, key)
    steps = config.num_updates * config.batch_size * num_seeds
    return {
        "env": env_name, "num_envs": config.num_envs, "num_steps": config.num_steps, "num_seeds": num_seeds,
        "env_steps": steps, "compile_seconds": round(compile_seconds, 2), "run_seconds": round(seconds, 3),
        "steps_per_second": round(steps / seconds), "final_return": jnp.mean(final_return(output)).item(),
    }


def reference_ppo(config: PPOConfig, repeats: int) -> dict:
    train = make_reference_train(num_envs=config.num_envs, num_steps=config.num_steps, total_timesteps=config.total_timesteps)
    executable, compile_seconds = compiled(train, jax.random.PRNGKey(0))
    seconds = best_time(executable, jax.random.PRNGKey(0), repeats=repeats)
    steps = config.num_updates * config.batch_size
    return {"compile_seconds": round(compile_seconds, 2), "run_seconds": round(seconds, 3),
            "steps_per_second": round(steps / seconds), "final_return": float(executable(jax.random.PRNGKey(0))[-1])}


def whole_process_seconds(total_timesteps: int) -> float:
    """Wall time of `metarl train` as a fresh process (import, compile, run, write)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "metarl.app.cli", "train", "--env", "CartPole-v1", "--ppo.total-timesteps", str(total_timesteps),
             "--out", out], check=True, capture_output=True,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small budgets (smoke check)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/inner_loop-<device>.json)")
    args = parser.parse_args()

    cartpole = dataclasses.replace(CLASSIC_CONTROL, total_timesteps=50_000 if args.quick else 500_000)
    minatar = dataclasses.replace(MINATAR, total_timesteps=64 * 128 * (5 if args.quick else 60))
    device = jax.devices()[0]
    report = {
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count(),
                   "cpu_cores": os.cpu_count(), "machine": platform.machine()},
        "jax": jax.__version__,
        "repeats": args.repeats,
    }

    ppo = metarl_ppo("CartPole-v1", cartpole, 1, args.repeats)
    raw = raw_stepping("CartPole-v1", cartpole.num_envs, cartpole.num_updates * cartpole.num_steps, args.repeats)
    ref = reference_ppo(cartpole, args.repeats)
    report["cartpole"] = {
        "metarl_ppo": ppo, "raw_stepping_steps_per_second": round(raw), "reference_ppo": ref,
        "ratio_metarl_to_raw_stepping": round(ppo["steps_per_second"] / raw, 4),
        "ratio_metarl_to_reference_ppo": round(ppo["steps_per_second"] / ref["steps_per_second"], 3),
    }
    seeds = metarl_ppo("CartPole-v1", cartpole, 8, args.repeats)
    report["cartpole_8_seeds_vmapped"] = {**seeds, "ratio_to_one_seed": round(seeds["steps_per_second"] / ppo["steps_per_second"], 2)}

    ppo_minatar = metarl_ppo("Breakout-MinAtar", minatar, 1, args.repeats)
    raw_minatar = raw_stepping("Breakout-MinAtar", minatar.num_envs, minatar.num_updates * minatar.num_steps, args.repeats)
    report["breakout_minatar"] = {
        "metarl_ppo": ppo_minatar, "raw_stepping_steps_per_second": round(raw_minatar),
        "ratio_metarl_to_raw_stepping": round(ppo_minatar["steps_per_second"] / raw_minatar, 4),
    }
    report["whole_process_metarl_train_cartpole_seconds"] = {
        "total_timesteps": cartpole.total_timesteps, "seconds": round(whole_process_seconds(cartpole.total_timesteps), 1),
    }

    text = json.dumps(report, indent=2)
    print(text)
    suffix = "-quick" if args.quick else ""
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"inner_loop-{device.platform}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
