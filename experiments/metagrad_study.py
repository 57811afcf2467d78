"""ES vs truncated meta-gradients for TA-LPO's schedule, from stored run folders alone.

    metarl sweep sweeps/ta_study.toml          # the ES arm: ta_lpo_s<k> (OpenES 16 x 30), with its test-seed verdicts
    metarl sweep sweeps/metagrad_ta.toml       # the meta-gradient arms: metagrad_lr<lr>_s<k> (150 steps, K = 5)
    python experiments/metagrad_study.py       # writes results/metagrad_ta/study.{md,json}

Both arms start from the same η0 per meta-seed k (TA-LPO's init under the run's seed) and are judged on the same
test seeds at N = 8, 16, 32 against PPO at the same settings. Per run: that verdict, how far η moved from η0, the
temporal variation of the drift at η0 and at the end (metarl.analysis.drift: mean |D(n/N = 1) − D(n/N = 0)| relative
to mean |D|), the schedule profile and the meta-training seconds; per meta-gradient run also its meta-gradient
norms. Then each meta-gradient run against the ES run of its meta-seed on those same seeds (paired).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ta_study import meta_training_seconds, paired_verdicts  # noqa: E402  (the sibling script: one definition of each)

ES_RUN = re.compile(r"^ta_lpo_s(\d+)$")
METAGRAD_RUN = re.compile(r"^metagrad_(lr[0-9e.-]+)_s(\d+)$")
ORDER = ("better", "equivalent", "inconclusive", "worse")


def arm_of(run: str) -> str | None:
    if ES_RUN.match(run):
        return "ES"
    match = METAGRAD_RUN.match(run)
    return f"meta-gradients {match.group(1)}" if match else None


def seed_of(run: str) -> int:
    return int(run.rsplit("_s", 1)[1])


def start_params(objective, seed: int):
    """η0 of a from-scratch run with this seed (metarl.meta.run.build_problem derives it the same way)."""
    import jax

    return objective.init(jax.random.split(jax.random.PRNGKey(seed), 4)[0])


def movement(params, start) -> dict:
    """||η − η0|| / ||η0|| per block: the base-feature rows of the hidden layer, its context rows, the output layer."""
    from metarl.objectives.lpo import NUM_BASE_FEATURES

    def relative(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))

    hidden, hidden0 = params["hidden"], start["hidden"]
    return {"base_rows": relative(hidden[:NUM_BASE_FEATURES], hidden0[:NUM_BASE_FEATURES]),
            "context_rows": relative(hidden[NUM_BASE_FEATURES:], hidden0[NUM_BASE_FEATURES:]),
            "out": relative(params["out"], start["out"])}


def run_row(run_dir: Path) -> dict:
    from metarl import objectives
    from metarl.analysis.drift import schedule_profile, temporal_variation

    summary = json.loads((run_dir / "summary.json").read_text())
    objective, params, _ = objectives.load(summary["learned_file"])
    start = start_params(objective, seed_of(run_dir.name))
    verdict = summary["verdict"]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    row = {"run": run_dir.name, "folder": str(run_dir), "arm": arm_of(run_dir.name), "seed": seed_of(run_dir.name),
           "steps": summary["generations"], "seconds": meta_training_seconds(run_dir), "stream": verdict["stream"],
           "lifetimes": verdict["lifetimes"],
           "temporal_variation": {"start": temporal_variation(objective, start), "end": temporal_variation(objective, params)},
           "mean_abs_drift": {"start": float(_mean_abs_drift(objective, start)), "end": float(_mean_abs_drift(objective, params))},
           "movement": movement(params, start), "schedule": schedule_profile(objective, params),
           "ppo": {k: verdict["against"]["ppo"][k] for k in ("difference", "verdict", "label")}}
    norms = np.asarray([r["meta_grad_norm"] for r in rows if "meta_grad_norm" in r], np.float64)
    if norms.size:
        row["meta_grad_norm"] = {"median": float(np.median(norms)), "min": float(norms.min()), "max": float(norms.max()),
                                 "zero_share": float(np.mean(norms == 0.0))}
    return row


def _mean_abs_drift(objective, params) -> float:
    from metarl.analysis.drift import PROGRESS, drift_grid

    return float(np.mean(np.abs(drift_grid(objective, params, PROGRESS, 100))))


def versus_es(rows: list[dict]) -> list[dict]:
    """Each meta-gradient run against the ES run of its meta-seed, on the verdict's own test seeds (paired), per
    lifetime and over all of them, from the raw scores both summary.json files store."""
    def verdict_of(row):
        return json.loads((Path(row["folder"]) / "summary.json").read_text())["verdict"]

    es = {r["seed"]: r for r in rows if r["arm"] == "ES"}
    out = []
    for row in rows:
        if row["arm"] == "ES" or row["seed"] not in es:
            continue
        baseline = verdict_of(es[row["seed"]])
        for n, result in paired_verdicts(verdict_of(row), baseline, (row["run"], es[row["seed"]]["run"])):
            out.append({"run": row["run"], "arm": row["arm"], "against": es[row["seed"]]["run"], "lifetime": n,
                        "stream": baseline["stream"], "difference": result["difference"], "verdict": result["verdict"]})
    return out


def _ci(difference: dict) -> str:
    return f"{difference['iqm']:+.3f} [{difference['ci'][0]:+.3f}, {difference['ci'][1]:+.3f}]"


def _norms(norm: dict | None) -> str:
    return "—" if norm is None else f"{norm['median']:.3g}, {norm['zero_share']:.2f}"


def _words(words: list[str]) -> str:
    return ", ".join(f"{words.count(w)} {w}" for w in ORDER if words.count(w)) + f" (of {len(words)})"


def markdown(rows: list[dict], versus: list[dict]) -> str:
    lines = ["## Each run (its summary.json; η0 = TA-LPO's init under the run's seed, the same for both arms)", "",
             "| run | arm | steps | s | vs PPO (same settings) | temporal variation η0 → end | mean abs D η0 → end "
             "| mean abs D(1) − D(0) η0 → end "
             "| moved: base rows / context rows / output | meta-gradient norm (median, share 0) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        m, tv, d = r["movement"], r["temporal_variation"], r["mean_abs_drift"]
        norm = r.get("meta_grad_norm")
        lines.append(f"| {r['run']} | {r['arm']} | {r['steps']} | {r['seconds']:.0f} | {_ci(r['ppo']['difference'])} {r['ppo']['verdict']} "
                     f"| {tv['start']:.2f} → {tv['end']:.2f} | {d['start']:.4f} → {d['end']:.4f} "
                     f"| {tv['start'] * d['start']:.4f} → {tv['end'] * d['end']:.4f} "
                     f"| {m['base_rows']:.3f} / {m['context_rows']:.3f} / {m['out']:.2f} "
                     f"| {_norms(norm)} |")
    if rows:
        lines.append(f"\nJudged on 32 {rows[0]['stream']} seeds at N = {rows[0]['lifetimes']}, normalized AUC (1 = PPO's reference "
                     "gain), paired. Seconds: the sum of the run's seconds per generation or step, compile excluded; the ES "
                     "arm's three meta-seeds were stepped together (vmapped), so an ES run's share is a third of the time "
                     "shown. Temporal variation is relative to mean |D|, so it is large for any random η0 whose D is near 0; "
                     "mean |D(1) − D(0)| is the same change in D's own units. Moved: ||η − η0|| / ||η0|| per block. "
                     "The meta-gradient norm is before clipping to 1.")
    lines += ["", "Per arm, vs PPO: " + "; ".join(f"{arm}: {_words([r['ppo']['verdict'] for r in rows if r['arm'] == arm])}"
                                                 for arm in dict.fromkeys(r["arm"] for r in rows))]
    lines += ["", "## What each schedule does (metarl.analysis.drift.schedule_profile; n/N = 0 → 1)", "",
              "| run | mean D where A > 0 | mean D where A < 0 | rollback share |", "| --- | --- | --- | --- |"]
    for r in rows:
        p = r["schedule"]
        lines.append(f"| {r['run']} | " + " | ".join(f"{p[k][0]:.3f} → {p[k][-1]:.3f}" for k in
                     ("penalty_positive_advantage", "penalty_negative_advantage", "rollback_share")) + " |")
    if versus:
        lifetimes = [v["lifetime"] for v in versus if v["run"] == versus[0]["run"]]
        lines += ["", "## Each meta-gradient run against the ES run of its meta-seed (same test seeds, paired)", "",
                  "| run | " + " | ".join(f"N = {n}" for n in lifetimes) + " |", "| --- |" + " --- |" * len(lifetimes)]
        for run in dict.fromkeys(v["run"] for v in versus):
            lines.append(f"| {run} | " + " | ".join(f"{_ci(v['difference'])} {v['verdict']}" for v in versus if v["run"] == run) + " |")
        for arm in dict.fromkeys(v["arm"] for v in versus):
            words = [v["verdict"] for v in versus if v["arm"] == arm and v["lifetime"] == "all"]
            lines.append(f"\n{arm} vs ES over all lifetimes: " + _words(words))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="results/metagrad_ta", help="the meta-gradient runs (and where the tables go)")
    parser.add_argument("--es", default="results/ta_study", help="the study holding the ES arm (ta_lpo_s<k>)")
    args = parser.parse_args(argv)
    root, es_root = Path(args.root), Path(args.es)
    folders = [p.parent for p in sorted(es_root.glob("ta_lpo_s*/summary.json")) if ES_RUN.match(p.parent.name)]
    folders += [p.parent for p in sorted(root.glob("metagrad_*_s*/summary.json")) if METAGRAD_RUN.match(p.parent.name)]
    rows = [run_row(folder) for folder in folders]
    versus = versus_es(rows)
    text = markdown(rows, versus)
    (root / "study.md").write_text(text + "\n")
    (root / "study.json").write_text(json.dumps({"runs": rows, "versus_es": versus}, indent=1) + "\n")
    print(text)
    print(f"wrote {root / 'study.md'}, study.json")


if __name__ == "__main__":
    main()
