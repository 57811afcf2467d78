"""Figures, each a function of files in results/ only (never of a live run).

    metarl plot results/          # every run folder below: meta_training.png, drift_*.png (drift_schedule_*.png for
                                  # TA-LPO) / targets_*.png, eval.png
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from metarl import components, envs, objectives
from metarl.analysis.curriculum import held_features, scorer_grid
from metarl.analysis.drift import ADVANTAGES, PROGRESS, RATIOS, drift_grid, temporal_variation
from metarl.analysis.shaping import learned_over_progress, random_rollout
from metarl.analysis.starc import TabularMaze, maze_rewards, starc_distance
from metarl.app.evaluation import load_eval
from metarl.config import ShapingConfig
from metarl.errors import ConfigError
from metarl.io.learned import load_learned
from metarl.io.results import read_index, read_metrics
from metarl.objectives.base import TrajectoryInputs
from metarl.objectives.ppo import ppo_drift
from metarl.stats import bootstrap_ci, iqm
from metarl.types import LifetimeContext

matplotlib.use("Agg")  # figures are files: no display, whatever backend the machine would pick


def _save(fig, out: Path, title: str | None = None) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_meta_training(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """ES: fitness (population mean and best) per generation; meta-gradients: the agents' return per step
    (right axis: meta-loss). Both: the evaluated mean meta-parameters."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    generation = np.array([r["generation"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    metagrad = "meta_loss" in rows[0]
    if metagrad:
        ax.plot(generation, [r["agent_return_mean"] for r in rows], alpha=0.6, label="agents' return (raw)")
        loss_ax = ax.twinx()
        loss_ax.plot(generation, [r["meta_loss"] for r in rows], color="tab:red", alpha=0.4)
        loss_ax.set_ylabel("meta-loss", color="tab:red")
    else:
        ax.plot(generation, [r["fitness_mean"] for r in rows], label="population mean")
        ax.plot(generation, [r["fitness_max"] for r in rows], alpha=0.5, label="population best")
    evaluated = [(r["generation"], r["mean_params_fitness"]) for r in rows if r.get("mean_params_fitness") is not None]
    if evaluated:
        ax.plot(*zip(*evaluated, strict=True), "o-", color="k", label="mean meta-params (progress seeds)")
    config = json.loads((run_dir / "config.json").read_text())["config"]
    normalized = config["tasks"]["normalize"]
    ax.set_xlabel("meta-gradient step" if metagrad else "generation")
    ax.set_ylabel("fitness (1 = PPO, 0 = untrained)" if normalized else "fitness")
    ax.set_title(f"{config['objective']} on {', '.join(config['tasks']['envs'])}")
    ax.legend(fontsize=8)
    return _save(fig, Path(out) if out else run_dir / "meta_training.png")


def plot_drift(learned_file: str | Path, out: str | Path | None = None, num_updates: int = 100) -> Path:
    """The learned drift D(r, A) as a function of r for A = ±1, at n/N = 0, 0.5 and 1 (as in the TA-LPO paper)."""
    learned_file = Path(learned_file)
    objective, params, _ = objectives.load(learned_file)
    ratios = jnp.linspace(0.5, 1.5, 201)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, advantage in zip(axes, (1.0, -1.0), strict=True):
        for progress in (0.0, 0.5, 1.0):
            context = LifetimeContext(jnp.float32(progress * num_updates), jnp.float32(num_updates))
            drift = objective.drift(params, ratios, jnp.full_like(ratios, advantage), context)
            ax.plot(ratios, drift, label=f"n/N = {progress:g}")
        ax.plot(ratios, ppo_drift(ratios, advantage, 0.2), "k:", label="PPO (ε = 0.2)")
        ax.set_title(f"A = {advantage:+g}")
        ax.set_xlabel("ratio r")
    axes[0].set_ylabel("drift D(r, A)")
    axes[0].legend(fontsize=8)
    out = Path(out) if out else learned_file.parent.parent / f"drift_{learned_file.stem}.png"
    return _save(fig, out, f"learned drift: {learned_file.stem}")


