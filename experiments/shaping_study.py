"""The shaping study's tables and figure, from its stored runs alone (results/shaping by default).

    metarl sweep sweeps/shaping.toml               # the runs (headroom, 12 meta-training runs, the test evals)
    python experiments/shaping_study.py             # writes results/shaping/study.{md,json} and weights.png

- **Verdicts** (test stream): each ``test_<heuristic>`` eval's verdict.json, every learned shaping against the best
  hand-designed shaping (none, naive, potential) per lifetime N, as `metarl verdict` recomputes it; per arm (with
  or without n/N) the number of meta-seeds whose shaping is *better* or *equivalent* (≥ the best) after Holm.
- **Against none**: every learned shaping against no shaping, recomputed from the evals' eval.npz (the helpful
  heuristic's target: learned > none).
- **Weights**: each meta-training run's shaping report (``shaping_report_learned.json``, written by `metarl plot`):
  the heuristic weight w and the bonus b of r + w r_aux + b at n/N = 0 .. 1 on a fixed random-policy rollout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def verdict_rows(root: Path) -> list[dict]:
    rows = []
    for path in sorted(root.glob("test_*/verdict.json")):
        heuristic = path.parent.name.removeprefix("test_")
        for row in json.loads(path.read_text()):
            run = row["objective"].split("(")[-1].rstrip(")") if "(" in row["objective"] else row["objective"]
            rows.append({"heuristic": heuristic, "run": run, "arm": "noprogress" if "_noprogress_" in run else "progress",
                         "lifetime": row["lifetime"], "baseline": row["baseline_objective"], "learned_iqm": row["candidate"]["iqm"],
                         "baseline_iqm": row["baseline"]["iqm"], "difference": row["difference"]["iqm"], "ci": row["difference"]["ci"],
                         "verdict": row["verdict"], "verdict_holm": row["verdict_holm"]})
    return rows


def against_none_rows(root: Path) -> list[dict]:
    """Each learned shaping against no shaping ('ppo'), recomputed from each test eval's eval.npz with metarl's verdict
    (Holm over that table): the helpful heuristic's target is learned > none."""
    import numpy as np

    from metarl.app.evaluation import verdict_table

    rows = []
    for path in sorted(root.glob("test_*/eval.npz")):
        data = np.load(path)
        labels = [str(label) for label in data["objectives"]]
        learned = tuple(not bool(h) for h in data["hand_designed"])
        scores = np.concatenate([data["scores"][[0]], data["scores"][list(np.flatnonzero(learned))]])
        table = verdict_table(scores, [labels[0]] + [labels[i] for i in np.flatnonzero(learned)], 0, [str(e) for e in data["envs"]],
                              [int(n) for n in data["lifetimes"]], 0.05, "test")
        for row in table:
            rows.append({"heuristic": path.parent.name.removeprefix("test_"), "run": row["objective"].split("(")[-1].rstrip(")"),
                         "lifetime": row["lifetime"], "difference": row["difference"]["iqm"], "ci": row["difference"]["ci"],
                         "verdict_holm": row["verdict_holm"]})
    return rows


def weight_rows(root: Path) -> list[dict]:
    rows = []
    for path in sorted(root.glob("*/shaping_report_learned.json")):
        report = json.loads(path.read_text())
        rows.append({"run": path.parent.name, "heuristic": report["heuristic"], "over_progress": report["over_progress"]})
    return rows


def success_counts(rows: list[dict]) -> list[dict]:
    """Per heuristic, arm and N: meta-seeds whose shaping is at least the best hand-designed (better or equivalent, Holm)."""
    counts: dict[tuple, dict] = {}
    for row in rows:
        entry = counts.setdefault((row["heuristic"], row["arm"], row["lifetime"]), {"at_least_best": 0, "better": 0, "runs": 0})
        entry["runs"] += 1
        entry["better"] += row["verdict_holm"] == "better"
        entry["at_least_best"] += row["verdict_holm"] in ("better", "equivalent")
    return [{"heuristic": h, "arm": a, "lifetime": n, **v} for (h, a, n), v in sorted(counts.items())]


def markdown(verdicts: list[dict], counts: list[dict], weights: list[dict], against_none: list[dict]) -> str:
    lines = ["| heuristic | run | N | learned IQM | best hand-designed | its IQM | difference [95% CI] | verdict (Holm) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in verdicts:
        lines.append(f"| {r['heuristic']} | {r['run']} | {r['lifetime']} | {r['learned_iqm']:.1f} | {r['baseline']} | "
                     f"{r['baseline_iqm']:.1f} | {r['difference']:+.1f} [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}] | "
                     f"{r['verdict']} ({r['verdict_holm']}) |")
    lines += ["", "Test stream, paired; raw AUC return of CartPole-v1 (the env's own reward); equivalent: the CI inside ±5 % "
              "of the baseline's IQM; Holm over every comparison of an eval.", "",
              "| heuristic | arm | N | at least the best hand-designed (Holm) | better |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c['heuristic']} | {c['arm']} | {c['lifetime']} | {c['at_least_best']} of {c['runs']} | {c['better']} of {c['runs']} |"
              for c in counts]
    lines += ["", "| heuristic | run | N | vs none: difference [95% CI] | verdict (Holm) |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['heuristic']} | {r['run']} | {r['lifetime']} | {r['difference']:+.1f} [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}] | "
              f"{r['verdict_holm']} |" for r in against_none]
    lines += ["", "| run | w at n/N = 0, 0.25, 0.5, 0.75, 1 | b at n/N = 0 .. 1 |", "| --- | --- | --- |"]
    for w in weights:
        weight = ", ".join(f"{v['aux_weight_mean']:+.2f}" for v in w["over_progress"])
        bonus = ", ".join(f"{v['bonus_mean']:+.2f}" for v in w["over_progress"])
        lines.append(f"| {w['run']} | {weight} | {bonus} |")
    lines += ["", "w, b: means over 1024 transitions of a uniform-random policy (the shaping report); the shaped reward is "
              "r + w r_aux + b, so w < 0 turns the heuristic's sign around."]
    return "\n".join(lines) + "\n"


def draw(weights: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heuristics = sorted({w["heuristic"] for w in weights})
    fig, axes = plt.subplots(1, len(heuristics), figsize=(4.5 * len(heuristics), 3.2), squeeze=False)
    for ax, heuristic in zip(axes[0], heuristics, strict=True):
        for w in (w for w in weights if w["heuristic"] == heuristic):
            values = w["over_progress"]
            progress = [v["progress"] for v in values]
            ax.plot(progress, [v["aux_weight_mean"] for v in values], "o-" if "_noprogress_" not in w["run"] else "s--", ms=3,
                    label=w["run"])
            ax.fill_between(progress, [v["aux_weight_p10"] for v in values], [v["aux_weight_p90"] for v in values], alpha=0.1)
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{heuristic}: heuristic weight w (naive sum: 1)", fontsize=9)
        ax.set_xlabel("training progress n/N")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("w (mean; band: 10-90 % of transitions)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="results/shaping")
    args = parser.parse_args(argv)
    root = Path(args.root)
    verdicts, weights, against_none = verdict_rows(root), weight_rows(root), against_none_rows(root)
    counts = success_counts(verdicts)
    (root / "study.json").write_text(json.dumps({"verdicts": verdicts, "success": counts, "against_none": against_none,
                                                 "weights": weights}, indent=1) + "\n")
    (root / "study.md").write_text(markdown(verdicts, counts, weights, against_none))
    if weights:
        draw(weights, root / "weights.png")
    print(f"wrote {root}/study.md, study.json" + (", weights.png" if weights else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
