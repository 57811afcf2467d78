"""Held-out verdicts: is a discovered component better than the hand-designed baseline?

A discovery is judged on seeds that meta-training never saw, never on the fitness the outer loop
optimized. Meta-training draws every key from ``PRNGKey(config.seed)``; the judging seeds come from
streams of their own (seed i of a stream = ``fold_in(PRNGKey(stream), i)``), the same for every run, so a
baseline's scores on them are measured once per inner config and stored (:class:`Store`), and any two
discoveries are compared on the same seeds. Three streams, one job each (:data:`STREAMS`):

    selection   tuned PPO's grid cell is picked here (and nothing else)
    validation  every design choice: headroom, recipe, ES settings, offsets, stopping a study early
    test        final verdicts only; no choice may look at it

(The normalization references have a fourth stream, :data:`REFERENCE_STREAM`.) The validation stream is the
one every verdict used before the test stream existed (it was called the held-out stream), so the scores of
earlier studies are validation scores.

The candidate and the baseline are trained on the *same* seeds (paired): seed i of both sees the same
initial agent, the same env randomness and the same levels. :func:`paired_comparison` reports each side's
IQM with a 95 % percentile-bootstrap CI, the CI of the difference of the IQMs with the seeds resampled
*jointly* (so the pairing removes the seed-to-seed variance both share), the probability of improvement
P(candidate > baseline) with its CI (rliable's statistic), and one word:

    better        the CI of the difference lies above 0
    worse         it lies below 0
    equivalent    it lies inside (-margin, +margin), a margin stated beforehand (``verdict.equivalence_margin``)
    inconclusive  otherwise: "no significant difference" is not "equal"

A study that makes many comparisons adds Holm-adjusted verdicts (:func:`holm_verdicts`) beside the raw ones.

Two baselines:

* **PPO at the same inner settings** (the run's ``ppo`` config; its curriculum is uniform where the run
  discovers one, and it learns from the env reward).
* **Tuned PPO**: PPO over a grid (learning rate × clip ε × epochs × learning-rate annealing) at the same
  env-step budget, its best cell picked per env and lifetime on the selection seeds by the IQM of the same
  score, then evaluated on the judging seeds like the candidate. Where the best cell sits on the edge of a
  numeric axis the grid extends along it until the best is interior or a stated bound stops it
  (:func:`search_grid`), so the baseline is never cornered. Beating PPO at settings chosen for the learned
  objective is not enough; this is the comparison a reviewer accepts.

The score of one seed is the run's fitness score (``tasks.fitness``) per env and lifetime, normalized per
env with the run's PPO references where the run normalizes, averaged over envs and lifetimes.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import itertools
import json
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from metarl import components, curricula, envs, objectives
from metarl import shaping as shaping_family
from metarl.checks import validate
from metarl.components import Components, inner_kwargs
from metarl.config import (
    CurriculumConfig,
    MetaTrainConfig,
    PPOConfig,
    ShapingConfig,
    TaskDistribution,
    VerdictConfig,
    store_folder,
    to_dict,
)
from metarl.inner import level_task, make_train
from metarl.io.results import package_versions
from metarl.meta.fitness import score
from metarl.meta.tasks import References, as_dict, diverged, measure_references
from metarl.objectives.base import drift_objective
from metarl.objectives.ppo import ppo_drift
from metarl.stats import STATISTIC_LABELS, STATISTICS, iqm
from metarl.types import InnerHparams

SELECTION_STREAM = 0x5E1E_C7ED  # seeds on which the tuned baseline's grid cell is chosen
VALIDATION_STREAM = 0x7E57_5EED  # seeds of every design choice (the only held-out stream before the test stream)
TEST_STREAM = 0x7E57_7E57  # seeds of final verdicts only (new: no earlier choice has seen them)
REFERENCE_STREAM = 0x2EF_5EED  # seeds of the normalization references (PPO and the untrained agent)
STREAMS = {"selection": SELECTION_STREAM, "validation": VALIDATION_STREAM, "test": TEST_STREAM}
JUDGING_STREAMS = ("validation", "test")  # where a verdict's seeds may come from

VERDICTS = ("better", "worse", "equivalent", "inconclusive")

NUMERICS_VERSION = 1
"""Version of the code that decides a stored baseline score (PPO's training, the envs, the score). It is part of
every store key, so bumping it re-measures every stored baseline. tests/test_verdict.py compares
:func:`numerics_digest` with :data:`NUMERICS_DIGEST` and fails when that code changed: bump this version if the
change can move a score, and set the digest either way."""
NUMERICS_DIGEST = "2cea1cd36749"
NUMERICS_SOURCES = ("inner", "rl", "envs", "objectives/base.py", "objectives/ppo.py", "meta/fitness.py", "meta/tasks.py",
                    "curricula/base.py", "curricula/samplers.py", "components.py", "types.py", "stats.py",
                    "shaping/heuristics.py", "shaping/shapings.py")
"""The modules (relative to the package) whose code decides a PPO score, besides this module's scoring functions."""
NUMERICS_FUNCTIONS = ("stream_keys", "make_scorer", "over_devices", "baseline_components", "_ppo_objective", "normalized_scores",
                      "per_seed_score")


def stream_seed(stream: str) -> int:
    """The integer of a judging stream by its name (validation or test)."""
    if stream not in JUDGING_STREAMS:
        raise ValueError(f"stream must be one of {', '.join(JUDGING_STREAMS)}, got {stream!r}")
    return STREAMS[stream]


def stream_label(stream: str, num_seeds: int) -> str:
    return f"{num_seeds} {stream} seeds (stream {STREAMS[stream]:#x}), paired"


# --------------------------------------------------------------------------------------------- statistics


def probability_of_improvement(candidate, baseline) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over every pair of a candidate seed X and a baseline seed Y (the Mann–Whitney
    statistic, rliable's "probability of improvement"); over the last axis, batched over leading axes."""
    candidate, baseline = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    greater = (candidate[..., :, None] > baseline[..., None, :]).mean(axis=(-2, -1))
    ties = (candidate[..., :, None] == baseline[..., None, :]).mean(axis=(-2, -1))
    return greater + 0.5 * ties


def resampled_probability_of_improvement(candidate, baseline, index) -> np.ndarray:
    """``probability_of_improvement(candidate[index], baseline[index])`` for a joint resample ``index`` (R, S) of seeds,
    without building the copies: each resample's seed multiplicities m (R, S) weight the S x S table of pair outcomes,
    P = mᵀ G m / S². The counts are whole numbers, exact in float64, so the result is the direct computation's to the
    bit, at S² work per resample instead of S² comparisons of copies (a verdict at 128 seeds: 0.51 s before, 0.05 s now)."""
    candidate, baseline, index = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64), np.asarray(index)
    resamples, size = index.shape
    counts = np.bincount((index + candidate.size * np.arange(resamples)[:, None]).ravel(),
                         minlength=resamples * candidate.size).reshape(resamples, candidate.size).astype(np.float64)

    def pairs(table):
        return np.sum((counts @ table.astype(np.float64)) * counts, axis=-1) / (size * size)

    return pairs(candidate[:, None] > baseline[None, :]) + 0.5 * pairs(candidate[:, None] == baseline[None, :])


def paired_comparison(candidate, baseline, *, margin: float = 0.0, num_resamples: int = 10_000, confidence: float = 0.95,
                      seed: int = 0, statistic: str = "iqm") -> dict[str, Any]:
    """Compare per-seed scores of a candidate and a baseline trained on the same seeds.

    ``candidate`` and ``baseline``: shape (S,), entry i from seed i of both. A diverged seed (NaN) counts
    as the lowest score seen on either side: it is a failure, and dropping it would flatter the side that
    diverged. ``margin`` (>= 0, in the scores' units): the CI of the difference inside (-margin, margin) is
    *equivalent*; 0 never says equivalent. Returns the IQM and CI of each side, the difference of the IQMs
    with its CI (seeds resampled jointly), the mean paired difference, the probability of improvement with
    its CI, bootstrap p-values (``p_difference``: two-sided, of "difference = 0"; ``p_equivalence``: of "the
    difference reaches the margin", the two one-sided tests), the count of diverged seeds and the verdict.
    ``statistic`` (a key of metarl.stats.STATISTICS): the aggregate the CIs, p-values and verdict are of; with
    ``"mean"`` each side and the difference also get ``value`` (the mean) and the result ``statistic``, and the
    ``iqm`` fields stay the IQM, for reading beside it.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
    aggregate = STATISTICS[statistic]
    candidate, baseline = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    if candidate.shape != baseline.shape or candidate.ndim != 1 or candidate.size < 2:
        raise ValueError(f"paired scores must be two arrays of equal shape (S,) with S >= 2, got {candidate.shape} and {baseline.shape}")
    if not (margin >= 0 and math.isfinite(margin)):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    both = np.concatenate([candidate, baseline])
    finite = both[np.isfinite(both)]
    floor = finite.min() if finite.size else 0.0
    diverged = {"candidate": int(np.sum(~np.isfinite(candidate))), "baseline": int(np.sum(~np.isfinite(baseline)))}
    candidate = np.where(np.isfinite(candidate), candidate, floor)
    baseline = np.where(np.isfinite(baseline), baseline, floor)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, candidate.size, size=(num_resamples, candidate.size))  # one resample for both sides
    resampled_candidate, resampled_baseline = aggregate(candidate[index]), aggregate(baseline[index])
    differences = resampled_candidate - resampled_baseline
    improvement = resampled_probability_of_improvement(candidate, baseline, index)
    alpha = (1.0 - confidence) / 2.0

    def interval(samples):
        return [float(np.quantile(samples, alpha)), float(np.quantile(samples, 1.0 - alpha))]

    difference_ci = interval(differences)
    p_difference = min(1.0, 2.0 * min(np.mean(differences <= 0), np.mean(differences >= 0)))
    p_equivalence = min(1.0, 2.0 * max(np.mean(differences <= -margin), np.mean(differences >= margin))) if margin > 0 else 1.0
    result = {
        "num_seeds": int(candidate.size),
        "candidate": {"iqm": float(iqm(candidate)), "ci": interval(resampled_candidate), "mean": float(candidate.mean())},
        "baseline": {"iqm": float(iqm(baseline)), "ci": interval(resampled_baseline), "mean": float(baseline.mean())},
        "difference": {"iqm": float(iqm(candidate) - iqm(baseline)), "ci": difference_ci,
                       "mean_paired": float(np.mean(candidate - baseline))},
        "probability_of_improvement": {"value": float(probability_of_improvement(candidate, baseline)), "ci": interval(improvement)},
        "p_difference": float(p_difference),
        "p_equivalence": float(p_equivalence),
        "margin": float(margin),
        "diverged": diverged,
        "confidence": confidence,
        "verdict": verdict_word(difference_ci, margin),
    }
    if statistic != "iqm":  # IQM verdicts keep the fields they were stored with
        result["statistic"] = statistic
        for side, values in (("candidate", candidate), ("baseline", baseline)):
            result[side]["value"] = float(aggregate(values))
        result["difference"]["value"] = float(aggregate(candidate) - aggregate(baseline))
    return result


def compared_value(side: dict[str, Any]) -> float:
    """The point value a comparison's verdict is about: its statistic's (``value``), else the IQM."""
    return side.get("value", side["iqm"])


def verdict_word(difference_ci: Sequence[float], margin: float) -> str:
    """better / worse where the CI of the difference excludes 0; equivalent where it lies inside ±margin."""
    low, high = difference_ci
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    if margin > 0 and -margin < low and high < margin:
        return "equivalent"
    return "inconclusive"


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (step-down, monotone): reject hypothesis i at level α iff adjusted[i] < α;
    the family-wise error stays below α over the whole family."""
    p = np.asarray(p_values, np.float64)
    order = np.argsort(p, kind="stable")
    scaled = (p.size - np.arange(p.size)) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def holm_verdicts(comparisons: Sequence[dict[str, Any]], alpha: float = 0.05) -> list[str]:
    """The verdict words of a family of :func:`paired_comparison` results with Holm's correction: better / worse
    where the adjusted p of "no difference" is below α; equivalent where the adjusted p of the equivalence test
    is; inconclusive otherwise. With one comparison it is the raw word up to the bootstrap's discreteness."""
    if not comparisons:
        return []
    p_difference = holm([c["p_difference"] for c in comparisons])
    p_equivalence = holm([c["p_equivalence"] for c in comparisons])
    words = []
    for comparison, p_d, p_e in zip(comparisons, p_difference, p_equivalence, strict=True):
        if p_d < alpha:
            words.append("better" if compared_value(comparison["difference"]) > 0 else "worse")
        elif comparison["margin"] > 0 and p_e < alpha:
            words.append("equivalent")
        else:
            words.append("inconclusive")
    return words


def with_holm(comparisons: list[dict[str, Any]], alpha: float = 0.05) -> list[dict[str, Any]]:
    """Each comparison with its Holm-adjusted verdict (``verdict_holm``) and the family's size added."""
    words = holm_verdicts(comparisons, alpha)
    return [{**c, "verdict_holm": w, "family_size": len(comparisons)} for c, w in zip(comparisons, words, strict=True)]


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> list[float]:
    """Wilson score interval of a success rate (sound at 0/K and K/K, where the normal interval is not)."""
    if trials <= 0:
        raise ValueError(f"trials must be > 0, got {trials}")

    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    rate = successes / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return [max(0.0, centre - half), min(1.0, centre + half)]


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
    device = jax.devices()[0]
    return {"platform": device.platform, "device_kind": device.device_kind, "devices": jax.device_count()}


def _versions() -> dict[str, str]:
    versions = package_versions()
    return {name: versions[name] for name in ("jax", "jaxlib", "gymnax")}


def _canonical(node) -> str:
    """An AST as text without docstrings, comments, formatting or empty fields (stable across Python versions
    that add empty fields, e.g. ``type_params``)."""
    if isinstance(node, list):
        body = node
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body = body[1:]  # a docstring
        return "[" + ",".join(_canonical(item) for item in body) + "]"
    if isinstance(node, ast.AST):
        fields = [(name, getattr(node, name, None)) for name in node._fields]
        parts = [f"{name}={_canonical(value)}" for name, value in fields if value not in (None, [])]
        return f"{type(node).__name__}(" + ",".join(parts) + ")"
    return repr(node)


def numerics_digest() -> str:
    """SHA-256 (12 hex digits) of the code that decides a stored baseline score: :data:`NUMERICS_SOURCES` and
    this module's :data:`NUMERICS_FUNCTIONS`, docstrings and comments left out."""
    package = Path(__file__).resolve().parents[1]  # metarl/
    files = []
    for entry in NUMERICS_SOURCES:
        path = package / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package)).encode())
        digest.update(_canonical(ast.parse(path.read_text()).body).encode())
    own = {node.name: node for node in ast.parse(Path(__file__).read_text()).body if isinstance(node, ast.FunctionDef)}
    for name in NUMERICS_FUNCTIONS:
        digest.update(name.encode() + _canonical(own[name]).encode())
    return digest.hexdigest()[:12]


