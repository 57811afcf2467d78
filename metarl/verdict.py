"""Held-out verdicts: is a discovered component better than the hand-designed baseline?

A discovery is judged on seeds that meta-training never saw, never on the fitness the outer loop
optimized. Meta-training draws every key from ``PRNGKey(config.seed)``; the verdict's seeds come from a
stream of their own (:data:`VERDICT_STREAM`, seed i = ``fold_in(PRNGKey(VERDICT_STREAM), i)``), the same
for every run, so the baseline's scores on them are measured once per inner config and stored
(:class:`Store`), and any two discoveries are compared on the same seeds.

The candidate and the baseline are trained on the *same* seeds (paired): seed i of both sees the same
initial agent, the same env randomness and the same levels. :func:`paired_comparison` reports each side's
IQM with a 95 % percentile-bootstrap CI, and the CI of the difference of the IQMs with the seeds resampled
*jointly* (so the pairing removes the seed-to-seed variance both share), and one word:

    better            the CI of the difference lies above 0
    worse             it lies below 0
    indistinguishable it contains 0

Two baselines:

* **PPO at the same inner settings** (the run's ``ppo`` config; its curriculum is uniform where the run
  discovers one, and it learns from the env reward).
* **Tuned PPO**: PPO over a grid (learning rate × clip ε × epochs × learning-rate annealing) at the same
  env-step budget, its best cell picked on separate seeds (:data:`SELECTION_STREAM`) by the IQM of the
  same score, then evaluated on the held-out seeds like the candidate. Beating PPO at settings chosen for
  the learned objective is not enough; this is the comparison a reviewer accepts.

The score of one seed is the run's fitness score (``tasks.fitness``) per env and lifetime, normalized per
env with the run's PPO references where the run normalizes, averaged over envs and lifetimes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from metarl.config import MetaTrainConfig, PPOConfig, VerdictConfig, to_dict
from metarl.stats import iqm

VERDICT_STREAM = 0x7E57_5EED  # held-out seeds of every verdict
SELECTION_STREAM = 0x5E1E_C7ED  # seeds on which the tuned baseline's grid cell is chosen
REFERENCE_STREAM = 0x2EF_5EED  # seeds of the normalization references (PPO and the untrained agent)

VERDICTS = ("better", "indistinguishable", "worse")


# --------------------------------------------------------------------------------------------- statistics


def paired_comparison(candidate, baseline, *, num_resamples: int = 10_000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Compare per-seed scores of a candidate and a baseline trained on the same seeds.

    ``candidate`` and ``baseline``: shape (S,), entry i from seed i of both. A diverged seed (NaN) counts
    as the lowest score seen on either side: it is a failure, and dropping it would flatter the side that
    diverged. Returns the IQM and CI of each side, the difference of the IQMs with its CI (seeds resampled
    jointly), the mean paired difference, the count of diverged seeds, and the verdict word.
    """
    candidate, baseline = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    if candidate.shape != baseline.shape or candidate.ndim != 1 or candidate.size < 2:
        raise ValueError(f"paired scores must be two arrays of equal shape (S,) with S >= 2, got {candidate.shape} and {baseline.shape}")
    both = np.concatenate([candidate, baseline])
    finite = both[np.isfinite(both)]
    floor = finite.min() if finite.size else 0.0
    diverged = {"candidate": int(np.sum(~np.isfinite(candidate))), "baseline": int(np.sum(~np.isfinite(baseline)))}
    candidate = np.where(np.isfinite(candidate), candidate, floor)
    baseline = np.where(np.isfinite(baseline), baseline, floor)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, candidate.size, size=(num_resamples, candidate.size))  # one resample for both sides
    resampled_candidate, resampled_baseline = iqm(candidate[index]), iqm(baseline[index])
    alpha = (1.0 - confidence) / 2.0

    def interval(samples):
        return [float(np.quantile(samples, alpha)), float(np.quantile(samples, 1.0 - alpha))]

    difference_ci = interval(resampled_candidate - resampled_baseline)
    if difference_ci[0] > 0:
        verdict = "better"
    elif difference_ci[1] < 0:
        verdict = "worse"
    else:
        verdict = "indistinguishable"
    return {
        "num_seeds": int(candidate.size),
        "candidate": {"iqm": float(iqm(candidate)), "ci": interval(resampled_candidate), "mean": float(candidate.mean())},
        "baseline": {"iqm": float(iqm(baseline)), "ci": interval(resampled_baseline), "mean": float(baseline.mean())},
        "difference": {"iqm": float(iqm(candidate) - iqm(baseline)), "ci": difference_ci,
                       "mean_paired": float(np.mean(candidate - baseline))},
        "diverged": diverged,
        "confidence": confidence,
        "verdict": verdict,
    }


