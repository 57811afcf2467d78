"""`metarl eval`: a grid of variants x envs x lifetimes N x seeds, written to eval.npz and summary.md.

A variant is an objective with a curriculum and a shaping: every combination of ``objectives`` x
``curricula`` x ``shapings``. Each is a registry name (hand-designed, or learned at its initial
parameters) or a learned file (.msgpack). One compiled function per (variant, env, lifetime) trains every
seed at once, each lifetime N in its own scan of N updates (in one scan masked to the
longest, every lifetime would cost the longest). Besides the scores, eval.npz keeps the learning curves at the longest lifetime
(``curves``: env return per update) and, for curricula, the share of each difficulty category sampled
per update (``category_fraction``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import tyro

from metarl import components, envs, objectives
from metarl.app.verdict import Store, compared_value, over_devices, paired_comparison, stream_keys, stream_seed, tuned_ppo_alone, with_holm
from metarl.checks import check_curriculum, check_shaping
from metarl.config import (
    FITNESS_SCORES,
    STATISTIC_NAMES,
    CurriculumConfig,
    FitnessScore,
    PPOConfig,
    ShapingConfig,
    Statistic,
    TrainConfig,
    TuningConfig,
    _positive_int,
    _require,
    store_folder,
    to_dict,
)
from metarl.errors import ConfigError
from metarl.inner import level_task, make_train
from metarl.io.results import prepare_run_dir, write_config
from metarl.meta.fitness import score
from metarl.meta.tasks import diverged
from metarl.presets import expand_preset
from metarl.stats import STATISTIC_LABELS, STATISTICS, bootstrap_ci, iqm

BEST_HAND_DESIGNED = "best_hand_designed"


def _heuristic_of(shaping_entry: str, heuristic: str) -> str:
    """A named shaping uses the eval's heuristic; a learned file carries its own."""
    return "none" if shaping_entry.endswith(".msgpack") else heuristic


def _plugin_fields(entry: str) -> dict[str, str]:
    """A curricula/shapings entry as config fields: a learned file, else a registry name."""
    return {"file": entry} if entry.endswith(".msgpack") else {"name": entry}