# ------------------------------------------------------------------------------------------------ scoring


def stream_keys(stream: int, num_seeds: int):
    """Keys 0..num_seeds-1 of a seed stream; a prefix of a longer request (32 seeds are the first 32 of 64)."""
    base = jax.random.PRNGKey(stream)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(num_seeds))


def evaluation_lifetimes(config: MetaTrainConfig) -> list[int]:
    """The lifetimes a run is judged at: those it meta-trained on (log-uniform sampling: low, geometric mid, high)."""
    lifetimes = sorted(set(config.tasks.lifetimes_for(config.ppo)))
    if config.tasks.lifetime_sampling == "log_uniform" and len(lifetimes) >= 2:
        low, high = lifetimes[0], lifetimes[-1]
        lifetimes = sorted({low, int(round((low * high) ** 0.5)), high})
    return lifetimes


def make_scorer(ppo: PPOConfig, spec, objective, components=None, *, kind: str, last_k: int):
    """``scores(meta_params, lifetimes (L,), keys (S, 2), hparams=None) -> (L, S)``: one trained agent per
    (lifetime, seed), scored by ``kind``; NaN where the agent's losses diverged (``hparams``: an InnerHparams
    whose numbers may be traced, None for ``ppo``'s). Not jitted (callers vmap it further)."""
    train = make_train(ppo, spec, objective, **(inner_kwargs(components) if components is not None else {}))

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
    devices = jax.local_devices()
    if len(devices) == 1 or num_seeds % len(devices):
        return jax.jit(function)
    mesh = jax.make_mesh((len(devices),), ("seeds",), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)

    def sharded(*args):
        *rest, keys = args
        specs = tuple(P() for _ in rest) + (P("seeds"),)
        return jax.shard_map(function, mesh=mesh, in_specs=specs, out_specs=P(None, "seeds"), check_vma=False)(*rest, keys)

    return jax.jit(sharded)