# ------------------------------------------------------------------------------------------------ storage


class Store:
    """Measurements that depend only on an inner config and a seed stream, stored once and reused.

    A file ``<root>/<kind>-<envs>-<digest>.json`` holds the key (everything the numbers depend on,
    package versions included), the values, the command that measured them and the devices it ran on. Runs
    with an identical inner config read it instead of measuring again; nothing else is cached.

    The device layout is recorded, not keyed: a measurement is reused on other machines and device counts,
    where measuring again can differ in float rounding (seeds are split over the devices, so each device
    runs a differently shaped program); ``measured_on`` in the file says where it was measured.
    """

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None

    def path(self, kind: str, key: dict[str, Any]) -> Path | None:
        if self.root is None:
            return None
        text = json.dumps(key, sort_keys=True)
        envs = "+".join(key.get("envs", ["any"]))
        return self.root / f"{kind}-{envs}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"

    def load(self, kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
        path = self.path(kind, key)
        if path is None or not path.is_file():
            return None
        stored = json.loads(path.read_text())
        if stored.get("key") != json.loads(json.dumps(key)):  # a digest collision or a hand-edited file
            return None
        return stored["values"]

    def save(self, kind: str, key: dict[str, Any], values: dict[str, Any], command: list[str] | None = None) -> None:
        path = self.path(kind, key)
        if path is None:
            return
        import shlex
        import sys

        path.parent.mkdir(parents=True, exist_ok=True)
        command = sys.argv if command is None else command
        payload = {"kind": kind, "key": key, "values": values, "measured_by": shlex.join(["metarl", *command[1:]]),
                   "measured_on": _devices()}
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            file.write(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, path)  # never a half-written file, also with two runs measuring at once

    def get(self, kind: str, key: dict[str, Any], compute, command: list[str] | None = None) -> dict[str, Any]:
        values = self.load(kind, key)
        if values is None:
            values = compute()
            self.save(kind, key, values, command)
        return values


def _devices() -> dict[str, Any]:
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind, "devices": jax.device_count()}


def _versions() -> dict[str, str]:
    from metarl.io.results import package_versions

    versions = package_versions()
    return {name: versions[name] for name in ("jax", "jaxlib", "gymnax")}


# ------------------------------------------------------------------------------------------------ scoring


def stream_keys(stream: int, num_seeds: int):
    """Keys 0..num_seeds-1 of a seed stream; a prefix of a longer request (32 seeds are the first 32 of 64)."""
    import jax
    import jax.numpy as jnp

    base = jax.random.PRNGKey(stream)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


def evaluation_lifetimes(config: MetaTrainConfig) -> list[int]:
    """The lifetimes a run is judged at: those it meta-trained on (log-uniform sampling: low, geometric mid, high)."""
    lifetimes = sorted(set(config.tasks.lifetimes_for(config.ppo)))
    if config.tasks.lifetime_sampling == "log_uniform" and len(lifetimes) >= 2:
        low, high = lifetimes[0], lifetimes[-1]
        lifetimes = sorted({low, int(round((low * high) ** 0.5)), high})
    return lifetimes