@dataclass(frozen=True)
class EvalConfig:
    """An evaluation grid."""

    objectives: tuple[str, ...] = ("ppo", "dpo")
    """Registry names or learned-objective files (.msgpack)."""
    objective_kwargs: str = "{}"
    """JSON object of factory arguments for the objectives given by name, e.g. '{"clip_eps": 0.3}' (a tuned PPO)."""
    curricula: tuple[str, ...] = ("none",)
    """Curriculum names (none, uniform, sec, ...) or learned-curriculum files; envs with a level space."""
    shapings: tuple[str, ...] = ("none",)
    """Shaping names (none, naive, potential, ...) or learned-shaping files; names use ``heuristic``."""
    heuristic: str = "none"
    """The heuristic of the named shapings."""
    envs: tuple[str, ...] = ("CartPole-v1",)
    """Environments."""
    lifetimes: tuple[int, ...] = (16, 32, 64, 128)
    """Lifetimes N in agent updates; any positive values (each runs its own scan of N updates)."""
    num_seeds: int = 8
    """Seeds per cell."""
    score: FitnessScore = "final_return"
    """What is recorded per run (as in meta-training)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Inner-agent settings; total_timesteps is replaced by the longest lifetime."""
    verdict_against: str = ""
    """The baseline every other variant is compared against, on the ``heldout`` stream (required: validation or test),
    paired: an entry of ``objectives`` (e.g. ppo), a variant's label as summary.md prints it (e.g. 'ppo + naive'), or
    best_hand_designed (per env and N, the variant without a learned file that has the highest IQM on these seeds;
    each variant with a learned file is compared against it). verdict.json and summary.md get each comparison's
    IQMs, CIs, the CI of the paired difference, the probability of improvement, the verdict and its Holm-adjusted
    form per env and N."""
    heldout: Literal["none", "validation", "test"] = "none"
    """Train on a judging seed stream of metarl.app.verdict instead of seeds from ``seed``: validation (design choices:
    headroom, recipe, settings) or test (final verdicts only). Seeds meta-training never uses, the same in every eval,
    so scores of separate evals (e.g. a tuned baseline at its own settings) pair up."""
    equivalence_margin: float = 0.05
    """With verdict_against: 'equivalent' when the CI of the difference lies inside ± this fraction of the baseline's
    IQM (eval scores are raw returns, so the margin is relative), 'inconclusive' otherwise; 0: never 'equivalent'."""
    statistic: Statistic = "iqm"
    """With verdict_against: the aggregate over seeds that the verdict compares (and best_hand_designed ranks by): iqm,
    the field's default, or mean, for a success-like score (e.g. heldout_return on a maze, where a seed reaches the
    goal or does not) on which fewer than a quarter of the seeds succeed and the IQM reads 0 on both sides. Choose it
    on the validation stream, before the test verdict."""
    tuned_ppo: bool = False
    """Also evaluate tuned PPO (label 'tuned_ppo', a valid ``verdict_against``): per env and lifetime, PPO at the best
    cell of the ``tuning`` grid, picked on the selection stream, trained on this eval's ``heldout`` seeds (paired with
    every objective). The search and the scores are kept in ``reference_store``, where any later eval or meta-train
    verdict with the same inner config, env, lifetime and score reads them."""
    tuning: TuningConfig = field(default_factory=TuningConfig)
    reference_store: str = "auto"
    """Folder of stored baseline measurements (tuned PPO's search and scores); auto, a folder or '' as meta-train's
    (auto: results/references for an ``out`` inside results/, else OUT/references)."""
    seed: int = 0
    out: str = "results/eval"
    name: str = "eval"
    force: bool = False

    def validate(self) -> EvalConfig:
        _require(len(self.objectives) > 0, "objectives", "must name at least one objective")
        kwargs = TrainConfig(objective_kwargs=self.objective_kwargs).objective_kwargs_dict()
        for name in self.objectives:
            if name.endswith(".msgpack"):
                _require(Path(name).is_file(), "objectives", f"learned file {name!r} does not exist")
            else:
                objectives.check(name)
                try:
                    objectives.make(name, **kwargs)
                except TypeError as error:
                    raise ConfigError(f"objective_kwargs: {name!r} does not take {sorted(kwargs)} ({error})") from None
        for env in self.envs:
            envs.check(env)
        for curriculum in self.curricula:
            check_curriculum(CurriculumConfig(**_plugin_fields(curriculum)).validate(), self.envs)
        for shaping in self.shapings:
            check_shaping(ShapingConfig(**_plugin_fields(shaping), heuristic=_heuristic_of(shaping, self.heuristic)).validate(), self.envs)
        _require(self.score in FITNESS_SCORES, "score", f"must be one of {', '.join(FITNESS_SCORES)}; got {self.score!r}")
        _require(len(self.lifetimes) > 0, "lifetimes", "must list at least one lifetime")
        for n in self.lifetimes:
            _positive_int(n, "lifetimes")
        _positive_int(self.num_seeds, "num_seeds")
        _require(self.heldout in ("none", "validation", "test"), "heldout",
                 f"must be none, validation or test, got {self.heldout!r}")
        _require(math.isfinite(self.equivalence_margin) and self.equivalence_margin >= 0, "equivalence_margin",
                 f"must be a finite number >= 0, got {self.equivalence_margin!r}")
        _require(self.statistic in STATISTIC_NAMES, "statistic", f"must be one of {', '.join(STATISTIC_NAMES)}; got {self.statistic!r}")
        if self.tuned_ppo:
            _require(self.heldout in ("validation", "test"), "heldout",
                     "tuned PPO is trained on a judging seed stream: --heldout validation or --heldout test, "
                     f"got {self.heldout!r}")
            _require("tuned_ppo" not in self.objectives, "objectives", "'tuned_ppo' is the label of --tuned-ppo; drop it")
            _require(self.curricula == ("none",) and self.shapings == ("none",), "tuned_ppo",
                     "compares objectives: give no curricula and no shapings")
            self.tuning.validate()
        if self.verdict_against:
            _require(self.heldout in ("validation", "test"), "heldout",
                     "a verdict needs its seed stream named: --heldout validation (a design choice) or --heldout test "
                     f"(a final verdict), got {self.heldout!r}")
            allowed = (*self._entries(), *self.labels(), BEST_HAND_DESIGNED)
            _require(self.verdict_against in allowed, "verdict_against",
                     f"must be one of {', '.join(dict.fromkeys(allowed))}; got {self.verdict_against!r}")
            _require(len(self.labels()) >= 2 and self.num_seeds >= 2, "verdict_against",
                     "needs at least one other variant and num_seeds >= 2")
            if self.verdict_against == BEST_HAND_DESIGNED:
                hand = self.hand_designed()
                _require(any(hand) and not all(hand), "verdict_against",
                         f"{BEST_HAND_DESIGNED} needs a variant with a learned file and one without")
        self.inner_config().validate()
        return self

    def variants(self) -> list[tuple[str, str, str]]:
        """Every (objective, curriculum, shaping) combination, in the order eval.npz stores them."""
        return [(o, c, sh) for o in self.objectives for c in self.curricula for sh in self.shapings]

    def labels(self) -> tuple[str, ...]:
        """Each variant's label (:func:`variant_label`), then 'tuned_ppo' with ``tuned_ppo``."""
        labels = [variant_label(objective_label(o, self.objectives), c, sh) for o, c, sh in self.variants()]
        return tuple(labels) + (("tuned_ppo",) if self.tuned_ppo else ())

    def hand_designed(self) -> tuple[bool, ...]:
        """Per label: True where no part of the variant is a learned file (tuned PPO is hand-designed)."""
        return tuple(not any(p.endswith(".msgpack") for p in v) for v in self.variants()) + ((True,) if self.tuned_ppo else ())

    def _entries(self) -> tuple[str, ...]:
        """The objectives as given (a learned file by its path), where each is one variant (one curriculum and one
        shaping): the same order as :meth:`labels`."""
        return tuple(self.objectives) if len(self.curricula) == 1 and len(self.shapings) == 1 else ()

    def baseline(self) -> int | tuple[bool, ...]:
        """``verdict_against`` for :func:`verdict_table`: a label's index, or the hand-designed mask."""
        if self.verdict_against == BEST_HAND_DESIGNED:
            return self.hand_designed()
        if self.verdict_against in self.labels():
            return self.labels().index(self.verdict_against)
        return self._entries().index(self.verdict_against)  # a learned file's path: one variant per objective

    def inner_config(self) -> PPOConfig:
        return dataclasses.replace(self.ppo, total_timesteps=max(self.lifetimes) * self.ppo.batch_size)


