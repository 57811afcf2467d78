"""The joint-discovery study's tables, from its stored runs alone (results/joint by default).

    metarl sweep sweeps/joint.toml                 # the runs (6 meta-training runs, then one test eval per meta-seed)
    python experiments/joint_study.py               # writes results/joint/study.{md,json}

Each ``test_s<k>`` eval crosses objectives {PPO, joint_k's drift, lpo_alone_k's drift} with shapings {none, naive,
potential, joint_k's shaping, the shaping discovered alone with meta-seed k}. Of that grid the study compares, on the
same test seeds and per lifetime N, with metarl's verdict (paired bootstrap; Holm within each table of one eval):

- **vs best hand-designed**: the joint discovery (its drift with its shaping), the shaping discovered alone (PPO with
  it) and the objective discovered alone (its drift, no shaping), each against the best of PPO with none, naive or
  potential shaping at that N (chosen on these same seeds, which favours the baseline);
- **joint vs each alone**: the joint discovery against the shaping alone and against the objective alone.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def _variants(config: dict) -> dict[str, int]:
    """Index, in the eval's variant order (objectives x curricula x shapings), of each compared variant."""
    objectives, shapings = config["objectives"], config["shapings"]
    if len(config["curricula"]) != 1 or len(objectives) != 3 or len(shapings) != 5:
        raise SystemExit(f"{config['name']}: not the study's grid (3 objectives x 5 shapings, no curricula)")
    at = lambda o, s: o * len(shapings) + s  # noqa: E731
    return {"joint": at(1, 3), "shaping alone": at(0, 4), "objective alone": at(2, 0),
            "ppo": at(0, 0), "ppo + naive": at(0, 1), "ppo + potential": at(0, 2)}


def eval_rows(root: Path) -> list[dict]:
    import numpy as np

    from metarl.app.evaluation import load_eval, verdict_table

    rows = []
    for path in sorted(root.glob("test_s*/eval.npz")):
        config = json.loads((path.parent / "config.json").read_text())["config"]
        index = _variants(config)
        data = load_eval(path)
        names = list(index)
        scores = np.stack([data["scores"][index[name]] for name in names])
        tables = {"vs best hand-designed": (names, tuple(name.startswith("ppo") for name in names)),
                  "joint vs shaping alone": (["joint", "shaping alone"], 1),
                  "joint vs objective alone": (["joint", "objective alone"], 1)}
        for comparison, (labels, baseline) in tables.items():
            sub = np.stack([scores[names.index(label)] for label in labels])
            for row in verdict_table(sub, labels, baseline, data["envs"], data["lifetimes"], stream=config["heldout"]):
                rows.append({"eval": path.parent.name, "comparison": comparison, "variant": row["objective"],
                             "baseline": row["baseline_objective"], "lifetime": row["lifetime"], "stream": row["stream"],
                             "learned_iqm": row["candidate"]["iqm"], "baseline_iqm": row["baseline"]["iqm"],
                             "difference": row["difference"]["iqm"], "ci": row["difference"]["ci"],
                             "verdict": row["verdict"], "verdict_holm": row["verdict_holm"]})
    return rows


def run_rows(root: Path) -> list[dict]:
    """Each meta-training run's own verdict (its summary.json; the validation stream)."""
    rows = []
    for path in sorted(root.glob("*/summary.json")):
        summary = json.loads(path.read_text())
        if "verdict" not in summary:
            continue
        for name, entry in summary["verdict"]["against"].items():
            rows.append({"run": path.parent.name, "baseline": name, "stream": summary["verdict"]["stream"],
                         "difference": entry["difference"]["iqm"], "ci": entry["difference"]["ci"], "verdict": entry["verdict"],
                         "verdict_holm": entry.get("verdict_holm"), "seconds": round(summary["seconds"], 1)})
    return rows


def counts(rows: list[dict]) -> list[dict]:
    """Per comparison, variant and N: how many meta-seeds got each verdict (after Holm)."""
    table: dict[tuple, Counter] = {}
    for r in rows:
        table.setdefault((r["comparison"], r["variant"], r["lifetime"]), Counter())[r["verdict_holm"]] += 1
    return [{"comparison": c, "variant": v, "lifetime": n, "verdicts": dict(sorted(w.items()))} for (c, v, n), w in table.items()]


def markdown(evals: list[dict], summary: list[dict], runs: list[dict]) -> str:
    lines = ["| eval | comparison | variant | N | IQM | baseline | baseline IQM | difference [95% CI, paired] | verdict (Holm) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in evals:
        lines.append(f"| {r['eval']} | {r['comparison']} | {r['variant']} | {r['lifetime']} | {r['learned_iqm']:.1f} | {r['baseline']} "
                     f"| {r['baseline_iqm']:.1f} | {r['difference']:+.1f} [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}] "
                     f"| {r['verdict']} ({r['verdict_holm']}) |")
    streams = sorted({r["stream"] for r in evals})
    lines += ["", f"Seeds: the {'/'.join(streams)} stream, 32 per cell, paired across every variant of an eval; raw AUC "
              "returns of CartPole-v1 trained with the pd_bad heuristic available; Holm within each comparison of one eval.",
              "", "| comparison | variant | N | meta-seeds by verdict (Holm) |", "| --- | --- | --- | --- |"]
    for s in summary:
        words = ", ".join(f"{word} {n}" for word, n in s["verdicts"].items())
        lines.append(f"| {s['comparison']} | {s['variant']} | {s['lifetime']} | {words} |")
    lines += ["", "Each meta-training run's own verdict (validation stream, 32 seeds, normalized AUC):", "",
              "| run | baseline | difference [95% CI] | verdict (Holm) | wall s |", "| --- | --- | --- | --- | --- |"]
    for r in runs:
        lines.append(f"| {r['run']} | {r['baseline']} | {r['difference']:+.3f} [{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}] "
                     f"| {r['verdict']} ({r['verdict_holm']}) | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="results/joint")
    root = Path(parser.parse_args().root)
    evals, runs = eval_rows(root), run_rows(root)
    if not evals:
        raise SystemExit(f"{root}: no test_s*/eval.npz")
    summary = counts(evals)
    text = markdown(evals, summary, runs)
    (root / "study.md").write_text(text)
    (root / "study.json").write_text(json.dumps({"evals": evals, "summary": summary, "runs": runs}, indent=1, default=float) + "\n")
    print(text)
    print(f"wrote {root / 'study.md'}, study.json")


if __name__ == "__main__":
    main()
