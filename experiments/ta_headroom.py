"""Headroom for time-awareness, from the stored eval runs of a study alone (results/ta_headroom by default).

    metarl sweep sweeps/ta_headroom.toml            # the eval runs (one member each, same validation seeds)
    python experiments/ta_headroom.py               # writes results/ta_headroom/headroom.{md,json,png}

Every eval run of the study trained its members on the same seeds of one stream, so their per-seed scores pair
up across runs. Each member is compared with the baseline member (``--baseline``, PPO at clip 0.2 by default) at
every env and lifetime N with metarl's paired verdict (IQM difference, bootstrap CI, equivalence margin 0.05 of
the baseline's IQM, Holm over the table). A member is *time-varying* when its name says it schedules something
over the lifetime (``to`` in a clip schedule, ``anneal``). The headroom questions, answered per N:
- does the best time-varying member beat the best constant member by more than the noise (paired CI > 0)?
- is the best member at the shortest N another member than at the longest N?
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load_members(root: Path) -> tuple[list[str], np.ndarray, list[str], list[int], str]:
    """(labels, scores (M, E, L, S), envs, lifetimes, stream) over every eval run below ``root``."""
    labels, blocks, envs, lifetimes, streams = [], [], None, None, set()
    for path in sorted(root.glob("*/eval.npz")):
        data = np.load(path)
        config = json.loads((path.parent / "config.json").read_text())["config"]
        run_envs, run_lifetimes = [str(e) for e in data["envs"]], [int(n) for n in data["lifetimes"]]
        if envs is None:
            envs, lifetimes = run_envs, run_lifetimes
        if (run_envs, run_lifetimes) != (envs, lifetimes):
            raise SystemExit(f"{path}: envs/lifetimes {run_envs}/{run_lifetimes} differ from {envs}/{lifetimes}")
        streams.add(config["heldout"])
        for index, objective in enumerate(data["objectives"]):
            name = str(objective)
            labels.append(path.parent.name if name == "ppo" else name)  # a run's PPO is named by its run
            blocks.append(data["scores"][index])
    if not blocks:
        raise SystemExit(f"no eval runs (*/eval.npz) under {root}")
    if len(streams) != 1 or streams == {"none"}:
        raise SystemExit(f"the runs must share one judging stream (validation or test) to pair up, got {sorted(streams)}")
    return labels, np.stack(blocks), envs, lifetimes, streams.pop()


def is_time_varying(label: str) -> bool:
    return "to" in label.split("clip")[-1] or "anneal" in label


def headroom(labels, scores, envs, lifetimes, baseline: str, stream: str, margin: float = 0.05) -> dict:
    from metarl.app.evaluation import verdict_table
    from metarl.app.verdict import paired_comparison
    from metarl.stats import iqm

    if baseline not in labels:
        raise SystemExit(f"baseline {baseline!r} is not among the members: {', '.join(labels)}")
    rows = verdict_table(scores, labels, labels.index(baseline), envs, lifetimes, margin, stream)
    answers = []
    for e, env in enumerate(envs):
        for li, n in enumerate(lifetimes):
            values = {label: float(iqm(scores[m, e, li])) for m, label in enumerate(labels)}
            constant = max((label for label in labels if not is_time_varying(label)), key=values.get)
            varying = max((label for label in labels if is_time_varying(label)), key=values.get, default=None)
            best = max(labels, key=values.get)
            answer = {"env": env, "lifetime": n, "best": best, "best_constant": constant, "best_time_varying": varying,
                      "iqm": values}
            if varying is not None:
                base = scores[labels.index(constant), e, li]
                comparison = paired_comparison(scores[labels.index(varying), e, li], base, margin=margin * abs(values[constant]))
                answer["time_varying_vs_constant"] = {"difference": comparison["difference"], "verdict": comparison["verdict"]}
            answers.append(answer)
    return {"stream": stream, "baseline": baseline, "members": labels, "envs": envs, "lifetimes": lifetimes,
            "num_seeds": int(scores.shape[-1]), "verdicts": rows, "per_lifetime": answers}


def markdown(result: dict) -> str:
    from metarl.app.evaluation import verdict_markdown

    lines = ["| env | N | best member | best constant | best time-varying | time-varying − constant [95% CI] | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for a in result["per_lifetime"]:
        tv = a.get("time_varying_vs_constant")
        cell = (f"{tv['difference']['iqm']:+.1f} [{tv['difference']['ci'][0]:+.1f}, {tv['difference']['ci'][1]:+.1f}] | {tv['verdict']}"
                if tv else "— | —")
        lines.append(f"| {a['env']} | {a['lifetime']} | {a['best']} ({a['iqm'][a['best']]:.1f}) | {a['best_constant']} "
                     f"({a['iqm'][a['best_constant']]:.1f}) | {a['best_time_varying']} | {cell} |")
    short, long = result["lifetimes"][0], result["lifetimes"][-1]
    for env in result["envs"]:
        best = {a["lifetime"]: a["best"] for a in result["per_lifetime"] if a["env"] == env}
        lines.append(f"\n{env}: the best member at N = {short} is {best[short]}, at N = {long} {best[long]}"
                     + (" (the same member)." if best[short] == best[long] else " (they differ)."))
    return ("Headroom for time-awareness: every member on the same "
            f"{result['num_seeds']} seeds of the {result['stream']} stream (paired), AUC return.\n\n" + "\n".join(lines)
            + "\n\nEvery member against " + result["baseline"] + ":\n\n" + verdict_markdown(result["verdicts"]))


def figure(result: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs, lifetimes, labels = result["envs"], result["lifetimes"], result["members"]
    fig, axes = plt.subplots(1, len(envs), figsize=(6.5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for m, label in enumerate(labels):
            rows = {r["lifetime"]: r for r in result["verdicts"] if r["objective"] == label and r["env"] == env}
            if not rows:  # the baseline
                continue
            centre = np.array([rows[n]["difference"]["iqm"] for n in lifetimes])
            ci = np.array([rows[n]["difference"]["ci"] for n in lifetimes])
            ax.errorbar(np.arange(len(lifetimes)) + 0.06 * (m - len(labels) / 2), centre,
                        yerr=np.abs(ci.T - centre[None]), fmt="o--" if is_time_varying(label) else "s-", capsize=3, label=label)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(range(len(lifetimes)), [str(n) for n in lifetimes])
        ax.set_xlabel("lifetime N (updates)")
        ax.set_ylabel(f"IQM AUC − {result['baseline']}")
        ax.set_title(env)
        ax.legend(fontsize=7)
    fig.suptitle(f"time-varying (dashed) vs constant members, {result['stream']} seeds")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="results/ta_headroom")
    parser.add_argument("--baseline", default="ppo_clip0.2")
    args = parser.parse_args(argv)
    root = Path(args.root)
    labels, scores, envs, lifetimes, stream = load_members(root)
    result = headroom(labels, scores, envs, lifetimes, args.baseline, stream)
    (root / "headroom.md").write_text(markdown(result) + "\n")
    (root / "headroom.json").write_text(json.dumps(result, indent=1) + "\n")
    figure(result, root / "headroom.png")
    print(markdown(result))
    print(f"wrote {root / 'headroom.md'}, headroom.json, headroom.png")


if __name__ == "__main__":
    main()