def _load(name: str, seed: int, kwargs: dict[str, Any]):
    if name.endswith(".msgpack"):
        objective, params, _ = objectives.load(name)
        label = Path(name).stem
        return label, objective, params
    objective = objectives.make(name, **kwargs)
    return name, objective, objective.init(jax.random.PRNGKey(seed))


def objective_label(entry: str, entries) -> str:
    """A name, or a learned file's stem; when several learned files share a stem, with the run folder it came from
    (run/learned/<file>), and with the study folder above it when runs of several studies share a name."""
    if not entry.endswith(".msgpack"):
        return entry
    path = Path(entry)
    others = [Path(o) for o in entries if o != entry and o.endswith(".msgpack")]
    if not any(o.stem == path.stem for o in others):
        return path.stem
    run = path.parent.parent
    if any(o.stem == path.stem and o.parent.parent.name == run.name for o in others):
        return f"{path.stem} ({run.parent.name}/{run.name})"
    return f"{path.stem} ({run.name})"


def _plugin_label(entry: str) -> str:
    """A name, or a learned file's stem with the run folder it came from (run/learned/<file>)."""
    return f"{Path(entry).stem} ({Path(entry).parent.parent.name})" if entry.endswith(".msgpack") else entry


def variant_label(objective_label: str, curriculum: str, shaping: str) -> str:
    """The objective's label, with ``+curriculum`` and ``+shaping`` where they are not 'none'."""
    parts = [objective_label] + [_plugin_label(p) for p in (curriculum, shaping) if p != "none"]
    return " + ".join(parts)