def plot_drift_schedule(learned_file: str | Path, out: str | Path | None = None, num_updates: int = 100) -> Path:
    """The learned drift over (r, A) at n/N = 0, 0.25, 0.5, 0.75 and 1, one heat map each on one colour scale,
    titled with the file's temporal variation (metarl.analysis.drift)."""
    learned_file = Path(learned_file)
    objective, params, _ = objectives.load(learned_file)
    grid = drift_grid(objective, params, PROGRESS, num_updates)
    fig, axes = plt.subplots(1, len(PROGRESS), figsize=(3.0 * len(PROGRESS), 3.4), sharey=True, layout="constrained")
    extent = (RATIOS[0], RATIOS[-1], ADVANTAGES[0], ADVANTAGES[-1])
    vmax = max(float(grid.max()), 1e-8)
    for ax, progress, values in zip(axes, PROGRESS, grid, strict=True):
        image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", vmin=0.0, vmax=vmax, cmap="viridis")
        ax.set_title(f"n/N = {progress:g}")
        ax.set_xlabel("ratio r")
    axes[0].set_ylabel("advantage A")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="drift D(r, A)")
    variation = temporal_variation(objective, params, num_updates)
    out = Path(out) if out else learned_file.parent.parent / f"drift_schedule_{learned_file.stem}.png"
    fig.suptitle(f"learned drift over the lifetime: {learned_file.stem} (temporal variation {variation:.3f})")
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_targets(learned_file: str | Path, out: str | Path | None = None, num_updates: int = 100) -> Path:
    """A target objective's π̂ and the mean of ŷ (on bins 0..m−1) for a one-step rollout, as a function of
    the reward, at n/N = 0, 0.5 and 1 (π(a|s) = 0.5, uniform predictions, not terminal)."""
    learned_file = Path(learned_file)
    objective, params, _ = objectives.load(learned_file)
    rewards = jnp.linspace(-1.0, 1.0, 101)
    m = objective.head_size
    uniform = jnp.full((1, rewards.size, m), 1.0 / m)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for progress in (0.0, 0.5, 1.0):
        context = LifetimeContext(jnp.float32(progress * num_updates), jnp.float32(num_updates))
        inputs = TrajectoryInputs(rewards[None], jnp.zeros((1, rewards.size), bool), jnp.zeros((1, rewards.size), bool),
                                  jnp.float32(0.99), jnp.full((1, rewards.size), 0.5), uniform, uniform, context)
        pi_hat, y_hat, _ = objective.targets(params, inputs)
        axes[0].plot(rewards, pi_hat[0], label=f"n/N = {progress:g}")
        axes[1].plot(rewards, y_hat[0] @ jnp.arange(m, dtype=jnp.float32), label=f"n/N = {progress:g}")
    axes[0].set_ylabel("policy target π̂")
    axes[1].set_ylabel("mean bin of ŷ")
    for ax in axes:
        ax.set_xlabel("reward r")
    axes[0].legend(fontsize=8)
    out = Path(out) if out else learned_file.parent.parent / f"targets_{learned_file.stem}.png"
    return _save(fig, out, f"learned targets: {learned_file.stem}")


def plot_learned(learned_file: str | Path) -> list[Path]:
    """The figures of a learned objective: its drift (drift objectives; with its schedule over (r, A) where it
    sees n/N) or its targets (target objectives)."""
    objective, _, kwargs = objectives.load(learned_file)
    if objective.drift is None:
        return [plot_targets(learned_file)]
    schedule = [plot_drift_schedule(learned_file)] if objective.name == "ta_lpo" or kwargs.get("progress") else []
    return [plot_drift(learned_file), *schedule]


def plot_eval(eval_dir: str | Path, out: str | Path | None = None) -> Path:
    """Return vs lifetime N per env, one line per objective: IQM over seeds with a 95 % bootstrap band.

    Raw returns, one panel per env (a ratio to a baseline would flip meaning on negative-return envs).
    """
    eval_dir = Path(eval_dir)
    data = load_eval(eval_dir / "eval.npz")
    names = [str(n) for n in data["objectives"]]
    scores = data["scores"]  # (objective, env, lifetime, seed)
    envs = [str(e) for e in data["envs"]]
    fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.5), squeeze=False)
    colors = plt.get_cmap("tab20" if len(names) > 10 else "tab10").colors  # one color per objective
    for e, (ax, env) in enumerate(zip(axes[0], envs, strict=True)):
        for o, name in enumerate(names):
            values = np.where(np.isfinite(scores[o, e]), scores[o, e], np.nan)
            centre = np.array([iqm(v[np.isfinite(v)]) if np.isfinite(v).any() else np.nan for v in values])
            bands = [bootstrap_ci(v[np.isfinite(v)]) if np.isfinite(v).sum() > 1 else (np.nan, np.nan) for v in values]
            color = colors[o % len(colors)]
            ax.plot(data["lifetimes"], centre, "o-", label=name, color=color)
            ax.fill_between(data["lifetimes"], [b[0] for b in bands], [b[1] for b in bands], alpha=0.2, color=color)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("lifetime N (agent updates)")
        ax.set_title(env)
    score = str(data["score"]) if "score" in data else "final_return"
    axes[0][0].set_ylabel(f"{score.replace('_', ' ')} (IQM over seeds, 95% CI)")
    axes[0][0].legend(fontsize=8)
    return _save(fig, Path(out) if out else eval_dir / "eval.png")


