"""`metarl meta-train`: validate, build, then run the outer loop in chunks of jitted generations.

Between chunks: metrics rows, a progress line, an evaluation of the current mean meta-parameters, a
checkpoint and the exported learned file. Rerunning the same command resumes from the newest good
checkpoint and ends bit-identical to an uninterrupted run (the generation key is derived from the run
seed and the generation number, and the state holds everything else).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from metarl import components, envs, objectives
from metarl.app import verdict
from metarl.app.progress import Progress
from metarl.app.verdict import Store, evaluation_lifetimes, references_from_store
from metarl.checks import validate
from metarl.config import MetaTrainConfig, store_folder, to_dict
from metarl.distributed import barrier
from metarl.errors import ConfigError
from metarl.io.checkpoint import Checkpoints, check_same_config
from metarl.io.lock import hold
from metarl.io.results import clear_run_dir, run_files, write_config, write_metrics, writing
from metarl.io.tracking import open_tracker
from metarl.meta import registry as loops
from metarl.meta.base import OuterLoop, Problem
from metarl.meta.tasks import References, as_dict, make_member_evaluator


class NonFiniteFitnessError(RuntimeError):
    """Every member's fitness was non-finite for several generations in a row."""


def _prepare_run_dir(config: MetaTrainConfig):
    """Fresh folder, or the folder of the same run to resume; refuse one written by another config.
    Returns ``(run_dir, lock)``: the writing process locks the folder first (:mod:`metarl.io.lock`), so a
    second process on it is refused before it reads or writes anything; the others hold no lock (``None``)."""
    run_dir = Path(config.out) / config.run_name
    lock = hold(run_dir) if is_writer() else None
    try:
        _check_run_dir(config, run_dir)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, lock


def _check_run_dir(config: MetaTrainConfig, run_dir: Path) -> None:
    stored_path = run_dir / "config.json"
    if run_files(run_dir):
        if config.force:
            if is_writer():
                clear_run_dir(run_dir)
        elif not stored_path.is_file():
            raise ConfigError(f"out: {str(run_dir)!r} holds files that are not a metarl run; pass --force or choose --name")
        else:
            stored = json.loads(stored_path.read_text())
            if stored.get("kind") != "meta-train":
                raise ConfigError(f"out: {str(run_dir)!r} holds a {stored.get('kind', 'train')!r} run; pass --force or choose --name")
            check_same_config(stored["identity"], config.identity(), f"run folder {run_dir}")


def _truncate_metrics(run_dir: Path, generation: int) -> None:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["generation"] < generation]
    path.write_text("".join(row + "\n" for row in rows))


class Built(NamedTuple):
    """A run's problem and its outer loop, built after validation and before anything is written."""

    problem: Problem
    loop: OuterLoop

    @property
    def objective(self):
        return self.problem.objective

    @property
    def env_specs(self) -> list:
        return self.problem.env_specs

    @property
    def components(self) -> list:
        return self.problem.components


def build_problem(config: MetaTrainConfig) -> Problem:
    """Objective, envs, and per env the curriculum and shaping with their initial η; η0 joins their parts."""
    kwargs = config.objective_kwargs_dict()
    objective = objectives.make(config.objective, **kwargs)
    env_specs = [envs.make(name) for name in config.tasks.envs]
    init_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)[0]
    per_env = [components.build(config.curriculum, config.shaping, spec, config.ppo.gamma, init_key) for spec in env_specs]
    components.check_shared_params(per_env, list(config.tasks.envs))
    start = objective.init(init_key) if config.init_from is None else objectives.warm_start(config.init_from, config.objective, kwargs)
    return Problem(objective, env_specs, per_env, components.joint(start, per_env[0]))


def build(config: MetaTrainConfig) -> Built:
    """Everything that needs jax: the problem and the outer loop ``config.outer`` names (metarl.meta.registry),
    which refuses what it cannot run (a population the devices do not divide, a flat start for meta-gradients)."""
    problem = build_problem(config)
    return Built(problem, loops.make(config, problem))