def baseline_components(config: MetaTrainConfig, spec):
    """The hand-designed baseline's plug-ins: a uniform curriculum where the run discovers one, no shaping."""
    curriculum = curricula.make("uniform", space=spec.level_space) if config.curriculum.active else None
    return Components(curriculum, None, None, {}, {})


def _ppo_objective(clip_eps):
    """PPO as a drift objective whose clip ε may be traced (a grid vmapped in one compile)."""
    return drift_objective("ppo", lambda meta_params, ratio, advantages, context: ppo_drift(ratio, advantages, clip_eps))


def _discovers(part: dict[str, Any], hand_designed: Sequence[str]) -> bool:
    """Whether a curriculum or shaping (its config as ``to_dict`` gives it) is searched by the run: a registry entry
    that is neither off nor hand-designed, and not read from a learned file."""
    return part.get("name", "none") not in ("none", *hand_designed) and not part.get("file")


def discovered_shaping(config: MetaTrainConfig) -> bool:
    """Whether the run discovers a shaping (one with meta-parameters), so its verdict also faces the hand-designed ones."""
    return _discovers(to_dict(config.shaping), shaping_family.HAND_DESIGNED)


def discovered_curriculum(config: MetaTrainConfig) -> bool:
    """Whether the run discovers a curriculum, so its verdict also faces the hand-designed samplers."""
    return _discovers(to_dict(config.curriculum), curricula.HAND_DESIGNED)


def candidate_label(config: dict[str, Any]) -> str:
    """What a run discovered, from its config (``to_dict`` form, as config.json stores it): 'learned lpo', or
    'ppo + learned shaping (pd_bad)' where only a shaping or curriculum was discovered."""
    name = config.get("objective", "")
    try:  # an objective without meta-parameters (ppo, dpo) is hand-designed: the run discovered something else
        kwargs = json.loads(config.get("objective_kwargs") or "{}")
        learned = bool(jax.tree.leaves(objectives.make(name, **kwargs).init(jax.random.PRNGKey(0))))
    except Exception:  # a plug-in's objective not imported here: say what the config says
        learned = True
    parts = [f"learned {name}" if learned else name]
    shaping, curriculum = config.get("shaping") or {}, config.get("curriculum") or {}
    if _discovers(shaping, shaping_family.HAND_DESIGNED):
        parts.append(f"{shaping['name']} shaping ({shaping.get('heuristic', 'none')})")
    if _discovers(curriculum, curricula.HAND_DESIGNED):
        parts.append(f"{curriculum['name']} curriculum")
    return " + ".join(parts)


def family_members(config: MetaTrainConfig) -> dict[str, tuple[str, Any]]:
    """The hand-designed members of the families the run discovers in, beside PPO's own (no shaping, a uniform
    curriculum: the 'ppo' baseline): {key: (label, ShapingConfig or CurriculumConfig)}; each is PPO at the run's
    inner settings with that member plugged in."""
    members: dict[str, tuple[str, Any]] = {}
    if discovered_curriculum(config):
        members.update({f"curriculum_{name}": (f"PPO + {name} curriculum", CurriculumConfig(name=name))
                        for name in curricula.HAND_DESIGNED if name != "uniform"})
    if discovered_shaping(config):
        members.update({f"shaping_{name}": (f"PPO + {name} shaping ({config.shaping.heuristic})",
                                            ShapingConfig(name=name, heuristic=config.shaping.heuristic))
                        for name in shaping_family.HAND_DESIGNED if name != "none"})
    return members


def _score_key(config: MetaTrainConfig, ppo: PPOConfig, stream: int, num_seeds: int, lifetimes) -> dict[str, Any]:
    return {"envs": list(config.tasks.envs), "ppo": json.loads(json.dumps(to_dict(ppo))), "score": config.tasks.fitness,
            "last_k": config.tasks.last_k, "lifetimes": [int(n) for n in lifetimes], "stream": stream, "num_seeds": num_seeds,
            "baseline_curriculum": "uniform" if config.curriculum.active else "none", "versions": _versions(),
            "numerics": NUMERICS_VERSION}


