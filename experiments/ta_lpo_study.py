"""Paired comparisons of the temporally-aware study (results/ta_lpo_study), from its stored evals only.

    metarl sweep sweeps/ta_lpo_study.toml          # meta-train LPO and TA-LPO, then both evals (~18 min, 2 CPU cores)
    python experiments/ta_lpo_study.py              # writes results/ta_lpo_study/comparisons.{md,json}

Both evals trained every objective on the same seeds of the validation stream (metarl.app.verdict: this study
decides design questions, so it never looks at the test stream), so every pair of objectives, across the two
evals too, is paired seed by seed: TA-LPO vs LPO, each learned objective vs PPO and vs tuned PPO, per env and
lifetime, with the CI of the paired difference, the probability of improvement, the verdict (equivalent: the CI
inside ±5 % of the baseline's IQM) and the verdict after Holm's correction over all the study's comparisons.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metarl.app.evaluation import load_eval
from metarl.app.verdict import paired_comparison, with_holm
from metarl.stats import iqm

RELATIVE_MARGIN = 0.05  # equivalence margin: this fraction of the baseline's IQM (as metarl eval's default)

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
                base = scores[baseline][e, li]
                margin = RELATIVE_MARGIN * abs(float(iqm(base[np.isfinite(base)])))
                result = paired_comparison(scores[candidate][e, li], base, margin=margin)
                rows.append({"candidate_objective": candidate, "baseline_objective": baseline, "env": env, "lifetime": n,
                             "stream": "validation", **result})
    rows = with_holm(rows)
    lines = ["| candidate | baseline | env | N | candidate IQM | baseline IQM | difference [95% CI, paired] | P(cand > base) | verdict "
             "| Holm |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        c, b, d, pi = row["candidate"], row["baseline"], row["difference"], row["probability_of_improvement"]
        lines.append(f"| {row['candidate_objective']} | {row['baseline_objective']} | {row['env']} | {row['lifetime']} | {c['iqm']:.1f} "
                     f"| {b['iqm']:.1f} | {d['iqm']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}] | {pi['value']:.2f} "
                     f"[{pi['ci'][0]:.2f}, {pi['ci'][1]:.2f}] | {row['verdict']} | {row['verdict_holm']} |")
    lines += ["", f"Validation seeds. Equivalent: the CI of the difference inside ±{RELATIVE_MARGIN:g} × the baseline's IQM; "
              f"Holm: adjusted over all {len(rows)} comparisons of this table."]
    (root / "comparisons.json").write_text(json.dumps(rows, indent=1) + "\n")
    (root / "comparisons.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {root / 'comparisons.md'}, comparisons.json")


if __name__ == "__main__":
    main()