def unused_updates_note(config: MetaTrainConfig) -> str | None:
    """A note when the inner scan runs past every lifetime the run draws (``ppo.num_updates`` > the longest): the updates
    past a member's N are masked, not skipped: they cost time, and change a score only in the last bit (the length of
    its reduction); None when there are none."""
    longest, scan = max(config.tasks.lifetimes_for(config.ppo)), config.ppo.num_updates
    if longest >= scan or config.tasks.lifetime_strata > 1:  # strata scan to their own longest lifetimes already
        return None
    return (f"note: every member scans ppo.num_updates = {scan} updates but no lifetime exceeds {longest}: about "
            f"{scan / longest:.1f}x the work used; --ppo.total-timesteps {longest * config.ppo.batch_size} scans only those")


def progress_line(config: MetaTrainConfig, loop: OuterLoop, generation: int, row: dict[str, float], last_eval,
                  seconds: float | None) -> str:
    """One chunk's line; ``seconds`` per generation is None for a chunk that held only the compiling first one."""
    summary, warning = loop.describe(row)
    evaluated = f" · mean-params {last_eval:.3f}" if last_eval is not None else ""
    pace = f"— s/{loop.unit} (compiling)" if seconds is None else f"{seconds:.2f} s/{loop.unit}"
    return (f"{loop.unit} {generation:>4}/{config.num_generations} · {summary}{evaluated} · {pace}"
            + (f" · {warning}" if warning else ""))


def make_mean_evaluator(config: MetaTrainConfig, objective, env_specs, per_env_plugins):
    """Fitness of one set of meta-parameters over fixed lifetimes x ``eval_seeds`` seeds (for progress)."""
    lifetimes = evaluation_lifetimes(config)
    evaluate = make_member_evaluator(config, objective, env_specs, config.eval_seeds, per_env_plugins)
    lifetimes_array = jnp.asarray(lifetimes, jnp.int32)

    @jax.jit
    def evaluate_mean(meta_params, key, references):
        fitness, _ = jax.vmap(evaluate, in_axes=(None, 0, None, None))(meta_params, lifetimes_array, key, references)
        return jnp.mean(fitness)

    return evaluate_mean


def strong_types(tree):
    """The same arrays without weak types. A state built from Python scalars is weakly typed, the state a
    step returns is not: without this the jitted step compiles a second time at the second generation."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, jax.numpy.result_type(x)), tree)


def place(state, mesh):
    """The outer-loop state where the jitted step leaves it (replicated over the population mesh, or on the
    first local device), so the step's first call compiles the same program as every later one."""
    state = strong_types(state)
    if mesh is None:
        return jax.device_put(state, jax.local_devices()[0])
    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(state, sharding)
    # Several processes: every process holds the same state (same seed, same checkpoint). device_put would
    # compare them across processes and call NaN leaves (evosax's unset best fitness) different.

    def replicated(leaf):
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(replicated, state)


def is_writer() -> bool:
    """Process 0 writes logs and results; with one process that is this one (see metarl.distributed)."""
    return jax.process_index() == 0