def run_eval(config: EvalConfig, command: list[str] | None = None, verbose: bool = True) -> Path:
    config.validate()

    # every objective (name or learned file) is built before the run folder exists: a refused one leaves nothing
    kwargs = TrainConfig(objective_kwargs=config.objective_kwargs).objective_kwargs_dict()
    loaded = {name: _load(name, config.seed, kwargs) for name in config.objectives}
    run_dir, lock = prepare_run_dir(config.out, config.name, force=config.force)
    try:
        write_config(run_dir, to_dict(config), command, kind="eval")
        return _evaluate_and_write(config, run_dir, verbose, loaded)
    finally:
        lock.release()


def _evaluate_and_write(config: EvalConfig, run_dir: Path, verbose: bool, loaded: dict) -> Path:
    inner = config.inner_config()
    longest = int(np.argmax(config.lifetimes))
    variants = config.variants()
    shape = (len(variants), len(config.envs), len(config.lifetimes), config.num_seeds)
    scores, curves = np.zeros(shape), np.full(shape[:2] + (config.num_seeds, inner.num_updates), np.nan)
    fractions: dict[int, np.ndarray] = {}
    labels = list(config.labels()[: len(variants)])
    for v, (name, curriculum_entry, shaping_entry) in enumerate(variants):
        _, objective, objective_params = loaded[name]
        curriculum_config = CurriculumConfig(**_plugin_fields(curriculum_entry))
        shaping_config = ShapingConfig(**_plugin_fields(shaping_entry), heuristic=_heuristic_of(shaping_entry, config.heuristic))
        for e, env_name in enumerate(config.envs):
            spec = envs.make(env_name)
            built = components.build(curriculum_config, shaping_config, spec, inner.gamma, jax.random.PRNGKey(config.seed))
            meta_params = components.joint(objective_params, built)
            if config.heldout != "none":  # a judging stream: the same seeds for every objective (paired)

                keys = stream_keys(stream_seed(config.heldout), config.num_seeds)
            else:
                keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(config.seed), e), config.num_seeds)

            # Each lifetime N runs its own scan of N updates (one compile each): in one scan to the longest, masked
            # for the shorter ones, every lifetime would cost the longest (4 x 512 updates for N = 8..512).
            for li, n in enumerate(config.lifetimes):
                lifetime_inner = dataclasses.replace(config.ppo, total_timesteps=n * config.ppo.batch_size)
                train = make_train(lifetime_inner, spec, objective, **components.inner_kwargs(built))

                def one(num_updates, key, train=train, spec=spec, meta_params=meta_params):
                    output = train(meta_params, level_task(spec, num_updates, key), key)
                    extras = {"curve": output.metrics["episode_return"]}
                    if "level_category_fraction" in output.metrics:
                        extras["fraction"] = output.metrics["level_category_fraction"]
                    return jnp.where(diverged(output), jnp.nan, score(output, config.score)), extras

                grid_fn = jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))  # (1, S, ...): seeds sharded over devices
                grid, extras = over_devices(grid_fn, config.num_seeds)(jnp.asarray([n], jnp.int32), keys)
                scores[v, e, li] = np.asarray(grid[0])
                if li == longest:
                    curves[v, e] = np.asarray(extras["curve"][0])
                    if "fraction" in extras:
                        fractions[(v, e)] = np.asarray(extras["fraction"][0])
            if verbose:
                means = ", ".join(f"N={n}: {_finite_mean(row):.3f}" for n, row in zip(config.lifetimes, scores[v, e], strict=True))
                print(f"{labels[v]:>24} · {env_name}: {means}", flush=True)
    if config.tuned_ppo:
        tuned, cells = tuned_ppo_scores(config, verbose)
        scores, labels = np.concatenate([scores, tuned[None]]), labels + ["tuned_ppo"]
        curves = np.concatenate([curves, np.full((1,) + curves.shape[1:], np.nan)])  # tuned PPO's curves are not recorded
        (run_dir / "tuned_ppo.json").write_text(json.dumps({"stream": "selection", "cells": cells}, indent=1) + "\n")
    extra_arrays = {}
    if fractions:
        categories = max(f.shape[-1] for f in fractions.values())
        category_fraction = np.full(shape[:2] + (config.num_seeds, inner.num_updates, categories), np.nan)
        for (v, e), f in fractions.items():
            category_fraction[v, e, ..., : f.shape[-1]] = f
        extra_arrays["category_fraction"] = category_fraction
    np.savez(run_dir / "eval.npz", scores=scores, objectives=np.array(labels), envs=np.array(config.envs),
             lifetimes=np.array(config.lifetimes), batch_size=inner.batch_size, score=config.score, curves=curves,
             hand_designed=np.array(config.hand_designed()), **extra_arrays)
    summary = summary_table(run_dir / "eval.npz")
    if config.tuned_ppo:
        summary += "\n" + tuned_cells_markdown(cells)
    if config.verdict_against:
        verdicts = verdict_table(scores, labels, config.baseline(), config.envs, config.lifetimes,
                                 config.equivalence_margin, config.heldout, config.statistic)
        (run_dir / "verdict.json").write_text(json.dumps(verdicts, indent=2) + "\n")
        summary += "\n" + verdict_markdown(verdicts)
        if verbose:
            print(verdict_markdown(verdicts), end="")
    (run_dir / "summary.md").write_text(summary)
    if verbose:
        print(f"wrote {run_dir}/eval.npz, summary.md" + (", verdict.json" if config.verdict_against else ""))
    return run_dir