def ppo_scores(config: MetaTrainConfig, env_specs, lifetimes, stream: int, num_seeds: int, ppo: PPOConfig | None = None,
               clip_eps: float = 0.2, store: Store | None = None, member: Any = None) -> np.ndarray:
    """Per-seed scores (E, L, S) of PPO with ``ppo`` (default: the run's inner settings) and, where given, a
    hand-designed ``member`` of a family (a ShapingConfig or CurriculumConfig; default: no shaping and, where the
    run has a curriculum, uniform sampling), measured once per key."""
    ppo = ppo or config.ppo
    key = {**_score_key(config, ppo, stream, num_seeds, lifetimes), "clip_eps": clip_eps}
    # keys without a member stay what they were (stored measurements hold)
    if isinstance(member, ShapingConfig):
        key["baseline_shaping"] = {"name": member.name, "heuristic": member.heuristic, "kwargs": member.kwargs_dict()}
    elif isinstance(member, CurriculumConfig):
        key["baseline_curriculum"] = {"name": member.name, "kwargs": member.kwargs_dict()}

    def compute():
        keys = stream_keys(stream, num_seeds)
        per_env = []
        for spec in env_specs:
            plugged = baseline_components(config, spec)
            if isinstance(member, ShapingConfig):
                built, heuristic, params = components.build_shaping(member, spec, ppo.gamma, jax.random.PRNGKey(0))
                plugged = plugged._replace(shaping=built, heuristic=heuristic, shaping_params=params)
            elif isinstance(member, CurriculumConfig):
                built, params = components.build_curriculum(member, spec, jax.random.PRNGKey(0))
                plugged = plugged._replace(curriculum=built, curriculum_params=params)
            scorer = make_scorer(ppo, spec, _ppo_objective(clip_eps), plugged,
                                 kind=config.tasks.fitness, last_k=config.tasks.last_k)
            per_env.append(np.asarray(over_devices(scorer, num_seeds)({}, jnp.asarray(lifetimes, jnp.int32), keys)))
        return {"scores": np.stack(per_env).tolist()}

    return np.asarray((store or Store(None)).get("ppo_scores", key, compute)["scores"], np.float64)


def normalized_scores(scores: np.ndarray, references, normalize: bool) -> np.ndarray:
    """(..., E, L, S) scores normalized per env with ``references`` (initial, ppo) when ``normalize``; else as given."""
    scores = np.asarray(scores, np.float64)
    if normalize:
        initial = np.asarray(references.initial, np.float64)[:, None, None]
        span = np.asarray(references.ppo, np.float64)[:, None, None] - initial
        scores = (scores - initial) / np.where(np.abs(span) > 1e-6, span, 1.0)
    return scores


def per_seed_score(scores: np.ndarray, references, normalize: bool) -> np.ndarray:
    """(E, L, S) -> (S,): normalized per env when ``normalize``, averaged over envs and lifetimes."""
    return normalized_scores(scores, references, normalize).mean(axis=(0, 1))


def references_from_store(config: MetaTrainConfig, env_specs: list, store: Store, command=None, progress=None):
    """The normalization references (:class:`metarl.meta.tasks.References`) of ``config`` on
    ``tasks.reference_seeds`` seeds of their own stream, measured once per identical inner config and read
    from ``store`` afterwards."""
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

AXES = ("lr", "clip_eps", "update_epochs", "anneal_lr")
NUMERIC_AXES = ("lr", "clip_eps", "update_epochs")  # extended when the best cell sits on their edge


def initial_axes(verdict: VerdictConfig) -> dict[str, tuple]:
    return {"lr": tuple(verdict.tuned_lrs), "clip_eps": tuple(verdict.tuned_clips), "update_epochs": tuple(verdict.tuned_epochs),
            "anneal_lr": tuple(verdict.tuned_anneal)}


def axis_bounds(verdict: VerdictConfig) -> dict[str, tuple]:
    return {"lr": tuple(verdict.tuned_lr_bounds), "clip_eps": tuple(verdict.tuned_clip_bounds),
            "update_epochs": tuple(verdict.tuned_epochs_bounds)}


def grid_cells(axes: dict[str, Sequence]) -> list[dict[str, Any]]:
    return [dict(zip(AXES, cell, strict=True)) for cell in itertools.product(*(axes[a] for a in AXES))]


def tuning_grid(verdict: VerdictConfig) -> list[dict[str, Any]]:
    """The grid's starting cells (before any extension)."""
    return grid_cells(initial_axes(verdict))


