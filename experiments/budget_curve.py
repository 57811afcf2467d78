"""Budget or recipe? The discovery's verdict against PPO and tuned PPO as a function of the outer budget, from the
stored meta-training runs of a study alone (results/acrobot_budget by default).

    metarl sweep sweeps/acrobot_budget.toml        # the runs (~45 min, 2 CPU cores)
    python experiments/budget_curve.py              # writes results/acrobot_budget/budget.{md,json,png}

Every meta-train run folder under the study holds its verdict (summary.json: per-seed scores of the discovery,
of PPO at the same settings and of tuned PPO on the run's judging seeds, paired) and its config. A run's point:
its testbed (the inner loop's envs x steps per update), its ES schedule (constant, or decaying sigma and lr),
its budget (members x generations) and the paired difference to each baseline with its CI and verdict word, as
`metarl verdict` recomputes them. The table says which stream judged them (validation, for a design choice).

Evals named ``judge*`` (the study's last stage: every discovery again on 128 seeds) add a second table, from
their eval.npz alone: each learned objective against PPO at the same settings and against tuned PPO, paired on
the same seeds, with metarl's own verdict (:func:`metarl.app.evaluation.verdict_table`, raw AUC returns).
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path


def run_points(root: Path) -> list[dict]:
    points = []
    for summary_path in sorted(root.glob("*/summary.json")):
        summary = json.loads(summary_path.read_text())
        if "verdict" not in summary:
            continue
        config = json.loads((summary_path.parent / "config.json").read_text())["config"]
        outer, ppo = config["outer"], config["ppo"]
        verdict = summary["verdict"]
        kwargs = json.loads(config.get("objective_kwargs") or "{}")
        inner = "" if (ppo["lr"], ppo["update_epochs"]) == (0.01, 4) else f", lr {ppo['lr']:g}, {ppo['update_epochs']} epochs"
        if kwargs.get("learned_step"):  # the inner step size is meta-learned: its own column of the figure
            inner += f", learned step (gain {kwargs.get('step_gain', 1.0):g})"
        tasks = config["tasks"]
        statistic = tasks.get("seed_statistic", "mean")
        if (statistic, tasks["seeds_per_member"]) != ("mean", 2):  # the fitness aggregates a member's seeds otherwise
            inner += f", fitness {'IQM' if statistic == 'iqm' else 'mean'} of {tasks['seeds_per_member']} seeds"
        start = f"PPO (clip {kwargs.get('clip_eps', 0.2):g})" if kwargs.get("ppo_init") else "drift ≈ 0"
        point = {"run": summary_path.parent.name, "seed": config["seed"], "envs": verdict["envs"], "stream": verdict["stream"],
                 "testbed": f"{ppo['num_envs']}x{ppo['num_steps']}{inner}", "start": start, "population": outer["population_size"],
                 "generations": summary["generations"], "budget": outer["population_size"] * summary["generations"],
                 "schedule": "constant" if outer.get("sigma_decay", 1.0) == 1.0 and outer.get("lr_decay", 1.0) == 1.0
                 else f"decay {outer['sigma_decay']:g}, beta1 {outer.get('adam_b1', 0.9):g}",
                 "seconds": round(summary["seconds"], 1)}
        for name, entry in verdict["against"].items():
            point[name] = {"learned_iqm": entry["candidate"]["iqm"], "baseline_iqm": entry["baseline"]["iqm"],
                           "difference": entry["difference"]["iqm"], "ci": entry["difference"]["ci"], "verdict": entry["verdict"],
                           "verdict_holm": entry.get("verdict_holm"), "config": entry["config"]}
        points.append(point)
    return points


def eval_labels(path: Path, data) -> list[str]:
    """The objectives of the eval at ``path``, learned files as ``<stem> (<run folder>)`` from the eval's config: how the
    tables and the figure find a run (eval.npz holds eval's own labels, a bare stem where it judged one learned file)."""
    given = json.loads((path.parent / "config.json").read_text())["config"]["objectives"]
    learned = iter(Path(o) for o in given if o.endswith(".msgpack"))
    return [str(o) if str(o) in given or str(o) == "tuned_ppo" else f"{(f := next(learned)).stem} ({f.parent.parent.name})"
            for o in data["objectives"]]


def judged_rows(root: Path) -> list[dict]:
    """Every learned objective of every ``judge*`` eval against its PPO and its tuned PPO (paired, same seeds)."""
    from metarl.app.evaluation import load_eval, verdict_table

    rows = []
    for path in sorted(root.glob("judge*/eval.npz")):
        data = load_eval(path)
        labels = eval_labels(path, data)
        for baseline in ("ppo", "tuned_ppo"):
            for row in verdict_table(data["scores"], labels, labels.index(baseline), data["envs"], data["lifetimes"],
                                     stream="validation"):
                if row["objective"] not in ("ppo", "tuned_ppo"):
                    rows.append({"eval": path.parent.name, "num_seeds": int(data["scores"].shape[-1]), **row})
    return rows


def judged_table(rows: list[dict]) -> str:
    lines = ["| eval | learned objective | learned IQM | baseline | baseline IQM | difference [95% CI, paired] | P(learned > base) "
             "| verdict (Holm) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['eval']} | {r['objective']} | {r['candidate']['iqm']:.1f} | {r['baseline_objective']} "
                     f"| {r['baseline']['iqm']:.1f} | {r['difference']['iqm']:+.1f} [{r['difference']['ci'][0]:+.1f}, "
                     f"{r['difference']['ci'][1]:+.1f}] | {r['probability_of_improvement']['value']:.2f} "
                     f"| {r['verdict']} ({r['verdict_holm']}) |")
    seeds = sorted({r["num_seeds"] for r in rows})
    lines += ["", f"Judged on {'/'.join(map(str, seeds))} seeds of the validation stream, paired across every objective of "
              "an eval; raw AUC returns of Acrobot-v1 (higher is better); equivalent: CI inside ±5 % of the baseline's IQM; "
              "Holm over each baseline's comparisons in that eval."]
    return "\n".join(lines)


FAILED_AUC = -400.0  # Acrobot's AUC floor is -500 (no goal reached in any episode): below this a seed barely learned


def spread_rows(root: Path) -> list[dict]:
    """Per ``judge*`` eval and objective, how its 128 scores spread: the IQM (what the verdict compares), the mean and
    the number of seeds below :data:`FAILED_AUC`. Descriptive only: it shows what the IQM trims, not a verdict."""
    import numpy as np

    from metarl.app.evaluation import load_eval
    from metarl.stats import iqm

    rows = []
    for path in sorted([*root.glob("judge*/eval.npz"), *root.glob("finelr*/eval.npz")]):
        data = load_eval(path)
        for label, scores in zip(eval_labels(path, data), np.asarray(data["scores"])[:, 0, 0, :], strict=True):
            rows.append({"eval": path.parent.name, "objective": label,
                         "iqm": float(iqm(scores)), "mean": float(np.mean(scores)), "failed": int(np.sum(scores < FAILED_AUC)),
                         "num_seeds": int(scores.shape[-1])})
    return rows


def spread_table(rows: list[dict]) -> str:
    lines = ["| eval | objective | IQM | mean | seeds below −400 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['eval']} | {r['objective']} | {r['iqm']:.1f} | {r['mean']:.1f} | {r['failed']} of {r['num_seeds']} |" for r in rows]
    lines += ["", "The same scores, described (not judged): the IQM the verdict compares trims the quarter of seeds that learn "
              "least, where a seed that barely reaches the goal (AUC below −400 of a floor of −500) falls; the mean counts them."]
    return "\n".join(lines)


def fine_lr_rows(root: Path) -> list[dict]:
    """PPO cells between tuned PPO's grid points (``finelr*`` evals: one PPO config each, on the judges' 128 validation
    seeds) against tuned PPO's scores from the ``judge*`` evals, paired seed by seed (the same stream and count: the
    same seeds; every judge holds the same tuned PPO scores, read from the store, which this checks)."""
    import numpy as np

    from metarl.app.evaluation import load_eval, verdict_table

    tuned = []
    for path in sorted(root.glob("judge*/eval.npz")):
        data = load_eval(path)
        names = [str(o) for o in data["objectives"]]
        if "tuned_ppo" in names:
            tuned.append(np.asarray(data["scores"])[names.index("tuned_ppo")])
    if not tuned or any(not np.array_equal(t, tuned[0]) for t in tuned):
        raise SystemExit(f"{root}: the judge evals do not hold one and the same tuned PPO score array")
    rows = []
    for path in sorted(root.glob("finelr*/eval.npz")):
        data = load_eval(path)
        config = json.loads((path.parent / "config.json").read_text())["config"]
        clip = json.loads(config["objective_kwargs"]).get("clip_eps", 0.2)
        label = f"ppo (clip {clip:g}, lr {config['ppo']['lr']:g}, {config['ppo']['update_epochs']} epochs)"
        scores = np.stack([tuned[0], np.asarray(data["scores"])[0]])
        rows += [{"eval": path.parent.name, "num_seeds": int(scores.shape[-1]), **row}
                 for row in verdict_table(scores, ["tuned_ppo", label], 0, data["envs"], data["lifetimes"], stream="validation")]
    return rows


def fine_lr_table(rows: list[dict]) -> str:
    lines = ["| eval | PPO cell | IQM | tuned PPO IQM | difference [95% CI, paired] | P(cell > tuned) | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['eval']} | {r['objective']} | {r['candidate']['iqm']:.1f} | {r['baseline']['iqm']:.1f} "
              f"| {r['difference']['iqm']:+.1f} [{r['difference']['ci'][0]:+.1f}, {r['difference']['ci'][1]:+.1f}] "
              f"| {r['probability_of_improvement']['value']:.2f} | {r['verdict']} |" for r in rows]
    lines += ["", "PPO cells between tuned PPO's grid points (lr 0.001 and 0.003), on the same 128 validation seeds, paired with "
              "tuned PPO's scores there: what a finer learning rate alone does. Descriptive, not a tuned PPO (these cells were "
              "not picked on selection seeds)."]
    return "\n".join(lines)


def table(points: list[dict]) -> str:
    lines = ["| testbed | start | schedule | members x generations | meta-seed | learned IQM | vs PPO (same settings) | vs tuned PPO "
             "| wall s |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in sorted(points, key=lambda p: (p["testbed"], p["budget"], p["schedule"], p["seed"])):
        cells = []
        for name in ("ppo", "tuned_ppo"):
            if name in p:
                e = p[name]
                cells.append(f"{e['difference']:+.3f} [{e['ci'][0]:+.3f}, {e['ci'][1]:+.3f}] {e['verdict']}")
            else:
                cells.append("—")
        lines.append(f"| {p['testbed']} | {p['start']} | {p['schedule']} | {p['population']} x {p['generations']} | {p['seed']} "
                     f"| {p['ppo']['learned_iqm']:.3f} | {cells[0]} | {cells[1]} | {p['seconds']:.0f} |")
    streams = sorted({p["stream"] for p in points})
    lines += ["", f"Judged on 32 seeds of the {'/'.join(streams)} stream, paired; differences in normalized AUC (1 = PPO's reference "
              "gain at that testbed). Verdict words as `metarl verdict` prints them (equivalent: CI inside ±0.05)."]
    return "\n".join(lines)


def judged_points(points: list[dict], judged: list[dict]) -> list[dict]:
    """The 128-seed verdicts against tuned PPO, each placed at its run's testbed, budget, schedule and seed (the
    learned objective's label names its run folder: ``lpo (<run>)``)."""
    runs = {p["run"]: p for p in points}
    placed = []
    for row in judged:
        run = row["objective"].rsplit("(", 1)[-1].rstrip(")")
        if row["baseline_objective"] == "tuned_ppo" and run in runs:
            p = runs[run]
            placed.append({**{k: p[k] for k in ("testbed", "budget", "schedule", "seed")},
                           "difference": row["difference"]["iqm"], "ci": row["difference"]["ci"]})
    return placed


def _panel(ax, entries: list[dict], budgets: list[int]) -> None:
    markers, labelled = {"constant": "o"}, set()
    for e in entries:
        marker = markers.setdefault(e["schedule"], "s^vD"[len(markers) % 4])
        shift = 0.05 * (e["seed"] - 0.5) + (0.0 if e["schedule"] == "constant" else 0.12)  # seeds and schedules side by side
        label = None if e["schedule"] in labelled else e["schedule"]
        labelled.add(e["schedule"])
        ax.errorbar(e["budget"] * (1 + shift), e["difference"], yerr=[[e["difference"] - e["ci"][0]], [e["ci"][1] - e["difference"]]],
                    fmt=marker, color="C0" if e["schedule"] == "constant" else "C1", capsize=3, label=label)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(budgets, [str(b) for b in budgets], minor=False)
    ax.set_xticks([], minor=True)
    ax.set_xlim(min(budgets) / 1.5, max(budgets) * 1.5)
    if entries:
        ax.legend(fontsize=8)


def figure(points: list[dict], judged: list[dict], path: Path) -> None:
    """Top row: each run's own verdict (32 seeds, normalized AUC); bottom row (when ``judge*`` evals exist): the same
    runs judged again on 128 seeds (raw AUC return), both as the paired difference to tuned PPO, by outer budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    testbeds = sorted({p["testbed"] for p in points}, key=lambda t: (int(t.split("x")[0]), t))
    again = judged_points(points, judged)
    rows = 2 if again else 1
    fig, axes = plt.subplots(rows, len(testbeds), figsize=(5 * len(testbeds), 3.4 * rows), squeeze=False, sharey="row")
    for column, testbed in enumerate(testbeds):
        budgets = sorted({q["budget"] for q in points if q["testbed"] == testbed})
        own = [{**{k: p[k] for k in ("budget", "schedule", "seed")}, "difference": p["tuned_ppo"]["difference"], "ci": p["tuned_ppo"]["ci"]}
               for p in points if p["testbed"] == testbed and "tuned_ppo" in p]
        _panel(axes[0][column], own, budgets)
        title = textwrap.wrap(f"Acrobot-v1, {testbed} (envs x steps per update)", 52)
        axes[0][column].set_title("\n".join(title), fontsize=9)
        if rows == 2:
            _panel(axes[1][column], [e for e in again if e["testbed"] == testbed], budgets)
        axes[rows - 1][column].set_xlabel("outer budget (members x generations)")
    axes[0][0].set_ylabel("learned - tuned PPO, 32 seeds\n(normalized AUC), 95% CI")
    if rows == 2:
        axes[1][0].set_ylabel("learned - tuned PPO, 128 seeds\n(AUC return), 95% CI")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(points: list[dict], judged: list[dict], spread: list[dict], fine_lr: list[dict]) -> str:
    """budget.md: the runs' own verdicts, then (where ``judge*`` evals exist) their 128-seed verdicts and spread, and
    (where ``finelr*`` evals exist) PPO between tuned PPO's grid points."""
    text = table(points)
    if judged:
        text += "\n\n" + judged_table(judged) + "\n\n" + spread_table(spread)
    if fine_lr:
        text += "\n\n" + fine_lr_table(fine_lr)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="results/acrobot_budget")
    root = Path(parser.parse_args().root)
    points = run_points(root)
    if not points:
        raise SystemExit(f"{root}: no meta-train run with a verdict")
    judged, spread = judged_rows(root), spread_rows(root)
    fine_lr = fine_lr_rows(root) if judged else []
    text = markdown(points, judged, spread, fine_lr)
    (root / "budget.md").write_text(text + "\n")
    (root / "budget.json").write_text(json.dumps({"runs": points, "judged": judged, "spread": spread, "fine_lr": fine_lr},
                                                 indent=1, default=float) + "\n")
    figure(points, judged, root / "budget.png")
    print(text)
    print(f"wrote {root / 'budget.md'}, budget.json, budget.png")


if __name__ == "__main__":
    main()
