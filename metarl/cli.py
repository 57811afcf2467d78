"""The `metarl` command. Subcommands parse a frozen config with tyro, validate it, then run.

    metarl train --env CartPole-v1 --objective ppo --num-seeds 4
    metarl train --env Breakout-MinAtar --objective-file results/.../learned/ta_lpo.msgpack
    metarl train --import my_objectives.py --objective my_drift   # a user's own objective
    metarl list                      # registered envs and objectives
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from metarl.config import MetaTrainConfig, TrainConfig, to_dict
from metarl.errors import ConfigError, LearnedFileError, RegistryError

USER_ERRORS = (ConfigError, RegistryError, LearnedFileError)


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``--flag X`` or ``--flag=X`` in ``args`` (last one wins), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def load_plugins(args: list[str]) -> list[str]:
    """Import every ``--import X`` (a module name or a .py file) and return the remaining args.

    A plugin registers its own objectives (or envs, ...) at import, so a user's component is usable
    from the command line without editing metarl.
    """
    import importlib
    import importlib.util

    remaining, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--import" or arg.startswith("--import="):
            target = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in arg else 2
            if not target:
                raise ConfigError("--import: needs a module name or a path to a .py file")
            if target.endswith(".py"):
                path = Path(target)
                if not path.is_file():
                    raise ConfigError(f"--import: file {target!r} does not exist")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                try:
                    importlib.import_module(target)
                except ModuleNotFoundError as error:
                    raise ConfigError(f"--import: cannot import {target!r} ({error})") from None
            continue
        remaining.append(arg)
        i += 1
    return remaining


def parse_train_config(args: list[str]) -> TrainConfig:
    """tyro parse with the env's PPO preset as defaults, so `--env X` alone trains well."""
    import tyro

    from metarl.presets import ppo_preset

    env = _flag_value(args, "--env") or TrainConfig.env
    default = TrainConfig(env=env, ppo=ppo_preset(env))
    return tyro.cli(TrainConfig, args=args, default=default, prog="metarl train", description="Train an agent with one objective.")


