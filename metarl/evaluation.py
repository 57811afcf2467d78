"""`metarl eval`: a grid of objectives x envs x lifetimes N x seeds, written to eval.npz and summary.md.

Objectives are registry names (hand-designed: ppo, dpo; or learned ones at their random init) or learned
files (.msgpack). One compiled function per (objective, env) trains every lifetime and seed at once: the
scan runs to the longest N and shorter lifetimes are masked (see ``Task.num_updates``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metarl.config import FitnessScore, PPOConfig, _positive_int, _require, to_dict


@dataclass(frozen=True)
class EvalConfig:
    """An evaluation grid."""

    objectives: tuple[str, ...] = ("ppo", "dpo")
    """Registry names or learned-objective files (.msgpack)."""
    envs: tuple[str, ...] = ("CartPole-v1",)
    """Environments."""
    lifetimes: tuple[int, ...] = (16, 32, 64, 128)
    """Lifetimes N in agent updates; any positive values (the scan runs to the longest, shorter ones are masked)."""
    num_seeds: int = 8
    """Seeds per cell."""
    score: FitnessScore = "final_return"
    """What is recorded per run (as in meta-training)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Inner-agent settings; total_timesteps is replaced by the longest lifetime."""
    seed: int = 0
    out: str = "results/eval"
    name: str = "eval"
    force: bool = False

    def validate(self) -> EvalConfig:
        from metarl import envs, objectives

        _require(len(self.objectives) > 0, "objectives", "must name at least one objective")
        for name in self.objectives:
            if name.endswith(".msgpack"):
                _require(Path(name).is_file(), "objectives", f"learned file {name!r} does not exist")
            else:
                objectives.check(name)
        for env in self.envs:
            envs.check(env)
        _require(len(self.lifetimes) > 0, "lifetimes", "must list at least one lifetime")
        for n in self.lifetimes:
            _positive_int(n, "lifetimes")
        _positive_int(self.num_seeds, "num_seeds")
        self.inner_config().validate()
        return self

    def inner_config(self) -> PPOConfig:
        return dataclasses.replace(self.ppo, total_timesteps=max(self.lifetimes) * self.ppo.batch_size)


def _load(name: str, seed: int):
    import jax

    from metarl import objectives

    if name.endswith(".msgpack"):
        objective, params, _ = objectives.load(name)
        label = Path(name).stem
        return label, objective, params
    objective = objectives.make(name)
    return name, objective, objective.init(jax.random.PRNGKey(seed))


def run_eval(config: EvalConfig, command: list[str] | None = None, verbose: bool = True) -> Path:
    config.validate()
    from metarl.io.results import prepare_run_dir, write_config

    run_dir = prepare_run_dir(config.out, config.name, force=config.force)
    write_config(run_dir, to_dict(config), command, kind="eval")

    import jax
    import jax.numpy as jnp

    from metarl import envs
    from metarl.inner import level_task, make_train
    from metarl.meta.fitness import score
    from metarl.meta.tasks import diverged

    inner = config.inner_config()
    lifetimes = jnp.asarray(config.lifetimes, jnp.int32)
    labels, scores = [], np.zeros((len(config.objectives), len(config.envs), len(config.lifetimes), config.num_seeds))
    for o, name in enumerate(config.objectives):
        label, objective, meta_params = _load(name, config.seed)
        if label in labels or any(Path(other).stem == label for other in config.objectives if other != name):
            label = f"{label} ({Path(name).parent.parent.name})"  # two learned files of one objective: name the run
        labels.append(label)
        for e, env_name in enumerate(config.envs):
            spec = envs.make(env_name)
            train = make_train(inner, spec, objective)

            def one(num_updates, key, train=train, spec=spec):
                output = train(meta_params, level_task(spec, num_updates, key), key)
                return jnp.where(diverged(output), jnp.nan, score(output, config.score))

            keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), e), config.num_seeds)
            grid = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))(lifetimes, keys)
            scores[o, e] = np.asarray(grid)
            if verbose:
                means = ", ".join(f"N={n}: {v:.1f}" for n, v in zip(config.lifetimes, np.nanmean(scores[o, e], -1), strict=True))
                print(f"{label:>12} · {env_name}: {means}", flush=True)
    np.savez(run_dir / "eval.npz", scores=scores, objectives=np.array(labels), envs=np.array(config.envs),
             lifetimes=np.array(config.lifetimes), batch_size=inner.batch_size)
    (run_dir / "summary.md").write_text(summary_table(run_dir / "eval.npz"))
    if verbose:
        print(f"wrote {run_dir}/eval.npz, summary.md")
    return run_dir


def load_eval(path: str | Path) -> dict[str, Any]:
    data = np.load(path)
    return {k: data[k] for k in data.files}


def summary_table(path: str | Path) -> str:
    """Markdown: per env and lifetime, each objective's mean, IQM and 95 % bootstrap CI of the IQM over seeds."""
    from metarl.stats import bootstrap_ci, iqm

    data = load_eval(path)
    lines = ["| env | N | objective | mean | IQM | 95% CI (IQM) |", "| --- | --- | --- | --- | --- | --- |"]
    for e, env in enumerate(data["envs"]):
        for li, n in enumerate(data["lifetimes"]):
            for o, objective in enumerate(data["objectives"]):
                values = data["scores"][o, e, li]
                values = values[np.isfinite(values)]
                if values.size == 0:
                    lines.append(f"| {env} | {n} | {objective} | diverged | | |")
                    continue
                low, high = bootstrap_ci(values)
                lines.append(f"| {env} | {n} | {objective} | {values.mean():.2f} | {iqm(values):.2f} | [{low:.2f}, {high:.2f}] |")
    return "\n".join(lines) + "\n"