def plot_curves(eval_dir: str | Path) -> list[Path]:
    """Learning curves at the longest lifetime (env return per update, mean over seeds) and, for curricula,
    the share of each difficulty category sampled per update (mean over seeds), one panel per variant."""
    eval_dir = Path(eval_dir)
    data = load_eval(eval_dir / "eval.npz")
    if "curves" not in data:
        return []
    names, envs = [str(n) for n in data["objectives"]], [str(e) for e in data["envs"]]
    fig, axes = plt.subplots(1, len(envs), figsize=(4.5 * len(envs), 3.5), squeeze=False)
    for e, (ax, env) in enumerate(zip(axes[0], envs, strict=True)):
        for v, name in enumerate(names):
            curves = data["curves"][v, e]
            if np.isfinite(curves).any():  # tuned PPO's curves are not recorded
                counted = np.isfinite(curves).sum(axis=0)  # updates before any seed's first episode end have none
                mean = np.where(counted > 0, np.nansum(curves, axis=0) / np.maximum(counted, 1), np.nan)
                ax.plot(mean, label=name)
        ax.set_xlabel("update")
        ax.set_title(env)
    axes[0][0].set_ylabel("env return (mean over seeds)")
    axes[0][0].legend(fontsize=7)
    written = [_save(fig, eval_dir / "curves.png")]
    if "category_fraction" in data:
        fractions = data["category_fraction"]  # (variant, env, seed, update, category)
        shown = [v for v in range(len(names)) if np.isfinite(fractions[v]).any()]
        fig, axes = plt.subplots(len(envs), len(shown), figsize=(3.2 * len(shown), 2.8 * len(envs)), squeeze=False)
        for e in range(len(envs)):
            for column, v in enumerate(shown):
                mean = np.nanmean(fractions[v, e], axis=0)  # (update, category)
                ax = axes[e][column]
                ax.stackplot(np.arange(mean.shape[0]), mean.T, labels=[f"cat {c}" for c in range(mean.shape[1])])
                ax.set_title(names[v], fontsize=8)
                ax.set_xlabel("update")
        axes[0][0].set_ylabel("share of envs per difficulty category")
        axes[0][-1].legend(fontsize=6, loc="upper right")
        written.append(_save(fig, eval_dir / "category_fraction.png"))
    return written


def shaping_report(learned_file: str | Path) -> Path:
    """``<run>/shaping_report_<name>.json``: the discovered blend's weights, a learned shaping's heuristic weight and
    bonus at n/N = 0, 0.25, ..., 1 (:mod:`metarl.analysis.shaping`), and on a maze the STARC distance of the
    discovered, naive and potential shapings to the env reward (at n/N = 0, 0.5, 1)."""
    learned_file = Path(learned_file)
    run_dir = learned_file.parent.parent
    config = json.loads((run_dir / "config.json").read_text())["config"]
    env = envs.make(config["tasks"]["envs"][0])
    gamma = config["ppo"]["gamma"]
    shaping, heuristic, params = components.load_shaping(learned_file, env, gamma)
    report: dict = {"file": str(learned_file), "env": env.name, "heuristic": heuristic.name}
    learned = load_learned(learned_file, "shaping")
    if learned.name == "blend":  # a BARFI blend: phi2(s) = w2·s + b2 is the weight of r_aux
        obs = jnp.asarray(np.stack([np.asarray(env.reset(jax.random.PRNGKey(i), env.default_params)[0]).reshape(-1) for i in range(16)]))
        report["aux_weight_at_start_states"] = float(jnp.mean(obs @ params["w2"] + params["b2"]))
        report["aux_weight_bias_b2"] = float(params["b2"])
        report["bonus_bias_b1"] = float(params["b1"])
        report["discount"] = float(jax.nn.sigmoid(params["discount_logit"]))
    if learned.name == "learned" and env.action_kind == "discrete":  # its heuristic weight and bonus over the lifetime
        report["rollout"] = "1024 transitions of a uniform-random policy (seed 0)"
        report["over_progress"] = learned_over_progress(params, random_rollout(env, heuristic), learned.kwargs)
    if env.name.startswith("Maze") and env.level_space is None:
        tabular = TabularMaze(env.default_params)
        args = (tabular.next_state, tabular.terminal, gamma)
        distances = {}
        def hand_set(name):
            return components.build_shaping(ShapingConfig(name=name, heuristic=heuristic.name), env, gamma, jax.random.PRNGKey(0))[0], {}

        compared = {"discovered": (shaping, params), "naive": hand_set("naive"), "potential": hand_set("potential")}
        for label, (built, built_params) in compared.items():
            distances[label] = {str(p): round(starc_distance(*maze_rewards(tabular, built, built_params, heuristic, p), *args), 4)
                                for p in (0.0, 0.5, 1.0)}
        report["starc_distance_to_env_reward"] = distances
    out = run_dir / f"{learned_file.stem}.json".replace("shaping_", "shaping_report_")
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


