"""Paired comparisons of the temporally-aware study (results/ta_lpo_study), from its stored evals only.

    metarl sweep sweeps/ta_lpo_study.toml          # meta-train LPO and TA-LPO, then both evals (~18 min, 2 CPU cores)
    python experiments/ta_lpo_study.py              # writes results/ta_lpo_study/comparisons.{md,json}

Both evals trained every objective on the same held-out seeds (metarl.verdict's stream), so every pair of
objectives, across the two evals too, is paired seed by seed: TA-LPO vs LPO, each learned objective vs PPO
and vs tuned PPO, per env and lifetime, with the CI of the paired difference and the verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metarl.evaluation import load_eval
from metarl.verdict import paired_comparison

PAIRS = [("ta_lpo", "lpo"), ("lpo", "ppo"), ("ta_lpo", "ppo"), ("lpo", "tuned ppo"), ("ta_lpo", "tuned ppo"), ("dpo", "ppo")]


def scores_by_objective(root: Path) -> tuple[dict[str, np.ndarray], list[str], list[int]]:
    main, tuned = load_eval(root / "eval" / "eval.npz"), load_eval(root / "eval_tuned_ppo" / "eval.npz")
    assert list(main["envs"]) == list(tuned["envs"]) and list(main["lifetimes"]) == list(tuned["lifetimes"])
    scores = {str(label): main["scores"][i] for i, label in enumerate(main["objectives"])}
    scores["tuned ppo"] = tuned["scores"][0]
    return scores, [str(e) for e in main["envs"]], [int(n) for n in main["lifetimes"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", nargs="?", default="results/ta_lpo_study")
    root = Path(parser.parse_args().root)
    scores, envs, lifetimes = scores_by_objective(root)
    rows = []
    for candidate, baseline in PAIRS:
        for e, env in enumerate(envs):
            for li, n in enumerate(lifetimes):
                result = paired_comparison(scores[candidate][e, li], scores[baseline][e, li])
                rows.append({"candidate_objective": candidate, "baseline_objective": baseline, "env": env, "lifetime": n, **result})
    lines = ["| candidate | baseline | env | N | candidate IQM | baseline IQM | difference [95% CI, paired] | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        c, b, d = row["candidate"], row["baseline"], row["difference"]
        lines.append(f"| {row['candidate_objective']} | {row['baseline_objective']} | {row['env']} | {row['lifetime']} | {c['iqm']:.1f} "
                     f"| {b['iqm']:.1f} | {d['iqm']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}] | {row['verdict']} |")
    (root / "comparisons.json").write_text(json.dumps(rows, indent=1) + "\n")
    (root / "comparisons.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {root / 'comparisons.md'}, comparisons.json")


if __name__ == "__main__":
    main()