class _Run:
    """One meta-training run between chunks: its folder, references, loop, state and checkpoints."""

    def __init__(self, config: MetaTrainConfig, built: Built, command: list[str] | None, verbose: bool):
        self.config, self.built, self.verbose = config, built, verbose and is_writer()
        self.run_dir, self.lock = _prepare_run_dir(config)
        try:
            self._start(config, built, command)
        except BaseException:
            self.release()
            raise

    def _start(self, config: MetaTrainConfig, built: Built, command: list[str] | None) -> None:
        """Config, references, outer loop and state (restored from the newest good checkpoint, if any)."""
        if is_writer():
            write_config(self.run_dir, to_dict(config), command, kind="meta-train", identity=config.identity())
        if self.verbose and (note := unused_updates_note(config)):
            print(note, flush=True)
        reference_path = self.run_dir / "references.json"
        stored_references = reference_path.is_file()  # looked at before process 0 may write it
        barrier("metarl-run-dir")  # the other processes read the folder process 0 prepared
        init_key, _, self.run_key, self.eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
        self.store = Store(store_folder(config.reference_store, config.out))
        self.env_names = list(config.tasks.envs)
        if not config.tasks.normalize:
            self.references = References(jnp.zeros(len(self.env_names)), jnp.ones(len(self.env_names)))
        elif stored_references:
            stored = json.loads(reference_path.read_text())
            self.references = References(jnp.asarray([stored[n]["initial"] for n in self.env_names]),
                                         jnp.asarray([stored[n]["ppo"] for n in self.env_names]))
        else:
            self.references = references_from_store(config, built.env_specs, self.store, command,
                                                    progress=(lambda line: print(line, flush=True)) if self.verbose else None)
            if is_writer():
                reference_path.write_text(json.dumps(as_dict(self.references, self.env_names), indent=2) + "\n")
        self.meta_params = built.problem.meta_params
        self.loop = built.loop
        self.state = self.loop.init(init_key, self.meta_params)
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", config.identity(), keep=config.keep_checkpoints)
        restored = self.checkpoints.restore_latest(self.state)
        self.generation = self.start_generation = 0
        if restored is not None:
            self.generation, state, _ = restored
            self.state = state
            if self.verbose:
                print(f"resuming {self.run_dir} from generation {self.generation}", flush=True)
        self.state = place(self.state, self.loop.mesh)
        if is_writer():
            _truncate_metrics(self.run_dir, self.generation)
        self.start_generation = self.generation
        self.learned_path = self.run_dir / "learned" / f"{config.objective}.msgpack"
        self.last_eval = None
        self.label = ""  # runs stepped together prefix their progress lines with their folder name

        self.tracker = open_tracker(config.track if is_writer() else "none", self.run_dir, to_dict(config), self.run_dir.name,
                                    group=Path(config.out).name)

    def end_chunk(self, chunk_metrics: list[dict], seconds: float, evaluate_mean) -> None:
        """After ``len(chunk_metrics)`` generations: metrics rows, the non-finite check, checkpoint, learned files."""
        config, chunk = self.config, len(chunk_metrics)
        self.generation += chunk
        mean_params = self.loop.params(self.state)
        if evaluate_mean is not None:
            self.last_eval = float(evaluate_mean(mean_params, jax.random.fold_in(self.eval_key, self.generation), self.references))
        rows = []
        for offset, metrics in enumerate(chunk_metrics):
            row = {"generation": self.generation - chunk + offset}
            row.update({k: float(v) for k, v in metrics.items() if k != "env_scores"})
            if "env_scores" in metrics:
                row.update({f"score/{n}": float(s) for n, s in zip(self.env_names, np.atleast_1d(metrics["env_scores"]), strict=True)})
            row["seconds_per_generation"] = seconds if seconds is not None else float("nan")
            if offset == chunk - 1 and self.last_eval is not None:
                row["mean_params_fitness"] = self.last_eval
            rows.append(row)
        # A full disk here is one line naming the folder: the rows, checkpoint and learned files of earlier chunks are
        # intact, and the same command resumes from the last checkpoint (it truncates metrics.jsonl to it).
        steps = self.checkpoints.steps()
        intact = (f"the checkpoint of generation {steps[-1]} is intact" if steps else "no checkpoint was written yet")
        with writing(self.run_dir, intact):
            if is_writer():
                write_metrics(self.run_dir, rows, append=True)
                for row in rows:
                    self.tracker.log(row["generation"], row)
        streak = int(self.loop.status(self.state).nonfinite_streak)
        if streak >= self.loop.max_nonfinite:
            raise NonFiniteFitnessError(
                f"{self.loop.nonfinite_what} non-finite for {streak} generations in a row (generation {self.generation}); "
                f"stopping. The last good checkpoint in {self.checkpoints.directory} is intact."
            )
        with writing(self.run_dir, intact):
            self.checkpoints.save(self.generation, self.state, {"generation": self.generation})
            if is_writer():
                info = {"generation": self.generation, "mean_params_fitness": self.last_eval, "run": str(self.run_dir)}
                objectives.save(self.learned_path, config.objective, config.objective_kwargs_dict(), mean_params.objective, info)
                # Every chunk's mean, kept: how good was the discovery at generation g (on seeds of one's choosing)?
                objectives.save(self.learned_path.parent / "history" / f"{self.learned_path.stem}_g{self.generation:04d}.msgpack",
                                config.objective, config.objective_kwargs_dict(), mean_params.objective, info)
                parts = (("curriculum", config.curriculum, mean_params.curriculum), ("shaping", config.shaping, mean_params.shaping))
                for family, part, params in parts:
                    if jax.tree.leaves(params):
                        components.save(self.run_dir / "learned" / f"{family}_{part.name}.msgpack", family, part, params, info)
        if self.verbose:
            self.progress.chunk(self.label + progress_line(config, self.loop, self.generation, rows[-1], self.last_eval, seconds))

    def verdict(self) -> dict[str, Any]:
        """The held-out verdict of the final mean meta-parameters (metarl.app.verdict); a run that already has one
        for this generation (a rerun of a finished command) keeps it."""
        path = self.run_dir / "summary.json"
        if path.is_file():
            stored = json.loads(path.read_text())
            if stored.get("generations") == self.generation and "verdict" in stored and self._verdict_matches(stored["verdict"]):
                if self.verbose:
                    print(verdict.describe(stored["verdict"], verdict.candidate_label(to_dict(self.config))), flush=True)
                return stored["verdict"]
        started = time.perf_counter()
        if self.verbose:
            verdict_config = self.config.verdict
            against = ["PPO"] + [label for label, _ in verdict.family_members(self.config).values()]
            against += ["tuned PPO"] if verdict_config.tuned else []
            print(f"verdict: the discovery against {', '.join(against)} on {verdict_config.num_seeds} {verdict_config.stream} seeds ...",
                  flush=True)

        # Host copies: a loop's state may be committed to one device (meta-gradients), and the verdict shards its
        # seeds over every device, which jax refuses for arguments committed to one of them.
        meta_params = jax.tree.map(np.asarray, self.loop.params(self.state))
        result = verdict.run_verdict(self.config, self.built.env_specs, self.built.objective, self.built.components,
                                     meta_params, self.references, self.store,
                                     progress=(lambda line: print(line, flush=True)) if self.verbose else None)
        if self.config.verdict.transfer_envs:
            result["transfer"] = {}
            for env in self.config.verdict.transfer_envs:
                if self.verbose:
                    print(f"verdict on {env}, never seen in meta-training ...", flush=True)
                result["transfer"][env] = verdict.transfer_verdict(
                    self.config, env, self.built.objective, meta_params, self.store,
                    progress=(lambda line: print(line, flush=True)) if self.verbose else None)
        result["seconds"] = time.perf_counter() - started
        if self.verbose:
            print(verdict.describe(result, verdict.candidate_label(to_dict(self.config))), flush=True)
        return result

    def _verdict_matches(self, stored: dict[str, Any]) -> bool:
        """A stored verdict serves a rerun only if it was judged as this config asks (stream, seeds, transfer envs):
        rerunning a finished run with ``--verdict.stream test`` judges it again instead of reprinting validation."""
        return verdict.judged_as_asked(stored, self.config.verdict)

    def _earlier_verdicts(self, current: dict[str, Any]) -> list[dict[str, Any]]:
        """The verdicts this run stored before ``current``, oldest first: a run judged on the validation stream (a
        design choice) and then again on the test stream (``--verdict.stream test``, nothing trained again) keeps
        both, and `metarl verdict` recomputes each from its own scores."""
        path = self.run_dir / "summary.json"
        stored = json.loads(path.read_text()) if path.is_file() else {}
        earlier = list(stored.get("earlier_verdicts", []))
        if "verdict" in stored and stored["verdict"] != current:
            earlier.append(stored["verdict"])
        return earlier

    def finish(self, seconds: float) -> dict[str, Any]:
        self.checkpoints.close()
        self.tracker.close()
        try:
            return self._summarize(seconds)
        finally:
            self.release()

    def release(self) -> None:
        """Free the run folder for other processes."""
        if self.lock is not None:
            self.lock.release()

    def _summarize(self, seconds: float) -> dict[str, Any]:
        summary = {"run_dir": str(self.run_dir), "generations": self.generation,
                   "ran_generations": self.generation - self.start_generation, "seconds": seconds,
                   "learned_file": str(self.learned_path), "mean_params_fitness": self.last_eval}
        complete = self.generation >= self.config.num_generations
        if is_writer() and complete and self.config.verdict.num_seeds:
            summary["verdict"] = self.verdict()
            earlier = self._earlier_verdicts(summary["verdict"])
            if earlier:
                summary["earlier_verdicts"] = earlier
        if is_writer() and complete:
            (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if self.verbose:
            learned = [self.learned_path] + sorted(p for p in self.learned_path.parent.glob("*.msgpack") if p != self.learned_path)
            print(f"wrote {self.run_dir}/config.json, metrics.jsonl, checkpoints/, "
                  + ", ".join(str(p.relative_to(self.run_dir)) for p in learned))
        return {**summary, "final_params": jax.tree.map(np.asarray, self.loop.params(self.state))}


def _drive(runs: list[_Run], step, states, evaluate_means: list, select) -> list[dict[str, Any]]:
    """Chunks of generations until the runs end: ``step(states) -> (states, metrics)`` jitted, one host sync
    per chunk (per generation for a live terminal bar), then each run's metrics, checkpoint and learned files
    (``select(tree, i)``: run i's part). The first call compiles the step: it is timed on its own, reported on
    its own line and left out of the seconds per generation."""
    config = runs[0].config
    label = runs[0].label if len(runs) == 1 else f"{len(runs)} runs: "
    progress = Progress(config.num_generations, live=None if runs[0].verbose else False, label=label, unit=runs[0].loop.unit)
    for run in runs:
        run.progress = progress
    started = time.perf_counter()
    compiled = False
    while runs[0].generation < config.num_generations:
        chunk = min(config.chunk_size, config.num_generations - runs[0].generation)
        chunk_start, first_seconds = time.perf_counter(), 0.0
        chunk_metrics = []
        for offset in range(chunk):
            states, metrics = step(states)
            chunk_metrics.append(metrics)
            if not compiled:
                jax.block_until_ready(metrics)
                first_seconds = time.perf_counter() - chunk_start
                compiled = True
                if runs[0].verbose:
                    progress.compiled(first_seconds)
            elif progress.live:
                timed = offset + 1 - (first_seconds > 0)
                pace = (time.perf_counter() - chunk_start - first_seconds) / max(timed, 1)
                summary, _ = runs[0].loop.describe(jax.device_get(select(metrics, 0)))
                progress.generation(runs[0].generation + offset + 1, pace, summary, runs[0].last_eval)
        chunk_metrics = jax.device_get(chunk_metrics)
        timed = chunk - (first_seconds > 0)
        seconds = (time.perf_counter() - chunk_start - first_seconds) / timed if timed else None
        for i, run in enumerate(runs):
            run.state = select(states, i)
            run.end_chunk([select(m, i) for m in chunk_metrics], seconds, evaluate_means[i])
    progress.close()
    return [run.finish(time.perf_counter() - started) for run in runs]


def run_meta_train(config: MetaTrainConfig, command: list[str] | None = None, *, verbose: bool = True) -> dict[str, Any]:
    validate(config)
    built = build(config)  # refuses a bad mesh or bad plug-in arguments before writing anything

    run = _Run(config, built, command, verbose)
    loop = built.loop
    try:
        # The run's references and numbers are constants of the compiled step (runs stepped together trace them).
        step = jax.jit(lambda state: strong_types(loop.step(state, jax.random.fold_in(run.run_key, loop.status(state).generation),
                                                            run.references)))
        evaluate_mean = make_mean_evaluator(config, built.objective, built.env_specs, built.components) if config.eval_seeds else None
        return _drive([run], step, run.state, [evaluate_mean], lambda tree, i: tree)[0]
    finally:
        run.release()


def batch_group_key(config: MetaTrainConfig) -> str:
    """Configs with equal keys differ only in the run folder, the seed and the numbers their outer loop traces
    (``OuterConfig.batched_fields``): one vmapped step runs them all."""
    values = to_dict(config)
    for name in ("name", "force"):
        values.pop(name)
    for dotted in ("seed", *config.outer.batched_fields):
        *parents, last = dotted.split(".")
        table = values
        for part in parents:
            table = table[part]
        table.pop(last)
    return json.dumps(values, sort_keys=True)


def run_meta_train_batch(configs: list[MetaTrainConfig], commands: list[list[str] | None] | None = None, *,
                         verbose: bool = True) -> list[dict[str, Any]]:
    """Several runs that differ only in their seed and in the numbers their outer loop traces (ES: σ, the ES
    learning rate, the PPO learning rate and entropy coefficient), stepped together: one jitted call per
    generation, vmapped over the runs' states, keys, references and hyper-parameter pytrees
    (``OuterLoop.hparams``). Each run keeps its own folder, metrics, checkpoints and learned files, as if run
    alone (the same numbers as the per-run path: tests/test_sweep.py). Runs at different generations (an
    earlier interruption) fall back to one after another."""
    for config in configs:
        validate(config)
    fields = configs[0].outer.batched_fields
    if not fields or len({batch_group_key(c) for c in configs}) != 1:
        raise ConfigError(f"batch: only runs of one outer loop that differ in nothing but the seed and the numbers it traces "
                          f"({', '.join(fields) or 'none for ' + configs[0].outer.name}) can be stepped together")
    commands = commands or [None] * len(configs)
    built = build(configs[0])
    runs = [_Run(c, build(c) if i else built, cmd, verbose) for i, (c, cmd) in enumerate(zip(configs, commands, strict=True))]
    if len({run.generation for run in runs}) != 1:
        for run in runs:
            run.checkpoints.close()
            run.tracker.close()
            run.release()
        return [run_meta_train(c, cmd, verbose=verbose) for c, cmd in zip(configs, commands, strict=True)]
    for run in runs:
        run.label = f"{run.run_dir.name}: "
    loop = built.loop

    def one(state, run_key, references, hparams):
        key = jax.random.fold_in(run_key, loop.status(state).generation)  # as the single-run step derives it
        return strong_types(loop.step(state, key, references, hparams))

    stack = lambda trees: jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
    run_keys, references = jnp.stack([r.run_key for r in runs]), stack([r.references for r in runs])
    hparams = stack([r.loop.hparams for r in runs])
    batched = jax.jit(jax.vmap(one))
    step = lambda states: batched(states, run_keys, references, hparams)
    evaluators: dict[str, Any] = {}  # one mean evaluator per distinct inner config (seeds share one)
    for run in runs:
        key = json.dumps(to_dict(run.config.ppo), sort_keys=True)
        if run.config.eval_seeds and key not in evaluators:
            evaluators[key] = make_mean_evaluator(run.config, built.objective, built.env_specs, built.components)
    evaluate_means = [evaluators.get(json.dumps(to_dict(run.config.ppo), sort_keys=True)) for run in runs]
    states = place(stack([r.state for r in runs]), loop.mesh)
    try:
        return _drive(runs, step, states, evaluate_means, lambda tree, i: jax.tree.map(lambda x: x[i], tree))
    finally:
        for run in runs:
            run.release()
