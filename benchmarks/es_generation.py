"""Seconds per ES generation vs population size, on 1 and on all host devices, with the outer loop's overhead.

    python benchmarks/es_generation.py                      # populations 8 16 32 64, 1e5-step CartPole members
    python benchmarks/es_generation.py --populations 8 16 --total-timesteps 50000

Overhead = generation time / (population x one inner run alone on one device): below 1 means the
population is evaluated faster than its members one by one (vmap, and sharding over devices).
Runs each device count in a fresh process (the host device count is fixed when jax starts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import json, sys, time, dataclasses
import jax
from metarl.config import ESConfig, MetaTrainConfig, PPOConfig, TaskDistribution
from metarl.inner import default_task, make_train
from metarl.meta.run import build
from metarl.meta.tasks import References
import jax.numpy as jnp
populations, total, repeats = json.loads(sys.argv[1])
ppo = PPOConfig(total_timesteps=total)
out = {"devices": jax.device_count(), "platform": jax.devices()[0].platform, "generations": []}
refs = References(jnp.zeros(1), jnp.ones(1))
for population in populations:
    # one agent per member, so a generation is exactly population x one inner run
    cfg = MetaTrainConfig(ppo=ppo, tasks=TaskDistribution(normalize=False, seeds_per_member=1), outer=ESConfig(population_size=population))
    problem, loop = build(cfg)
    objective, env_specs, meta_params = problem.objective, problem.env_specs, problem.meta_params
    step = jax.jit(lambda state, key: loop.step(state, key, refs))
    state = loop.init(jax.random.PRNGKey(0), meta_params)
    start = time.perf_counter()
    state, m = jax.block_until_ready(step(state, jax.random.PRNGKey(0)))
    compile_s = time.perf_counter() - start
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        state, m = jax.block_until_ready(step(state, jax.random.PRNGKey(r + 1)))
        times.append(time.perf_counter() - start)
    out["generations"].append({"population": population, "compile_plus_first_seconds": round(compile_s, 2),
                               "seconds_per_generation": round(min(times), 3)})
if out["devices"] == 1:
    env_spec = env_specs[0]
    train = jax.jit(make_train(ppo, env_spec, objective))
    task = default_task(ppo, env_spec)
    jax.block_until_ready(train(meta_params, task, jax.random.PRNGKey(0)))
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(train(meta_params, task, jax.random.PRNGKey(r)))
        times.append(time.perf_counter() - start)
    out["single_inner_run_seconds"] = round(min(times), 3)
print(json.dumps(out))
"""


def measure(device_count: int, populations: list[int], total: int, repeats: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={device_count}")
    result = subprocess.run([sys.executable, "-c", WORKER, json.dumps([populations, total, repeats])],
                            env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--populations", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--total-timesteps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "es_generation-cpu.json"))
    args = parser.parse_args()
    runs = {str(d): measure(d, args.populations, args.total_timesteps, args.repeats) for d in sorted(set(args.devices))}
    single = runs["1"]["single_inner_run_seconds"] if "1" in runs else None
    table = []
    for population in args.populations:
        row = {"population": population}
        for devices, run in runs.items():
            seconds = next(g["seconds_per_generation"] for g in run["generations"] if g["population"] == population)
            row[f"seconds_{devices}_devices"] = seconds
            if single:
                row[f"overhead_{devices}_devices"] = round(seconds / (population * single), 3)
        if "1" in runs and len(runs) > 1:
            other = max(runs, key=int)
            row[f"speedup_{other}_vs_1_devices"] = round(row["seconds_1_devices"] / row[f"seconds_{other}_devices"], 2)
        table.append(row)
    report = {"inner_run": {"env": "CartPole-v1", "objective": "lpo", "total_timesteps": args.total_timesteps,
                            "num_envs": 4, "num_steps": 128, "seeds_per_member": 1,
                            "single_run_seconds_1_device": single},
              "runs": runs, "table": table}
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