def _step_outward(axis: str, value, upward: bool, bounds: tuple):
    """The next value past an edge: lr ×3 or ÷3, clip ε ±0.1, epochs ×2 or ÷2, clamped to the axis's bounds."""
    low, high = bounds
    if axis == "lr":
        new = value * 3.0 if upward else value / 3.0
    elif axis == "clip_eps":
        new = value + 0.1 if upward else value - 0.1
    else:
        new = value * 2 if upward else max(1, value // 2)
    new = min(max(new, low), high)
    return round(new, 10) if axis != "update_epochs" else int(new)


def extend_axes(axes: dict[str, tuple], bests: Sequence[dict[str, Any]], bounds: dict[str, tuple]):
    """One extension round: for every best cell (one per env and lifetime) on the lowest or highest value of a
    numeric axis, that axis gets the next value outward. Returns (new axes, {axis: [edges a bound stopped]})."""
    new_axes = {name: tuple(values) for name, values in axes.items()}
    stopped: dict[str, list[str]] = {}
    for best in bests:
        for axis in NUMERIC_AXES:
            values = sorted(new_axes[axis])
            for upward, edge in ((False, min(axes[axis])), (True, max(axes[axis]))):
                if best[axis] != edge:  # a one-value axis is its own lower and upper edge
                    continue
                nxt = _step_outward(axis, edge, upward, bounds[axis])
                if nxt in values:
                    if nxt == edge:  # the edge is the bound itself
                        side = "upper" if upward else "lower"
                        stopped.setdefault(axis, [])
                        if side not in stopped[axis]:
                            stopped[axis].append(side)
                    continue
                values = sorted({*values, nxt})
            new_axes[axis] = tuple(values)
    return new_axes, stopped


def search_grid(score_cells: Callable[[list[dict[str, Any]]], np.ndarray], axes: dict[str, Sequence], bounds: dict[str, tuple],
                max_rounds: int = 12, progress=None, measured_before: list[dict[str, Any]] | None = None,
                after_round: Callable[[list[dict[str, Any]]], None] | None = None) -> dict[str, Any]:
    """Measure a grid, then extend every numeric axis whose best cell sits on its edge, until every best is
    interior or a bound stops it.

    ``score_cells(cells) -> (C, G)``: a score per cell and group (a group is one env and lifetime; its best
    cell is chosen on its own), called only for cells not measured yet. Returns the final grid (``axes``),
    every measured cell with its scores (``table``), the best cell per group (``best_per_group``; ``informative``
    false where every cell scored alike, so the first cell stands in and does not extend the grid), the edges a bound
    stopped (``stopped_by_bound``) and the number of rounds. ``measured_before``: cells (with their
    ``scores``) an interrupted search measured, not measured again; ``after_round(cells)`` is handed every cell
    measured so far after each round (to keep them: a long search resumes where it stopped).
    """
    axes = {name: tuple(values) for name, values in axes.items()}
    measured: dict[tuple, np.ndarray] = {tuple(row[a] for a in AXES): np.asarray(row["scores"], np.float64)
                                         for row in measured_before or []}
    stopped: dict[str, list[str]] = {}
    rounds = 0
    while True:
        rounds += 1
        cells = grid_cells(axes)
        missing = [c for c in cells if tuple(c[a] for a in AXES) not in measured]
        if missing:
            scores = np.asarray(score_cells(missing), np.float64)
            for cell, row in zip(missing, scores, strict=True):
                measured[tuple(cell[a] for a in AXES)] = np.atleast_1d(row)
            if after_round:
                after_round([dict(zip(AXES, cell, strict=True)) | {"scores": row.tolist()} for cell, row in measured.items()])
        table = np.stack([measured[tuple(c[a] for a in AXES)] for c in cells])  # (C, G)
        safe = np.where(np.isfinite(table), table, -np.inf)
        bests = [cells[int(np.argmax(safe[:, g]))] for g in range(table.shape[1])]
        # A group in which every cell scores alike (e.g. no seed finished an episode: all NaN) names no best cell:
        # its "best" is the first cell, on every edge, and following it would walk every axis to its bounds. A grid of
        # one scored cell still extends from it.
        informative = [bool(len(set(safe[:, g].tolist())) > 1 or (len(cells) == 1 and np.isfinite(table[0, g])))
                       for g in range(table.shape[1])]
        new_axes, new_stops = extend_axes(axes, [b for b, told in zip(bests, informative, strict=True) if told], bounds)
        for axis, sides in new_stops.items():
            stopped[axis] = sorted({*stopped.get(axis, []), *sides})
        if progress:
            named = [_cell_text(b) if told else "none (every cell scored alike)" for b, told in zip(bests, informative, strict=True)]
            progress(f"  tuned PPO grid, round {rounds}: {len(cells)} cells; best " + "; ".join(named))
        if new_axes == axes or rounds >= max_rounds:
            break
        axes = new_axes
    return {"axes": {name: list(values) for name, values in axes.items()},
            "table": [{**c, "scores": measured[tuple(c[a] for a in AXES)].tolist()} for c in cells],
            "best_per_group": bests, "stopped_by_bound": stopped, "rounds": rounds, "informative": informative,
            "interior": {axis: [_is_interior(axes[axis], best[axis]) for best in bests] for axis in NUMERIC_AXES}}


def _is_interior(values, value) -> bool:
    return len(set(values)) > 1 and min(values) < value < max(values)


def _cell_text(cell: dict[str, Any]) -> str:
    return (f"lr {cell['lr']:g}, clip {cell['clip_eps']:g}, {cell['update_epochs']} epochs" +
            (", annealed" if cell["anneal_lr"] else ""))


def tuned_ppo(config: MetaTrainConfig, env_specs, references, store: Store | None = None, progress=None) -> dict[str, Any]:
    """PPO's best grid cell per env and lifetime, chosen on the selection seeds by the IQM of the per-seed
    (normalized) score, on a grid extended until every best cell is interior or bounded (:func:`search_grid`).

    Cells that differ only in learning rate and clip ε share one compile (both traced, vmapped); each
    (epochs, annealing) pair compiles once per round that adds cells to it. Returns ``best`` (env -> lifetime ->
    cell), the final grid, the table of IQMs and which bounds stopped the search.
    """
    verdict = config.verdict
    store = store or Store(None)
    if len(env_specs) > 1:  # each env's own search: the one a run on that env alone makes (the store shares it)

        parts = {}
        for name, spec in zip(config.tasks.envs, env_specs, strict=True):
            alone = transfer_config(config, name)
            parts[name] = tuned_ppo(alone, [spec], references_from_store(alone, [spec], store) if config.tasks.normalize
                                    else References(np.zeros(1), np.ones(1)), store, progress)
        return {"best": {name: part["best"][name] for name, part in parts.items()},
                "per_env": {name: {k: part[k] for k in ("grid", "stopped_by_bound", "interior", "rounds")} for name, part in parts.items()}}
    lifetimes = evaluation_lifetimes(config)
    key = {**_score_key(config, config.ppo, SELECTION_STREAM, verdict.selection_seeds, lifetimes), "grid": initial_axes(verdict),
           "bounds": axis_bounds(verdict) if verdict.tuned_extend else None, "per": "env and lifetime",
           "normalize": config.tasks.normalize,
           "references": [np.asarray(references.initial).tolist(), np.asarray(references.ppo).tolist()]}
    key = json.loads(json.dumps(key))

    def score_cells(cells: list[dict[str, Any]]) -> np.ndarray:
        """(C, E * L): each cell's IQM over the selection seeds per env and lifetime."""
        keys = stream_keys(SELECTION_STREAM, verdict.selection_seeds)
        lifetimes_array = jnp.asarray(lifetimes, jnp.int32)
        raw = np.zeros((len(cells), len(env_specs), len(lifetimes), len(keys)))
        groups: dict[tuple, list[int]] = {}
        for index, cell in enumerate(cells):
            groups.setdefault((cell["update_epochs"], cell["anneal_lr"]), []).append(index)
        for (epochs, anneal), members in groups.items():
            lrs = jnp.asarray([cells[i]["lr"] for i in members], jnp.float32)
            clips = jnp.asarray([cells[i]["clip_eps"] for i in members], jnp.float32)
            group = dataclasses.replace(config.ppo, update_epochs=epochs, anneal_lr=anneal)
            for e, spec in enumerate(env_specs):
                def cell_scores(lrs, clips, keys, spec=spec):
                    def one_cell(lr, clip):
                        scorer = make_scorer(group, spec, _ppo_objective(clip), baseline_components(config, spec),
                                             kind=config.tasks.fitness, last_k=config.tasks.last_k)
                        return scorer({}, lifetimes_array, keys, InnerHparams(lr, group.ent_coef))

                    return jnp.moveaxis(jax.vmap(one_cell)(lrs, clips), 2, 1)  # (C, S, L): seeds on axis 1

                raw[members, e] = np.moveaxis(np.asarray(over_devices(cell_scores, len(keys))(lrs, clips, keys)), 1, 2)  # (C, L, S)
        per_group = normalized_scores(raw, references, config.tasks.normalize).reshape(len(cells), -1, len(keys))
        return np.asarray([[float(iqm(_floor_diverged(seeds))) for seeds in cell] for cell in per_group])

    def compute():
        bounds = axis_bounds(verdict) if verdict.tuned_extend else {a: (min(v), max(v)) for a, v in initial_axes(verdict).items()
                                                                      if a in NUMERIC_AXES}
        # Each round's cells are kept in the store as they are measured, so an interrupted search resumes there.
        before = store.load("tuned_ppo_partial", key)
        searched = search_grid(score_cells, initial_axes(verdict), bounds, progress=progress,
                               measured_before=before["cells"] if before else None,
                               after_round=lambda cells: store.save("tuned_ppo_partial", key, {"cells": cells}))
        names = list(config.tasks.envs)
        best = {name: {str(n): searched["best_per_group"][e * len(lifetimes) + li] for li, n in enumerate(lifetimes)}
                for e, name in enumerate(names)}
        table = [{k: row[k] for k in AXES} | {f"iqm {name} N={n}": row["scores"][e * len(lifetimes) + li]
                                              for e, name in enumerate(names) for li, n in enumerate(lifetimes)}
                 for row in searched["table"]]
        return {"best": best, "grid": searched["axes"], "stopped_by_bound": searched["stopped_by_bound"],
                "interior": searched["interior"], "rounds": searched["rounds"], "table": table, "stream": "selection"}

    values = store.get("tuned_ppo", key, compute)
    leftover = store.path("tuned_ppo_partial", key)
    if leftover is not None and leftover.is_file():
        leftover.unlink()  # the finished search is stored whole
    return values


def _floor_diverged(seeds: np.ndarray) -> np.ndarray:
    """A diverged seed (NaN) counts as the lowest score of its cell, never dropped (as in :func:`paired_comparison`)."""
    return np.where(np.isfinite(seeds), seeds, np.nanmin(seeds) if np.isfinite(seeds).any() else 0.0)


def _tuned_scores(config: MetaTrainConfig, env_specs, lifetimes, best: dict[str, dict[str, dict]], stream: str,
                  store: Store | None) -> np.ndarray:
    """Tuned PPO on the judging seeds (E, L, S): each env and lifetime at its own chosen cell (one measurement per
    distinct cell, over every env and lifetime, read from the store afterwards)."""
    names = list(config.tasks.envs)
    scores = np.zeros((len(names), len(lifetimes), config.verdict.num_seeds))
    measured: dict[tuple, np.ndarray] = {}
    for e, name in enumerate(names):
        for li, n in enumerate(lifetimes):
            cell = best[name][str(n)]
            signature = tuple(cell[a] for a in AXES)
            if signature not in measured:
                tuned = dataclasses.replace(config.ppo, lr=cell["lr"], update_epochs=cell["update_epochs"], anneal_lr=cell["anneal_lr"])
                measured[signature] = ppo_scores(config, env_specs, lifetimes, stream_seed(stream), config.verdict.num_seeds,
                                                 ppo=tuned, clip_eps=cell["clip_eps"], store=store)
            scores[e, li] = measured[signature][e, li]
    return scores


def tuned_ppo_alone(ppo: PPOConfig, env: str, lifetime: int, score: str, tuning: VerdictConfig, stream: str, num_seeds: int,
                    store: Store | None = None, progress=None) -> tuple[np.ndarray, dict[str, Any]]:
    """Tuned PPO for one env at one lifetime (``metarl eval --tuned-ppo``): the best cell of ``tuning``'s grid, picked on
    the selection stream by the IQM of the raw ``score`` (the search a meta-train verdict makes, at this lifetime alone),
    then trained on ``num_seeds`` seeds of the judging ``stream``: (scores (S,), the cell). Both go to ``store``."""
    alone = MetaTrainConfig(ppo=dataclasses.replace(ppo, total_timesteps=lifetime * ppo.batch_size),
                            tasks=TaskDistribution(envs=(env,), lifetimes=(lifetime,), fitness=score, normalize=False),
                            verdict=dataclasses.replace(tuning, num_seeds=num_seeds, stream=stream, tuned=True, transfer_envs=()))
    spec = [envs.make(env)]
    best = tuned_ppo(alone, spec, References(np.zeros(1), np.ones(1)), store, progress)["best"]
    return _tuned_scores(alone, spec, [lifetime], best, stream, store)[0, 0], best[env][str(lifetime)]


def tuned_label(best: dict[str, dict[str, dict]]) -> dict[str, Any]:
    """The tuned cell when one serves every env and lifetime (as a cell), else the per-env, per-lifetime table."""
    cells = [cell for per_lifetime in best.values() for cell in per_lifetime.values()]
    return cells[0] if all(c == cells[0] for c in cells) else best


# -------------------------------------------------------------------------------------------- the verdict


def candidate_scores(config: MetaTrainConfig, env_specs, objective, components, meta_params, stream: str, num_seeds: int) -> np.ndarray:
    """Raw scores (E, L, S) of ``meta_params`` at the run's inner settings on seeds 0..num_seeds-1 of ``stream``,
    paired with every baseline measured on that stream."""
    keys = stream_keys(stream_seed(stream), num_seeds)
    lifetimes_array = jnp.asarray(evaluation_lifetimes(config), jnp.int32)
    scores = []
    for spec, env_components in zip(env_specs, components, strict=True):
        scorer = make_scorer(config.ppo, spec, objective, env_components, kind=config.tasks.fitness, last_k=config.tasks.last_k)
        scores.append(np.asarray(over_devices(scorer, num_seeds)(meta_params, lifetimes_array, keys)))
    return np.stack(scores)


def judged_as_asked(stored: dict[str, Any], config: VerdictConfig, legacy: bool = False) -> bool:
    """Whether a stored meta-training verdict was judged as ``config`` asks: the same stream (verdicts stored before
    the test stream existed have none and were judged on the validation stream), as many seeds, the same transfer
    envs, tuned PPO or not, the same statistic. A finished run whose verdict config changed is judged again, nothing trained again.
    ``legacy``: a verdict stored before verdicts kept their seed keys (and streams) counts as judged as asked (a
    sweep's stored run stays complete; a rerun of its command still judges it again, with the keys)."""
    if legacy and "seed_keys" not in stored:
        return True
    return (stored.get("stream", "validation") == config.stream and len(stored.get("seed_keys", [])) == config.num_seeds
            and sorted(stored.get("transfer", {})) == sorted(config.transfer_envs)
            and ("tuned_ppo" in stored.get("against", {})) == config.tuned and stored.get("statistic", "iqm") == config.statistic)


def run_verdict(config: MetaTrainConfig, env_specs, candidate_objective, candidate_components, meta_params, references,
                store: Store | None = None, progress=None) -> dict[str, Any]:
    """The discovered meta-parameters against PPO (same settings) and tuned PPO on the judging seeds
    (``verdict.stream``: test for a final verdict, validation for a design choice)."""
    verdict = config.verdict
    lifetimes = evaluation_lifetimes(config)
    stream = verdict.stream
    keys = stream_keys(stream_seed(stream), verdict.num_seeds)
    candidate = candidate_scores(config, env_specs, candidate_objective, candidate_components, meta_params, stream, verdict.num_seeds)
    same = {"lr": config.ppo.lr, "clip_eps": 0.2, "update_epochs": config.ppo.update_epochs, "anneal_lr": config.ppo.anneal_lr}
    baselines = {"ppo": {"label": "PPO (same settings)", "config": same,
                         "baseline_scores": ppo_scores(config, env_specs, lifetimes, stream_seed(stream), verdict.num_seeds, store=store)}}
    for name, (label, member) in family_members(config).items():
        baselines[name] = {"label": label, "config": same, member.family: to_dict(member),
                           "baseline_scores": ppo_scores(config, env_specs, lifetimes, stream_seed(stream), verdict.num_seeds,
                                                         store=store, member=member)}
    if verdict.tuned:
        tuned = tuned_ppo(config, env_specs, references, store, progress)
        baselines["tuned_ppo"] = {"label": "tuned PPO", "config": tuned_label(tuned["best"]),
                                  "grid": ({"per_env": tuned["per_env"]} if "per_env" in tuned
                                           else {k: tuned[k] for k in ("grid", "stopped_by_bound", "interior", "rounds")}),
                                  "baseline_scores": _tuned_scores(config, env_specs, lifetimes, tuned["best"], stream, store)}
    normalize = config.tasks.normalize
    result = {
        "stream": stream,
        "seeds": stream_label(stream, verdict.num_seeds),
        "seed_keys": np.asarray(keys).tolist(),
        "score": config.tasks.fitness + (" (normalized: 0 untrained, 1 PPO reference)" if normalize else ""),
        "envs": list(config.tasks.envs),
        "lifetimes": lifetimes,
        "normalize": normalize,
        "references": {"initial": np.asarray(references.initial).tolist(), "ppo": np.asarray(references.ppo).tolist()},
        "equivalence_margin": verdict.equivalence_margin,
        "candidate_scores": candidate.tolist(),
        "against": {},
    }
    if verdict.statistic != "iqm":  # IQM verdicts keep the fields they were stored with
        result["statistic"] = verdict.statistic
    result["against"] = compare_against(result, baselines)
    if len(env_specs) > 1:
        result["per_env"] = {name: env_slice(result, e) for e, name in enumerate(result["envs"])}
    return result


def env_slice(result: dict[str, Any], e: int) -> dict[str, Any]:
    """Env ``e`` of a verdict over several envs, judged alone from the same stored scores: its own references,
    the candidate's and each baseline's scores on it (tuned PPO at that env's own cells), Holm over its baselines."""
    name = result["envs"][e]
    part = {**{k: v for k, v in result.items() if k not in ("against", "per_env", "transfer")}, "envs": [name],
            "references": {side: [values[e]] for side, values in result["references"].items()},
            "candidate_scores": [result["candidate_scores"][e]]}
    baselines = {}
    for key, entry in result["against"].items():
        config = entry["config"]
        if "lr" not in config:  # a per-env, per-lifetime table: this env's cells
            config = tuned_label({name: config[name]})
        grid = entry.get("grid")
        if grid and "per_env" in grid:
            grid = grid["per_env"][name]
        baselines[key] = {**{k: v for k, v in entry.items() if k in ("label", "shaping", "curriculum")}, **({"grid": grid} if grid else {}),
                          "config": config,
                          "baseline_scores": [entry["baseline_scores"][e]]}
    part["against"] = compare_against(part, baselines)
    return part


def transfer_config(config: MetaTrainConfig, env: str) -> MetaTrainConfig:
    """``config`` meta-trained nowhere else but judged on ``env`` alone: the config whose baselines (references, PPO,
    tuned PPO) are the ones a run meta-trained on ``env`` itself compares against, so the store shares them."""
    return dataclasses.replace(config, tasks=dataclasses.replace(config.tasks, envs=(env,)),
                               verdict=dataclasses.replace(config.verdict, transfer_envs=()))


def transfer_verdict(config: MetaTrainConfig, env: str, candidate_objective, meta_params, store: Store | None = None,
                     progress=None) -> dict[str, Any]:
    """The discovered meta-parameters judged on ``env``, an env meta-training never saw, against that env's own
    PPO and tuned PPO, normalized by that env's own references."""
    single = transfer_config(config, env)
    spec = envs.make(env)
    candidate_components = [components.build(config.curriculum, config.shaping, spec, config.ppo.gamma, jax.random.PRNGKey(0))]
    store = store or Store(None)
    references = references_from_store(single, [spec], store)
    result = run_verdict(single, [spec], candidate_objective, candidate_components, meta_params, references, store, progress)
    result["seen_in_meta_training"] = False
    return result


def compare_against(result: dict[str, Any], baselines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every baseline's paired comparison with the candidate, from the raw (E, L, S) scores stored in ``result``
    alone (so a stored verdict reprints exactly: :func:`reprint`), with Holm's correction over the baselines."""
    references = References(np.asarray(result["references"]["initial"]), np.asarray(result["references"]["ppo"]))
    candidate = per_seed_score(np.asarray(result["candidate_scores"]), references, result["normalize"])
    against = {}
    for name, baseline in baselines.items():
        scores = np.asarray(baseline["baseline_scores"], np.float64)
        comparison = paired_comparison(candidate, per_seed_score(scores, references, result["normalize"]),
                                       margin=result["equivalence_margin"], statistic=result.get("statistic", "iqm"))
        against[name] = {**{k: v for k, v in baseline.items() if k != "baseline_scores"}, **comparison,
                         "baseline_scores": scores.tolist()}
    for name, row in zip(against, with_holm(list(against.values())), strict=True):
        against[name] = row
    return against


def reprint(result: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A stored verdict recomputed from its stored per-seed scores alone: (the recomputed verdict, the fields
    where it differs from the stored one; empty when the stored verdict is what its scores say). Its per-env
    parts are re-sliced from the whole, its transfer verdicts recomputed from their own scores."""
    recomputed = dict(result)
    recomputed["against"] = compare_against(result, {name: {k: v for k, v in entry.items() if k in ("label", "config", "grid",
                                                                                                      "shaping", "curriculum",
                                                                                                      "baseline_scores")}
                                                     for name, entry in result["against"].items()})
    mismatches = []
    for name, entry in result["against"].items():
        for field_name, value in recomputed["against"][name].items():
            if field_name in entry and not _close(entry[field_name], value):
                mismatches.append(f"{name}.{field_name}")
    if "per_env" in result:
        recomputed["per_env"] = {env: env_slice(recomputed, e) for e, env in enumerate(result["envs"])}
        for env, part in result["per_env"].items():
            mismatches += [f"per_env.{env}.{m}" for m in _part_mismatches(part, recomputed["per_env"].get(env))]
    if "transfer" in result:
        recomputed["transfer"] = {}
        for env, part in result["transfer"].items():
            recomputed["transfer"][env], found = reprint(part)
            mismatches += [f"transfer.{env}.{m}" for m in found]
    return recomputed, mismatches


def _part_mismatches(stored: dict[str, Any], recomputed: dict[str, Any] | None) -> list[str]:
    if recomputed is None:
        return ["missing"]
    return [f"{name}.{k}" for name, entry in stored["against"].items() for k, v in recomputed["against"][name].items()
            if k in entry and not _close(entry[k], v)]


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def describe(result: dict[str, Any], candidate_label: str) -> str:
    """The verdict as the lines `metarl meta-train` prints."""
    lines = [f"verdict on {result['seeds']} · {', '.join(result['envs'])} · N = {', '.join(map(str, result['lifetimes']))} "
             f"· score: {result['score']}"]
    first = next(iter(result["against"].values()))
    name = STATISTIC_LABELS[result.get("statistic", "iqm")]
    lines.append(f"  {candidate_label:<28} {name} {_interval(first['candidate'])}")
    for entry in result["against"].values():
        config = entry["config"]
        setting = _cell_text(config) if "lr" in config else "tuned per env and lifetime"
        lines.append(f"  {entry['label'] + ' (' + setting + ')':<28} {name} {_interval(entry['baseline'])}")
        difference, improvement = entry["difference"], entry.get("probability_of_improvement")
        text = (f"      difference {compared_value(difference):+.3f} [{difference['ci'][0]:+.3f}, {difference['ci'][1]:+.3f}]"
                + (f", P(learned > baseline) {improvement['value']:.2f} [{improvement['ci'][0]:.2f}, {improvement['ci'][1]:.2f}]"
                   if improvement else "")
                + f" → {entry['verdict'].upper()}" + (f" (Holm over {entry['family_size']}: {entry['verdict_holm']})"
                                                     if "verdict_holm" in entry else "") + f" vs {entry['label']}")
        lines.append(text)
        grid = entry.get("grid")
        if grid and "per_env" in grid:
            lines.append("      grid: each env's own search, as a run on that env alone makes it (summary.json: grid.per_env)")
        elif grid:
            bounded = ", ".join(f"{axis} {'/'.join(sides)} bound" for axis, sides in grid["stopped_by_bound"].items())
            lines.append(f"      grid after {grid['rounds']} round(s): " + " × ".join(
                f"{axis} {'/'.join(f'{v:g}' for v in grid['grid'][axis])}" for axis in NUMERIC_AXES)
                + (f"; stopped by the {bounded}" if bounded else "; best cell interior on every numeric axis"
                   if all(all(v) for v in grid["interior"].values()) else ""))
    for kind, parts in (("alone", result.get("per_env", {})), ("never seen in meta-training", result.get("transfer", {}))):
        for env, part in parts.items():
            first = next(iter(part["against"].values()))
            lines.append(f"  on {env} {kind}: learned {name} {_interval(first['candidate'])}")
            for entry in part["against"].values():
                config = entry["config"]
                setting = _cell_text(config) if "lr" in config else "tuned per lifetime"
                difference = entry["difference"]
                lines.append(f"      vs {entry['label']} ({setting}) {name} {_interval(entry['baseline'])}: difference "
                             f"{compared_value(difference):+.3f} [{difference['ci'][0]:+.3f}, {difference['ci'][1]:+.3f}] → "
                             f"{entry['verdict'].upper()}" + (f" (Holm: {entry['verdict_holm']})" if "verdict_holm" in entry else ""))
    margin = result.get("equivalence_margin")
    if margin is not None:
        lines.append(f"  (equivalent: the CI of the difference inside ±{margin:g}; inconclusive otherwise)")
    return "\n".join(lines)


def _interval(side: dict[str, Any]) -> str:
    return f"{compared_value(side):.3f} [{side['ci'][0]:.3f}, {side['ci'][1]:.3f}]"


def trace_history(config: MetaTrainConfig, run_dir: str | Path, num_seeds: int, stream: str = "validation") -> dict[str, Any]:
    """A run's discovery over its lifetime: every chunk's mean meta-parameters (``<run>/learned/history/``) scored on
    the first ``num_seeds`` seeds of ``stream`` (validation: reading it is a design choice, e.g. when to stop) against
    tuned PPO and PPO on the same seeds, as the IQM of the per-seed score. Returns the per-generation IQMs and the
    first generation at which the mean beats tuned PPO (None: never)."""
    if config.curriculum.name == "learned" or config.shaping.name in ("blend", "learned"):
        raise ValueError("trace_history follows a learned objective; the history keeps no curriculum or shaping parameters")
    run_dir = Path(run_dir)
    traced = dataclasses.replace(config, verdict=dataclasses.replace(config.verdict, stream=stream))
    store = Store(store_folder(config.reference_store, config.out))
    env_specs = [envs.make(name) for name in config.tasks.envs]
    references = references_from_store(traced, env_specs, store)
    refs = References(np.asarray(references.initial), np.asarray(references.ppo))
    lifetimes = evaluation_lifetimes(config)
    # The baselines a verdict on this stream measures (stored), cut to the first num_seeds (streams are prefix-stable).
    full = max(num_seeds, config.verdict.num_seeds)
    baselines = {"ppo": ppo_scores(traced, env_specs, lifetimes, stream_seed(stream), full, store=store)[..., :num_seeds]}
    if config.verdict.tuned:
        best = tuned_ppo(traced, env_specs, references, store)["best"]
        wide = dataclasses.replace(traced, verdict=dataclasses.replace(traced.verdict, num_seeds=full))
        baselines["tuned_ppo"] = _tuned_scores(wide, env_specs, lifetimes, best, stream, store)[..., :num_seeds]
    candidate_components = [components.build(config.curriculum, config.shaping, spec, config.ppo.gamma, jax.random.PRNGKey(0))
                         for spec in env_specs]
    rows = []
    for path in sorted((run_dir / "learned" / "history").glob("*.msgpack")):
        objective, params, _ = objectives.load(path)
        meta_params = components.joint(params, candidate_components[0])
        scores = candidate_scores(traced, env_specs, objective, candidate_components, meta_params, stream, num_seeds)
        rows.append({"generation": int(path.stem.rsplit("_g", 1)[1]),
                     "learned_iqm": float(iqm(_floor_diverged(per_seed_score(scores, refs, config.tasks.normalize))))})
    iqms = {name: float(iqm(_floor_diverged(per_seed_score(values, refs, config.tasks.normalize)))) for name, values in baselines.items()}
    above = [row["generation"] for row in rows if "tuned_ppo" in iqms and row["learned_iqm"] > iqms["tuned_ppo"]]
    return {"stream": stream_label(stream, num_seeds), "baseline_iqm": iqms, "generations": rows,
            "first_generation_above_tuned_ppo": above[0] if above else None}


def measure_baselines(config: MetaTrainConfig, command: list[str] | None = None, progress=None) -> dict[str, Any]:
    """Measure (or read) everything a verdict of ``config`` compares against, into its reference store:
    the normalization references, PPO and tuned PPO on the held-out seeds. Used to pay for them once,
    before timed runs (benchmarks/discovery.py)."""
    validate(config)
    store = Store(store_folder(config.reference_store, config.out))
    env_specs = [envs.make(name) for name in config.tasks.envs]
    references = references_from_store(config, env_specs, store, command)
    lifetimes = evaluation_lifetimes(config)
    stream = stream_seed(config.verdict.stream)
    measured = {"ppo": ppo_scores(config, env_specs, lifetimes, stream, config.verdict.num_seeds, store=store)}
    if config.verdict.tuned:
        best = tuned_ppo(config, env_specs, references, store, progress)["best"]
        measured["tuned_ppo"] = _tuned_scores(config, env_specs, lifetimes, best, config.verdict.stream, store)
    return measured