def curriculum_report(learned_file: str | Path) -> Path:
    """``<run>/curriculum_report_<name>.json``: a learned curriculum's logit (its residual on the base sampler, where
    it has one) over a level's running success and training progress n/N (:mod:`metarl.analysis.curriculum`)."""
    learned_file = Path(learned_file)
    learned = load_learned(learned_file, "curriculum")
    report = {"file": str(learned_file), "name": learned.name, "kwargs": learned.kwargs,
              "base": learned.kwargs.get("base", "uniform"),
              "features_held": held_features(),
              "grid": scorer_grid(learned.params, learned.kwargs)}
    out = learned_file.parent.parent / f"{learned_file.stem}.json".replace("curriculum_", "curriculum_report_")
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out


def plot_sweep(root: str | Path) -> Path | None:
    """A sweep folder's ``index.csv``: every meta-training run's fitness per generation in one figure (the
    evaluated mean meta-parameters where recorded, else the population mean), labelled by run."""
    root = Path(root)
    runs = [row for row in read_index(root / "index.csv")
            if row["command"] == "meta-train" and (root / row["run"] / "metrics.jsonl").is_file()]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for row in runs:
        metrics = read_metrics(root / row["run"])
        key = "mean_params_fitness" if any(r.get("mean_params_fitness") is not None for r in metrics) else "fitness_mean"
        if "meta_loss" in metrics[0]:
            key = "agent_return_mean"
        points = [(r["generation"], r[key]) for r in metrics if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), "o-" if key == "mean_params_fitness" else "-", ms=3, label=f"{row['run']} ({key})")
    ax.set_xlabel("generation / meta-gradient step")
    ax.set_ylabel("fitness")
    ax.legend(fontsize=7)
    return _save(fig, root / "sweep.png", f"sweep {root.name}: {len(runs)} meta-training runs")


def plot_all(root: str | Path) -> list[Path]:
    """Regenerate every figure (and shaping report) below ``root`` from its files; a sweep's index.csv
    gives one more figure comparing its meta-training runs."""
    written = []
    for index in sorted(Path(root).rglob("index.csv")):
        figure = plot_sweep(index.parent)
        if figure is not None:
            written.append(figure)
    for config_path in sorted(Path(root).rglob("config.json")):
        run_dir = config_path.parent
        kind = json.loads(config_path.read_text()).get("kind")
        if kind == "meta-train" and (run_dir / "metrics.jsonl").is_file():
            written.append(plot_meta_training(run_dir))
            for learned in sorted((run_dir / "learned").glob("*.msgpack")):
                sidecar = json.loads(learned.with_suffix(".json").read_text())
                family = sidecar.get("family", "objective")
                if family == "objective" and sidecar.get("param_shapes", True):  # a hand-designed objective has nothing to draw
                    written.extend(plot_learned(learned))
                elif family == "shaping":
                    written.append(shaping_report(learned))
                elif family == "curriculum" and learned.stem == "curriculum_learned":
                    written.append(curriculum_report(learned))
        elif (run_dir / "eval.npz").is_file():
            written.append(plot_eval(run_dir))
            written.extend(plot_curves(run_dir))
    return written


def plot_main(args: list[str], argv: list[str]) -> int:
    """`metarl plot [FOLDER ...]`: every figure below each folder (default: results), redrawn from its files."""
    roots = [a for a in args if not a.startswith("-")] or ["results"]
    for root in roots:
        if not Path(root).is_dir():
            raise ConfigError(f"plot: {root!r} is not a folder")
        for path in plot_all(root):
            print(f"wrote {path}")
    return 0