def run_train(config: TrainConfig, command: list[str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    """Validate, build, compile and run `config`; write its run folder. Returns a summary dict."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from metarl import envs, objectives
    from metarl.inner import default_task, final_return, make_train
    from metarl.io.results import prepare_run_dir, write_config, write_metrics

    config.validate()
    mesh = None
    if config.num_seeds > 1 and jax.device_count() > 1:
        from metarl.distributed import population_mesh

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
    from metarl import plugins

    built = plugins.build(config.curriculum, config.shaping, env, config.ppo.gamma, jax.random.PRNGKey(config.seed))
    meta_params = plugins.joint(meta_params, built)
    run_dir = prepare_run_dir(config.out, config.run_name, force=config.force)
    write_config(run_dir, to_dict(config), command, kind="train")

    seeds = jax.vmap(make_train(config.ppo, env, objective, **plugins.inner_kwargs(built)), in_axes=(None, None, 0))
    if mesh is not None:
        from jax.sharding import PartitionSpec

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
    from metarl.io.tracking import open_tracker

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


def parse_meta_train_config(args: list[str]) -> MetaTrainConfig:
    import tyro

    return tyro.cli(MetaTrainConfig, args=args, prog="metarl meta-train",
                    description="Discover an objective's meta-parameters with ES (--outer es) or meta-gradients (--outer metagrad).")


def run_list() -> None:
    from metarl import curricula, envs, objectives, shaping
    from metarl.meta.es import algorithm_names

    print("objectives:", ", ".join(objectives.names()))
    print("curricula:", ", ".join(["none", *curricula.names()]))
    print("shapings:", ", ".join(shaping.names()), "· heuristics:", ", ".join(shaping.heuristics.REGISTRY.names()))
    print("envs:", ", ".join(envs.names()))
    print("envs with a level space (curricula):", ", ".join(envs.LEVEL_ENVS))
    print("es algorithms:", ", ".join(algorithm_names()))


def parse_sweep_args(args: list[str]):
    import argparse

    parser = argparse.ArgumentParser(prog="metarl sweep", description="Run every run of a sweep file (sweeps/*.toml).")
    parser.add_argument("file", help="the sweep file (TOML)")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the runs (with their status and command); run nothing")
    parser.add_argument("--force", action="store_true", help="start again the runs whose folder holds another config")
    parser.add_argument("--no-vmap", action="store_true",
                        help="run variants differing only in seed, sigma, learning rates or entropy one by one, not vmapped")
    parser.add_argument("--no-plot", action="store_true", help="do not redraw the figures at the end")
    parser.add_argument("--out", default=None, help="results folder (default: the file's 'out', else results/<file name>)")
    parser.add_argument("--host-devices", type=int, default=0, help="CPU only: XLA host devices (0: one per core)")
    parser.add_argument("--coordinator", default=None, help="several hosts: host:port of process 0, or 'auto'")
    parser.add_argument("--num-processes", type=int, default=0, help="several hosts: number of processes")
    parser.add_argument("--process-id", type=int, default=-1, help="several hosts: this process's id")
    parser.add_argument("--heartbeat-timeout", type=int, default=30, help="seconds before a dead peer stops the others")
    return parser.parse_args(args)


COMMANDS = {
    "eval": "evaluate objectives (names or learned files) on envs x lifetimes x seeds",
    "plot": "regenerate every figure below a results folder from its files",
    "meta-train": "discover an objective with ES or meta-gradients (checkpointed, resumable)",
    "sweep": "validate, then run every run of a sweep file (skips complete runs, resumes interrupted ones)",
    "train": "train an agent with one objective (built-in or a learned file)",
    "list": "list the registered envs and objectives",
}


def _usage() -> str:
    lines = ["usage: metarl <command> [options]   (metarl <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, text in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(_usage())
        return 0
    command, args = argv[1], argv[2:]
    try:
        args = load_plugins(args)
        if command == "meta-train":
            from metarl.distributed import configure_host_devices, initialize
            from metarl.meta.run import NonFiniteFitnessError, run_meta_train

            config = parse_meta_train_config(args)
            config.distributed.validate()
            configure_host_devices(config.host_devices)  # before jax initializes
            initialize(config.distributed)
            try:
                run_meta_train(config, argv)
            except NonFiniteFitnessError as error:
                print(f"metarl meta-train: stopped: {error}", file=sys.stderr)
                _leave_peers(3)
                return 3
        elif command == "train":
            from metarl.distributed import configure_host_devices

            config = parse_train_config(args)
            configure_host_devices(config.host_devices)  # before jax initializes
            run_train(config, argv)
        elif command == "sweep":
            from metarl.distributed import DistributedConfig, configure_host_devices, initialize
            from metarl.sweep import SweepFailed, run_sweep

            options = parse_sweep_args(args)
            distributed = DistributedConfig(options.coordinator, options.num_processes, options.process_id, options.heartbeat_timeout)
            distributed.validate()
            configure_host_devices(options.host_devices)  # before jax initializes
            initialize(distributed)
            try:
                run_sweep(options.file, out=options.out, dry_run=options.dry_run, force=options.force,
                          vmap=not options.no_vmap, plot=not options.no_plot)
            except SweepFailed as error:
                print(f"metarl sweep: {error}", file=sys.stderr)
                _leave_peers(3)
                return 3
        elif command == "eval":
            import tyro

            from metarl.evaluation import EvalConfig, run_eval

            run_eval(tyro.cli(EvalConfig, args=args, prog="metarl eval", description="Evaluate objectives on a grid."), argv)
        elif command == "plot":
            from metarl.plots import plot_all

            roots = [a for a in args if not a.startswith("-")] or ["results"]
            for root in roots:
                if not Path(root).is_dir():
                    raise ConfigError(f"plot: {root!r} is not a folder")
                for path in plot_all(root):
                    print(f"wrote {path}")
        elif command == "list":
            run_list()
        else:
            print(f"metarl: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
            return 2
    except USER_ERRORS as error:
        print(f"metarl {command}: error: {error}", file=sys.stderr)
        _leave_peers(2)
        return 2
    except BaseException:
        if _has_peers():
            import traceback

            traceback.print_exc()
            _leave_peers(1)
        raise
    return 0


def _has_peers() -> bool:
    if "jax" not in sys.modules:  # only a run that started jax can have peers
        return False
    import jax

    return jax.process_count() > 1


def _leave_peers(code: int) -> None:
    """With several processes, exit at once: see metarl.distributed.exit_if_peers."""
    if "jax" in sys.modules:  # only a run that started jax can have peers
        from metarl.distributed import exit_if_peers

        exit_if_peers(code)


if __name__ == "__main__":
    sys.exit(main())
