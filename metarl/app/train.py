"""Train agents with one objective: the library behind `metarl train`.

``run_train(config)`` validates the config, builds the env, objective and plug-ins, trains ``num_seeds``
agents in one jitted call (sharded over devices when there are several) and writes the run folder:
``config.json``, ``metrics.jsonl`` (one row per update) and ``summary.json``. The folder is locked while the
run writes it (:mod:`metarl.io.lock`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tyro
from jax.sharding import PartitionSpec

from metarl import components, envs, objectives
from metarl.app.argv import flag_value
from metarl.checks import validate
from metarl.config import TrainConfig, to_dict
from metarl.distributed import population_mesh
from metarl.inner import default_task, final_return, make_train
from metarl.io.results import prepare_run_dir, write_config, write_metrics
from metarl.io.tracking import open_tracker
from metarl.presets import expand_preset, ppo_preset


def run_train(config: TrainConfig, command: list[str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    """Validate, build, compile and run `config`; write its run folder. Returns a summary dict."""
    validate(config)
    mesh = None
    if config.num_seeds > 1 and jax.device_count() > 1:
        # Seeds are sharded over every device (one XLA host device per CPU core), as ES populations are;
        # an indivisible seed count is refused here, before anything is written.
        mesh = population_mesh(config.num_seeds, what="num_seeds")
    if config.objective_file is not None:
        objective, meta_params, kwargs = objectives.load(config.objective_file)
        config = dataclasses.replace(config, objective=objective.name, objective_kwargs=_json(kwargs))
    else:
        kwargs = config.objective_kwargs_dict()
        objective = objectives.make(config.objective, **kwargs)
        meta_params = objective.init(jax.random.PRNGKey(config.seed))
    env = envs.make(config.env)
    built = components.build(config.curriculum, config.shaping, env, config.ppo.gamma, jax.random.PRNGKey(config.seed))
    meta_params = components.joint(meta_params, built)
    run_dir, lock = prepare_run_dir(config.out, config.run_name, force=config.force)
    try:
        return _train_and_write(config, command, run_dir, objective, meta_params, env, built, mesh, verbose)
    finally:
        lock.release()


def _train_and_write(config: TrainConfig, command, run_dir: Path, objective, meta_params, env, built, mesh,
                     verbose: bool) -> dict[str, Any]:
    write_config(run_dir, to_dict(config), command, kind="train")

    seeds = jax.vmap(make_train(config.ppo, env, objective, **components.inner_kwargs(built)), in_axes=(None, None, 0))
    if mesh is not None:
        seeds = jax.shard_map(seeds, mesh=mesh, in_specs=(PartitionSpec(), PartitionSpec(), PartitionSpec("pop")),
                              out_specs=PartitionSpec("pop"), check_vma=False)
    train = jax.jit(seeds)
    task = default_task(config.ppo, env)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(config.seed), i))(jnp.arange(config.num_seeds))
    start = time.perf_counter()
    compiled = train.lower(meta_params, task, keys).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    output = jax.block_until_ready(compiled(meta_params, task, keys))
    run_seconds = time.perf_counter() - start

    metrics = jax.tree.map(np.asarray, output.metrics)
    batch = config.ppo.batch_size
    rows = []
    for n in range(config.ppo.num_updates):
        row = {"update": n, "env_steps": (n + 1) * batch}
        for name, values in metrics.items():
            if name != "active":  # per-update scalars; vectors (a curriculum's category fractions) as lists
                value = np.mean(values[:, n], axis=0)
                row[name] = float(value) if value.ndim == 0 else [float(v) for v in value]
        row["episode_return_per_seed"] = [float(v) for v in metrics["episode_return"][:, n]]
        rows.append(row)
    write_metrics(run_dir, rows)

    with open_tracker(config.track, run_dir, to_dict(config), run_dir.name, group=Path(config.out).name) as tracker:
        for row in rows:
            tracker.log(row["update"], row)
    finals = np.asarray(final_return(output))
    total_steps = config.ppo.num_updates * batch * config.num_seeds
    summary = {
        "run_dir": str(run_dir),
        "env": config.env,
        "objective": config.objective,
        "num_seeds": config.num_seeds,
        "env_steps_per_seed": config.ppo.num_updates * batch,
        "final_return_per_seed": finals.tolist(),
        "final_return_mean": float(finals.mean()),
        "compile_seconds": compile_seconds,
        "run_seconds": run_seconds,
        "steps_per_second": total_steps / run_seconds,
    }
    if output.heldout is not None:
        summary.update({f"heldout_{k}_per_seed": np.asarray(v).tolist() for k, v in output.heldout.items()})
        summary.update({f"heldout_{k}_mean": float(np.mean(v)) for k, v in output.heldout.items()})
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if verbose:
        print(
            f"{config.env} · {config.objective} · {config.num_seeds} seed(s) × {summary['env_steps_per_seed']:,} steps\n"
            f"  final return {finals.mean():.2f} (per seed: {', '.join(f'{v:.1f}' for v in finals)})\n"
            + (f"  held-out levels: return {summary['heldout_return_mean']:.3f} · success {summary['heldout_success_mean']:.3f}\n"
               if output.heldout is not None else "") +
            f"  compile {compile_seconds:.1f}s · run {run_seconds:.1f}s · {summary['steps_per_second']:,.0f} steps/s\n"
            f"  wrote {run_dir}/config.json, metrics.jsonl, summary.json"
        )
    return summary


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def parse_train_config(args: list[str]) -> TrainConfig:
    """`metarl train`'s parser: tyro with the env's PPO preset as defaults, so `--env X` alone trains well."""
    args = expand_preset("train", args)
    env = flag_value(args, "--env") or TrainConfig.env
    default = TrainConfig(env=env, ppo=ppo_preset(env))
    return tyro.cli(TrainConfig, args=args, default=default, prog="metarl train",
                    description="Train an agent with one objective. --preset smoke: every stage at the smallest size (seconds).")


def train_main(config: TrainConfig, argv: list[str]) -> int:
    run_train(config, argv)
    return 0