def _finite_mean(values: np.ndarray) -> float:
    """The mean of the finite values; NaN (no warning) when there are none, e.g. no episode ended in the lifetime."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else math.nan


def tuned_ppo_scores(config: EvalConfig, verbose: bool = True) -> tuple[np.ndarray, dict[str, dict[str, dict]]]:
    """Tuned PPO's scores (E, L, S) on the eval's judging seeds and its cell per env and lifetime (picked on the
    selection stream, each env and lifetime searched alone; metarl.app.verdict.tuned_ppo_alone)."""
    store = Store(store_folder(config.reference_store, config.out))
    scores = np.zeros((len(config.envs), len(config.lifetimes), config.num_seeds))
    cells: dict[str, dict[str, dict]] = {}
    for e, env in enumerate(config.envs):
        for li, n in enumerate(config.lifetimes):
            scores[e, li], cells.setdefault(env, {})[str(n)] = tuned_ppo_alone(
                config.ppo, env, int(n), config.score, config.tuning.as_verdict(), config.heldout, config.num_seeds, store,
                progress=(lambda line: print(line, flush=True)) if verbose else None)
            if verbose:
                cell = cells[env][str(n)]
                print(f"{'tuned_ppo':>24} · {env} · N={n}: {np.nanmean(scores[e, li]):.3f} (lr {cell['lr']:g}, clip "
                      f"{cell['clip_eps']:g}, {cell['update_epochs']} epochs{', annealed' if cell['anneal_lr'] else ''})", flush=True)
    return scores, cells


def tuned_cells_markdown(cells: dict[str, dict[str, dict]]) -> str:
    lines = ["Tuned PPO's cells (picked per env and lifetime on the selection stream):", "",
             "| env | N | lr | clip ε | epochs | lr annealed |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {env} | {n} | {c['lr']:g} | {c['clip_eps']:g} | {c['update_epochs']} | {c['anneal_lr']} |"
              for env, per_lifetime in cells.items() for n, c in per_lifetime.items()]
    return "\n".join(lines) + "\n"


def best_of(scores: np.ndarray, members, statistic: str = "iqm") -> int:
    """The index, among ``members``, of the highest ``statistic`` (metarl.stats.STATISTICS) of ``scores[member]`` (seeds
    on the last axis; NaN seeds dropped, a member without a finite seed never chosen; the first on ties)."""
    def value(v):
        finite = scores[v][np.isfinite(scores[v])]
        return float(STATISTICS[statistic](finite)) if finite.size else -np.inf
    return max(members, key=value)


def verdict_table(scores: np.ndarray, labels: list[str], baseline: int | tuple[bool, ...], envs, lifetimes,
                  margin: float = 0.05, stream: str = "test", statistic: str = "iqm") -> list[dict[str, Any]]:
    """Comparisons per env and lifetime (paired seeds; metarl.app.verdict), with ``margin`` × |the baseline's
    ``statistic``| as each row's equivalence margin and Holm's correction over all rows. ``baseline``: an index (every
    other label against ``labels[baseline]``), or a mask of the hand-designed labels (every other label against, per
    env and lifetime, the hand-designed one with the highest ``statistic`` on these same seeds: a choice that favours
    the baseline). ``statistic``: iqm or mean (metarl.stats.STATISTICS), what the CIs and verdicts are of."""
    hand = tuple(baseline) if not isinstance(baseline, (int, np.integer)) else None
    rows = []
    for v, label in enumerate(labels):
        if (hand is None and v == baseline) or (hand is not None and hand[v]):
            continue
        for e, env in enumerate(envs):
            for li, n in enumerate(lifetimes):
                b = baseline if hand is None else best_of(scores[:, e, li], [u for u, h in enumerate(hand) if h], statistic)
                base = scores[b, e, li]
                finite = base[np.isfinite(base)]
                row_margin = margin * abs(float(STATISTICS[statistic](finite))) if finite.size else 0.0
                comparison = paired_comparison(scores[v, e, li], base, margin=row_margin, statistic=statistic)
                rows.append({"objective": label, "baseline_objective": labels[b], "env": str(env), "lifetime": int(n),
                             "stream": stream, "relative_margin": margin, **comparison})
    return with_holm(rows)


def verdict_markdown(rows: list[dict[str, Any]]) -> str:
    name = STATISTIC_LABELS[rows[0].get("statistic", "iqm") if rows else "iqm"]
    lines = [f"| env | N | objective | {name} [95% CI] | baseline | {name} [95% CI] | difference [95% CI, paired] | P(obj > base) "
             "| verdict | Holm |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        c, b, d, pi = row["candidate"], row["baseline"], row["difference"], row["probability_of_improvement"]
        lines.append(f"| {row['env']} | {row['lifetime']} | {row['objective']} "
                     f"| {compared_value(c):.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] "
                     f"| {row['baseline_objective']} | {compared_value(b):.2f} [{b['ci'][0]:.2f}, {b['ci'][1]:.2f}] "
                     f"| {compared_value(d):+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}] "
                     f"| {pi['value']:.2f} [{pi['ci'][0]:.2f}, {pi['ci'][1]:.2f}] | {row['verdict']} | {row['verdict_holm']} |")
    margin = rows[0]["relative_margin"] if rows else 0.0
    return ("\n".join(lines) + f"\n\nSeeds: the {rows[0]['stream'] if rows else ''} stream. Equivalent: the CI inside "
            f"±{margin:g} × the baseline's {name}; Holm: adjusted over the {len(rows)} comparisons of this table.\n")


def load_eval(path: str | Path) -> dict[str, Any]:
    data = np.load(path)
    return {k: data[k] for k in data.files}


def summary_table(path: str | Path) -> str:
    """Markdown: per env and lifetime, each objective's mean, IQM and 95 % bootstrap CI of the IQM over seeds."""
    data = load_eval(path)
    lines = ["| env | N | objective | mean | IQM | 95% CI (IQM) |", "| --- | --- | --- | --- | --- | --- |"]
    unscored = False
    for e, env in enumerate(data["envs"]):
        for li, n in enumerate(data["lifetimes"]):
            for o, objective in enumerate(data["objectives"]):
                values = data["scores"][o, e, li]
                values = values[np.isfinite(values)]
                if values.size == 0:
                    lines.append(f"| {env} | {n} | {objective} | no score | | |")
                    unscored = True
                    continue
                low, high = bootstrap_ci(values)
                lines.append(f"| {env} | {n} | {objective} | {values.mean():.2f} | {iqm(values):.2f} | [{low:.2f}, {high:.2f}] |")
    if unscored:
        lines += ["", "no score: on every seed the agent diverged or, for a return score, no episode ended within the lifetime "
                  "(e.g. Acrobot's 500-step episodes in 2 updates of 128 steps)."]
    return "\n".join(lines) + "\n"


def parse_eval_config(args: list[str]) -> EvalConfig:
    """`metarl eval`'s parser."""
    return tyro.cli(EvalConfig, args=expand_preset("eval", args), prog="metarl eval",
                    description="Evaluate objectives on a grid. --preset smoke: every stage at the smallest size (seconds).")


def eval_main(config: EvalConfig, argv: list[str]) -> int:
    run_eval(config, argv)
    return 0