def make_scorer(ppo: PPOConfig, spec, objective, plugins=None, *, kind: str, last_k: int):
    """``scores(meta_params, lifetimes (L,), keys (S, 2), hparams=None) -> (L, S)``: one trained agent per
    (lifetime, seed), scored by ``kind``; NaN where the agent's losses diverged (``hparams``: an InnerHparams
    whose numbers may be traced, None for ``ppo``'s). Not jitted (callers vmap it further)."""
    import jax
    import jax.numpy as jnp

    from metarl.inner import level_task, make_train
    from metarl.meta.fitness import score
    from metarl.meta.tasks import diverged
    from metarl.plugins import inner_kwargs

    train = make_train(ppo, spec, objective, **(inner_kwargs(plugins) if plugins is not None else {}))

    def one(meta_params, num_updates, key, hparams):
        output = train(meta_params, level_task(spec, num_updates, key), key, hparams)
        return jnp.where(diverged(output), jnp.nan, score(output, kind, last_k))

    def scores(meta_params, lifetimes, keys, hparams=None):
        per_seed = jax.vmap(one, in_axes=(None, None, 0, None))
        return jax.vmap(per_seed, in_axes=(None, 0, None, None))(meta_params, lifetimes, keys, hparams)

    return scores


def over_devices(function, num_seeds: int):
    """``function(*args, keys)`` jitted, with the seeds (last argument, axis 0; output axis 1) sharded over
    every device when they divide evenly (on a CPU: one XLA host device per core)."""
    import jax
    from jax.sharding import PartitionSpec as P

    devices = jax.local_devices()
    if len(devices) == 1 or num_seeds % len(devices):
        return jax.jit(function)
    mesh = jax.make_mesh((len(devices),), ("seeds",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)

    def sharded(*args):
        *rest, keys = args
        specs = tuple(P() for _ in rest) + (P("seeds"),)
        return jax.shard_map(function, mesh=mesh, in_specs=specs, out_specs=P(None, "seeds"), check_vma=False)(*rest, keys)

    return jax.jit(sharded)


def baseline_plugins(config: MetaTrainConfig, spec):
    """The hand-designed baseline's plug-ins: a uniform curriculum where the run discovers one, no shaping."""
    from metarl import curricula
    from metarl.plugins import Plugins

    curriculum = curricula.make("uniform", space=spec.level_space) if config.curriculum.active else None
    return Plugins(curriculum, None, None, {}, {})


def _ppo_objective(clip_eps):
    """PPO as a drift objective whose clip ε may be traced (a grid vmapped in one compile)."""
    from metarl.objectives.base import drift_objective
    from metarl.objectives.ppo import ppo_drift

    return drift_objective("ppo", lambda meta_params, ratio, advantages, context: ppo_drift(ratio, advantages, clip_eps))


def _score_key(config: MetaTrainConfig, ppo: PPOConfig, stream: int, num_seeds: int, lifetimes) -> dict[str, Any]:
    return {"envs": list(config.tasks.envs), "ppo": json.loads(json.dumps(to_dict(ppo))), "score": config.tasks.fitness,
            "last_k": config.tasks.last_k, "lifetimes": [int(n) for n in lifetimes], "stream": stream, "num_seeds": num_seeds,
            "baseline_curriculum": "uniform" if config.curriculum.active else "none", "versions": _versions()}


def ppo_scores(config: MetaTrainConfig, env_specs, lifetimes, stream: int, num_seeds: int, ppo: PPOConfig | None = None,
               clip_eps: float = 0.2, store: Store | None = None) -> np.ndarray:
    """Per-seed scores (E, L, S) of PPO with ``ppo`` (default: the run's inner settings), measured once per key."""
    ppo = ppo or config.ppo
    key = {**_score_key(config, ppo, stream, num_seeds, lifetimes), "clip_eps": clip_eps}

    def compute():
        import jax.numpy as jnp

        keys = stream_keys(stream, num_seeds)
        per_env = []
        for spec in env_specs:
            scorer = make_scorer(ppo, spec, _ppo_objective(clip_eps), baseline_plugins(config, spec),
                                 kind=config.tasks.fitness, last_k=config.tasks.last_k)
            per_env.append(np.asarray(over_devices(scorer, num_seeds)({}, jnp.asarray(lifetimes, jnp.int32), keys)))
        return {"scores": np.stack(per_env).tolist()}

    return np.asarray((store or Store(None)).get("ppo_scores", key, compute)["scores"], np.float64)


def per_seed_score(scores: np.ndarray, references, normalize: bool) -> np.ndarray:
    """(E, L, S) -> (S,): normalized per env with ``references`` (initial, ppo) when ``normalize``, averaged."""
    scores = np.asarray(scores, np.float64)
    if normalize:
        initial = np.asarray(references.initial, np.float64)[:, None, None]
        span = np.asarray(references.ppo, np.float64)[:, None, None] - initial
        scores = (scores - initial) / np.where(np.abs(span) > 1e-6, span, 1.0)
    return scores.mean(axis=(0, 1))


def references_from_store(config: MetaTrainConfig, env_specs: list, store: Store, command=None, progress=None):
    """The normalization references (:class:`metarl.meta.tasks.References`) of ``config`` on
    ``tasks.reference_seeds`` seeds of their own stream, measured once per identical inner config and read
    from ``store`` afterwards."""
    import jax.numpy as jnp

    from metarl import objectives
    from metarl.meta.tasks import References, as_dict, measure_references

    longest = max(config.tasks.lifetimes_for(config.ppo))
    key = {**_score_key(config, config.ppo, REFERENCE_STREAM, config.tasks.reference_seeds, [longest]), "kind": "normalization reference"}

    def compute():
        if progress:
            progress(f"measuring PPO reference scores on {', '.join(config.tasks.envs)} ({config.tasks.reference_seeds} seeds) ...")
        keys = stream_keys(REFERENCE_STREAM, config.tasks.reference_seeds)
        measured = measure_references(config, env_specs, objectives.make("ppo"), keys)
        return as_dict(measured, list(config.tasks.envs))

    values = store.get("reference", key, compute, command)
    names = config.tasks.envs
    return References(jnp.asarray([values[n]["initial"] for n in names]), jnp.asarray([values[n]["ppo"] for n in names]))


# -------------------------------------------------------------------------------------------- tuned PPO


def tuning_grid(verdict: VerdictConfig) -> list[dict[str, Any]]:
    axes = (verdict.tuned_lrs, verdict.tuned_clips, verdict.tuned_epochs, verdict.tuned_anneal)
    names = ("lr", "clip_eps", "update_epochs", "anneal_lr")
    return [dict(zip(names, cell, strict=True)) for cell in itertools.product(*axes)]


def tuned_ppo(config: MetaTrainConfig, env_specs, references, store: Store | None = None, progress=None) -> dict[str, Any]:
    """PPO's best grid cell, chosen on the selection seeds by the IQM of the per-seed score; its config.

    Cells that differ only in learning rate and clip ε share one compile (both traced, vmapped); each
    (epochs, annealing) pair compiles once.
    """
    verdict = config.verdict
    lifetimes = evaluation_lifetimes(config)
    grid = tuning_grid(verdict)
    key = {**_score_key(config, config.ppo, SELECTION_STREAM, verdict.selection_seeds, lifetimes), "grid": grid,
           "normalize": config.tasks.normalize,
           "references": [np.asarray(references.initial).tolist(), np.asarray(references.ppo).tolist()]}

    def compute():
        import jax
        import jax.numpy as jnp

        from metarl.types import InnerHparams

        keys = stream_keys(SELECTION_STREAM, verdict.selection_seeds)
        lifetimes_array = jnp.asarray(lifetimes, jnp.int32)
        table = []
        for epochs, anneal in itertools.product(verdict.tuned_epochs, verdict.tuned_anneal):
            cells = [c for c in grid if c["update_epochs"] == epochs and c["anneal_lr"] == anneal]
            lrs = jnp.asarray([c["lr"] for c in cells], jnp.float32)
            clips = jnp.asarray([c["clip_eps"] for c in cells], jnp.float32)
            group = dataclasses.replace(config.ppo, update_epochs=epochs, anneal_lr=anneal)
            per_env = []
            for spec in env_specs:
                def cell_scores(lrs, clips, keys, spec=spec):
                    def one_cell(lr, clip):
                        scorer = make_scorer(group, spec, _ppo_objective(clip), baseline_plugins(config, spec),
                                             kind=config.tasks.fitness, last_k=config.tasks.last_k)
                        return scorer({}, lifetimes_array, keys, InnerHparams(lr, group.ent_coef))

                    return jax.vmap(one_cell)(lrs, clips)  # (C, L, S)

                run = over_devices(lambda lrs, clips, keys: jnp.moveaxis(cell_scores(lrs, clips, keys), 2, 1), len(keys))
                per_env.append(np.moveaxis(np.asarray(run(lrs, clips, keys)), 1, 2))  # (C, L, S)
            scores = np.stack(per_env, axis=1)  # (C, E, L, S)
            for cell, cell_scores_ in zip(cells, scores, strict=True):
                seeds = per_seed_score(cell_scores_, references, config.tasks.normalize)
                seeds = np.where(np.isfinite(seeds), seeds, np.nanmin(seeds) if np.isfinite(seeds).any() else 0.0)
                table.append({**cell, "iqm": float(iqm(seeds))})
            if progress:
                progress(f"  tuned PPO: epochs {epochs}, anneal {anneal}: " + ", ".join(
                    f"lr {row['lr']:g} clip {row['clip_eps']:g} → {row['iqm']:.3f}" for row in table[-len(cells):]))
        best = max(table, key=lambda row: row["iqm"])
        return {"best": {k: best[k] for k in ("lr", "clip_eps", "update_epochs", "anneal_lr")}, "table": table}

    return (store or Store(None)).get("tuned_ppo", key, compute)


def _tuned_scores(config: MetaTrainConfig, env_specs, lifetimes, best: dict[str, Any], store: Store | None) -> np.ndarray:
    """Tuned PPO's chosen cell on the held-out seeds."""
    tuned = dataclasses.replace(config.ppo, lr=best["lr"], update_epochs=best["update_epochs"], anneal_lr=best["anneal_lr"])
    return ppo_scores(config, env_specs, lifetimes, VERDICT_STREAM, config.verdict.num_seeds, ppo=tuned, clip_eps=best["clip_eps"],
                      store=store)


# -------------------------------------------------------------------------------------------- the verdict


def run_verdict(config: MetaTrainConfig, env_specs, candidate_objective, candidate_plugins, meta_params, references,
                store: Store | None = None, progress=None) -> dict[str, Any]:
    """The discovered meta-parameters against PPO (same settings) and tuned PPO on the held-out seeds."""
    import jax.numpy as jnp

    verdict = config.verdict
    lifetimes = evaluation_lifetimes(config)
    keys = stream_keys(VERDICT_STREAM, verdict.num_seeds)
    lifetimes_array = jnp.asarray(lifetimes, jnp.int32)
    candidate = []
    for spec, plugins in zip(env_specs, candidate_plugins, strict=True):
        scorer = make_scorer(config.ppo, spec, candidate_objective, plugins, kind=config.tasks.fitness, last_k=config.tasks.last_k)
        candidate.append(np.asarray(over_devices(scorer, verdict.num_seeds)(meta_params, lifetimes_array, keys)))
    candidate = np.stack(candidate)
    same = {"lr": config.ppo.lr, "clip_eps": 0.2, "update_epochs": config.ppo.update_epochs, "anneal_lr": config.ppo.anneal_lr}
    baselines = {"ppo": {"label": "PPO (same settings)", "config": same,
                         "scores": ppo_scores(config, env_specs, lifetimes, VERDICT_STREAM, verdict.num_seeds, store=store)}}
    if verdict.tuned:
        best = tuned_ppo(config, env_specs, references, store, progress)["best"]
        baselines["tuned_ppo"] = {"label": "tuned PPO", "config": best, "scores": _tuned_scores(config, env_specs, lifetimes, best, store)}
    candidate_seeds = per_seed_score(candidate, references, config.tasks.normalize)
    result = {
        "seeds": f"{verdict.num_seeds} held-out seeds (stream {VERDICT_STREAM:#x}), paired",
        "score": config.tasks.fitness + (" (normalized: 0 untrained, 1 PPO reference)" if config.tasks.normalize else ""),
        "envs": list(config.tasks.envs),
        "lifetimes": lifetimes,
        "candidate_scores": candidate.tolist(),
        "against": {},
    }
    for name, baseline in baselines.items():
        comparison = paired_comparison(candidate_seeds, per_seed_score(baseline["scores"], references, config.tasks.normalize))
        result["against"][name] = {"label": baseline["label"], "config": baseline["config"], **comparison,
                                   "baseline_scores": np.asarray(baseline["scores"]).tolist()}
    return result


def describe(result: dict[str, Any], candidate_label: str) -> str:
    """The verdict as the lines `metarl meta-train` prints."""
    lines = [f"verdict on {result['seeds']} · {', '.join(result['envs'])} · N = {', '.join(map(str, result['lifetimes']))} "
             f"· score: {result['score']}"]
    first = next(iter(result["against"].values()))
    lines.append(f"  {candidate_label:<28} IQM {_interval(first['candidate'])}")
    for entry in result["against"].values():
        config = entry["config"]
        setting = f"lr {config['lr']:g}, clip {config['clip_eps']:g}, {config['update_epochs']} epochs" + (
            ", annealed" if config["anneal_lr"] else "")
        lines.append(f"  {entry['label'] + ' (' + setting + ')':<28} IQM {_interval(entry['baseline'])}")
        difference = entry["difference"]
        lines.append(f"      difference {difference['iqm']:+.3f} [{difference['ci'][0]:+.3f}, {difference['ci'][1]:+.3f}] "
                     f"→ {entry['verdict'].upper()} (vs {entry['label']})")
    return "\n".join(lines)


def _interval(side: dict[str, Any]) -> str:
    return f"{side['iqm']:.3f} [{side['ci'][0]:.3f}, {side['ci'][1]:.3f}]"


def measure_baselines(config: MetaTrainConfig, command: list[str] | None = None, progress=None) -> dict[str, Any]:
    """Measure (or read) everything a verdict of ``config`` compares against, into its reference store:
    the normalization references, PPO and tuned PPO on the held-out seeds. Used to pay for them once,
    before timed runs (benchmarks/discovery.py)."""
    from metarl import envs
    from metarl.checks import validate

    validate(config)
    store = Store(config.reference_store)
    env_specs = [envs.make(name) for name in config.tasks.envs]
    references = references_from_store(config, env_specs, store, command)
    lifetimes = evaluation_lifetimes(config)
    measured = {"ppo": ppo_scores(config, env_specs, lifetimes, VERDICT_STREAM, config.verdict.num_seeds, store=store)}
    if config.verdict.tuned:
        best = tuned_ppo(config, env_specs, references, store, progress)["best"]
        measured["tuned_ppo"] = _tuned_scores(config, env_specs, lifetimes, best, store)
    return measured
