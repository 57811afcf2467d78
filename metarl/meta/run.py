"""`metarl meta-train`: validate, build, then run the outer loop in chunks of jitted generations.

Between chunks: metrics rows, a progress line, an evaluation of the current mean meta-parameters, a
checkpoint and the exported learned file. Rerunning the same command resumes from the newest good
checkpoint and ends bit-identical to an uninterrupted run (the generation key is derived from the run
seed and the generation number, and the state holds everything else).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

from metarl.config import MetaTrainConfig, to_dict
from metarl.errors import ConfigError


class NonFiniteFitnessError(RuntimeError):
    """Every member's fitness was non-finite for several generations in a row."""


def _prepare_run_dir(config: MetaTrainConfig) -> Path:
    """Fresh folder, or the folder of the same run to resume; refuse one written by another config."""
    from metarl.io.checkpoint import check_same_config

    run_dir = Path(config.out) / config.run_name
    stored_path = run_dir / "config.json"
    if run_dir.exists() and any(run_dir.iterdir()):
        if config.force:
            shutil.rmtree(run_dir)
        elif not stored_path.is_file():
            raise ConfigError(f"out: {str(run_dir)!r} holds files that are not a metarl run; pass --force or choose --name")
        else:
            stored = json.loads(stored_path.read_text())
            if stored.get("kind") != "meta-train":
                raise ConfigError(f"out: {str(run_dir)!r} holds a {stored.get('kind', 'train')!r} run; pass --force or choose --name")
            check_same_config(stored["identity"], config.identity(), f"run folder {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _truncate_metrics(run_dir: Path, generation: int) -> None:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["generation"] < generation]
    path.write_text("".join(row + "\n" for row in rows))


class Built(NamedTuple):
    objective: Any
    env_specs: list
    plugins: list  # per env: metarl.plugins.Plugins (curriculum, shaping, heuristic and their initial η)
    evaluate_member: Any  # ES only
    mesh: Any  # ES only


def build(config: MetaTrainConfig) -> Built:
    """Everything that needs jax, built after validation: objective, envs, curriculum and shaping per env,
    and for ES the member evaluator and the population mesh (``None`` for meta-gradients, one device)."""
    import jax

    from metarl import envs, objectives, plugins
    from metarl.distributed import population_mesh
    from metarl.meta.tasks import make_member_evaluator

    objective = objectives.make(config.objective, **config.objective_kwargs_dict())
    env_specs = [envs.make(name) for name in config.tasks.envs]
    init_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[0]
    per_env = [plugins.build(config.curriculum, config.shaping, spec, config.ppo.gamma, init_key) for spec in env_specs]
    plugins.check_shared_params(per_env, list(config.tasks.envs))
    if config.outer != "es":
        return Built(objective, env_specs, per_env, None, None)
    mesh = population_mesh(config.es.population_size)
    evaluate_member = make_member_evaluator(config, objective, env_specs, config.tasks.seeds_per_member, per_env)
    return Built(objective, env_specs, per_env, evaluate_member, mesh)


def make_outer_loop(config: MetaTrainConfig, built: Built, meta_params, references):
    """The OuterLoop that ``config.outer`` names."""
    objective, env_specs, evaluate_member, mesh = built.objective, built.env_specs, built.evaluate_member, built.mesh
    if config.outer == "metagrad":
        from metarl.meta.metagrad import make_metagrad_outer_loop

        return make_metagrad_outer_loop(config, objective, env_specs, built.plugins)
    from metarl.meta.outer import make_es_outer_loop

    return make_es_outer_loop(config, evaluate_member, meta_params, references, mesh)


def progress_line(config: MetaTrainConfig, generation: int, row: dict[str, float], last_eval, seconds: float) -> str:
    evaluated = f" · mean-params {last_eval:.3f}" if last_eval is not None else ""
    if config.outer == "metagrad":
        bad = " · non-finite meta-gradient (skipped)" if row["nonfinite_members"] else ""
        return (f"step {generation:>4}/{config.num_generations} · meta-loss {row['meta_loss']:.3f} "
                f"· agent return {row['agent_return_mean']:.2f}{evaluated} · {seconds:.2f} s/step{bad}")
    nonfinite = f" · {int(row['nonfinite_members'])} non-finite" if row["nonfinite_members"] else ""
    return (f"gen {generation:>4}/{config.num_generations} · fitness mean {row['fitness_mean']:.3f} "
            f"max {row['fitness_max']:.3f}{evaluated} · {seconds:.2f} s/gen{nonfinite}")


def make_mean_evaluator(config: MetaTrainConfig, objective, env_specs, per_env_plugins):
    """Fitness of one set of meta-parameters over fixed lifetimes x ``eval_seeds`` seeds (for progress)."""
    import jax
    import jax.numpy as jnp

    from metarl.meta.tasks import make_member_evaluator

    lifetimes = sorted(set(config.tasks.lifetimes_for(config.ppo)))
    if config.tasks.lifetime_sampling == "log_uniform" and len(lifetimes) >= 2:
        low, high = lifetimes[0], lifetimes[-1]
        lifetimes = sorted({low, int(round((low * high) ** 0.5)), high})
    evaluate = make_member_evaluator(config, objective, env_specs, config.eval_seeds, per_env_plugins)
    lifetimes_array = jnp.asarray(lifetimes, jnp.int32)

    @jax.jit
    def evaluate_mean(meta_params, key, references):
        fitness, _ = jax.vmap(evaluate, in_axes=(None, 0, None, None))(meta_params, lifetimes_array, key, references)
        return jnp.mean(fitness)

    return evaluate_mean


def run_meta_train(config: MetaTrainConfig, command: list[str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    config.validate()
    built = build(config)  # refuses a bad mesh or bad plug-in arguments before writing anything
    objective, env_specs = built.objective, built.env_specs
    run_dir = _prepare_run_dir(config)

    import jax
    import jax.numpy as jnp
    import numpy as np

    from metarl import objectives, plugins
    from metarl.io.checkpoint import Checkpoints
    from metarl.io.results import write_config, write_metrics
    from metarl.meta.tasks import References, as_dict, measure_references

    write_config(run_dir, to_dict(config), command, kind="meta-train", identity=config.identity())
    base_key = jax.random.PRNGKey(config.seed)
    init_key, reference_key, run_key, eval_key = jax.random.split(base_key, 4)
    env_names = list(config.tasks.envs)

    reference_path = run_dir / "references.json"
    if config.tasks.normalize:
        if reference_path.is_file():
            stored = json.loads(reference_path.read_text())
            references = References(
                jnp.asarray([stored[n]["initial"] for n in env_names]), jnp.asarray([stored[n]["ppo"] for n in env_names])
            )
        else:
            if verbose:
                print(f"measuring PPO reference scores on {', '.join(env_names)} ...", flush=True)
            references = measure_references(config, env_specs, objectives.make("ppo"), reference_key)
            reference_path.write_text(json.dumps(as_dict(references, env_names), indent=2) + "\n")
    else:
        references = References(jnp.zeros(len(env_names)), jnp.ones(len(env_names)))

    meta_params = plugins.joint(objective.init(init_key), built.plugins[0])
    loop = make_outer_loop(config, built, meta_params, references)
    state = loop.init(init_key, meta_params)
    step = jax.jit(lambda state: loop.step(state, jax.random.fold_in(run_key, state.generation)))
    evaluate_mean = make_mean_evaluator(config, objective, env_specs, built.plugins) if config.eval_seeds else None

    checkpoints = Checkpoints(run_dir / "checkpoints", config.identity(), keep=config.keep_checkpoints)
    restored = checkpoints.restore_latest(state)
    generation = 0
    if restored is not None:
        generation, state, _ = restored
        state = jax.tree.map(jnp.asarray, state)
        if verbose:
            print(f"resuming {run_dir} from generation {generation}", flush=True)
    _truncate_metrics(run_dir, generation)

    learned_path = run_dir / "learned" / f"{config.objective}.msgpack"
    start_generation = generation
    started = time.perf_counter()
    last_eval = None
    while generation < config.num_generations:
        chunk = min(config.chunk_size, config.num_generations - generation)
        chunk_start = time.perf_counter()
        chunk_metrics = []
        for _ in range(chunk):
            state, metrics = step(state)
            chunk_metrics.append(metrics)
        chunk_metrics = jax.device_get(chunk_metrics)
        seconds = (time.perf_counter() - chunk_start) / chunk
        generation += chunk
        mean_params = loop.params(state)
        if evaluate_mean is not None:
            last_eval = float(evaluate_mean(mean_params, jax.random.fold_in(eval_key, generation), references))
        rows = []
        for offset, metrics in enumerate(chunk_metrics):
            row = {"generation": generation - chunk + offset}
            row.update({k: float(v) for k, v in metrics.items() if k != "env_scores"})
            row.update({f"score/{n}": float(s) for n, s in zip(env_names, np.atleast_1d(metrics["env_scores"]), strict=True)})
            row["seconds_per_generation"] = seconds
            if offset == chunk - 1 and last_eval is not None:
                row["mean_params_fitness"] = last_eval
            rows.append(row)
        write_metrics(run_dir, rows, append=True)
        streak = int(state.nonfinite_streak)
        if streak >= config.es.max_nonfinite_generations:
            what = "the meta-gradient was" if config.outer == "metagrad" else "every member's fitness was"
            raise NonFiniteFitnessError(
                f"{what} non-finite for {streak} generations in a row (generation {generation}); "
                f"stopping. The last good checkpoint in {checkpoints.directory} is intact."
            )
        checkpoints.save(generation, state, {"generation": generation})
        info = {"generation": generation, "mean_params_fitness": last_eval, "run": str(run_dir)}
        objectives.save(learned_path, config.objective, config.objective_kwargs_dict(), mean_params.objective, info)
        parts = (("curriculum", config.curriculum, mean_params.curriculum), ("shaping", config.shaping, mean_params.shaping))
        for family, part, params in parts:
            if jax.tree.leaves(params):
                plugins.save(run_dir / "learned" / f"{family}_{part.name}.msgpack", family, part, params, info)
        if verbose:
            print(progress_line(config, generation, rows[-1], last_eval, seconds), flush=True)
    checkpoints.close()
    total = time.perf_counter() - started
    summary = {"run_dir": str(run_dir), "generations": generation, "ran_generations": generation - start_generation,
               "seconds": total, "learned_file": str(learned_path), "mean_params_fitness": last_eval,
               "final_params": jax.tree.map(np.asarray, loop.params(state))}
    if verbose:
        print(f"wrote {run_dir}/config.json, metrics.jsonl, checkpoints/, {learned_path.relative_to(run_dir)}")
    return summary
