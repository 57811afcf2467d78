"""Does the default recipe discover? K independent `metarl meta-train` runs, each judged on held-out seeds.

    python benchmarks/discovery.py                   # 3 runs (seeds 0, 1, 2) of the README's first command
    python benchmarks/discovery.py --runs 5 --out /tmp/discovery -- --num-generations 40   # extra meta-train flags

Each run is the README's command (`metarl meta-train`, its defaults) with its own `--seed`, in a fresh
process, timed from start to exit. For each it reads the verdict that the run stored in summary.json
(the discovery against PPO at the same inner settings and against tuned PPO, on 32 paired held-out
seeds) and, from metrics.jsonl, the first generation at which the mean meta-parameters scored above PPO's
reference (normalized fitness > 1 on the run's 8 progress seeds, read at chunk ends).

The baselines (PPO references, PPO and tuned PPO on the held-out seeds) are measured once, before the
timed runs, into the shared store (results/references/ by default) that every run reads: their cost is
reported apart, as `baselines_seconds`, and is paid once per inner config, not per run.

Targets (the discovery issue): every run better than same-settings PPO with the CI of the paired
difference above 0; the mean of the runs' IQMs at or above tuned PPO's; at most 5 minutes a run.
Writes benchmarks/results/discovery-<platform>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 300


def first_generation_above_ppo(run_dir: Path) -> int | None:
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        fitness = row.get("mean_params_fitness")
        if fitness is not None and fitness > 1.0:
            return row["generation"] + 1  # rows count from 0; "after generation g" reads g
    return None


def measure_baselines(extra: list[str]) -> float:
    """Fill the store with the baselines of the default recipe (with ``extra`` flags) in one process."""
    code = (
        "import sys, time\n"
        "from metarl.cli import parse_meta_train_config\n"
        "from metarl.verdict import measure_baselines\n"
        "config = parse_meta_train_config(sys.argv[1:])\n"
        "from metarl.distributed import configure_host_devices; configure_host_devices(config.host_devices)\n"
        "start = time.perf_counter(); measure_baselines(config, ['metarl', 'meta-train', *sys.argv[1:]])\n"
        "print(time.perf_counter() - start)\n"
    )
    output = subprocess.run([sys.executable, "-c", code, *extra], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="independent meta-training runs (seeds 0..runs-1)")
    parser.add_argument("--out", default="/tmp/metarl-discovery", help="parent folder of the run folders")
    parser.add_argument("--json", default=None, help="output file (default: benchmarks/results/discovery-<platform>.json)")
    parser.add_argument("extra", nargs="*", help="flags passed on to every `metarl meta-train` (after --)")
    args = parser.parse_args()

    metarl = [sys.executable, "-m", "metarl.cli", "meta-train"]
    baselines_seconds = measure_baselines(args.extra)
    runs = []
    for seed in range(args.runs):
        name = f"discovery_s{seed}"
        command = [*metarl, "--seed", str(seed), "--out", args.out, "--name", name, "--force", *args.extra]
        start = time.perf_counter()
        log = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        if log.returncode != 0:
            raise SystemExit(f"run {seed} failed:\n{log.stdout[-3000:]}\n{log.stderr[-3000:]}")
        run_dir = Path(args.out) / name
        summary = json.loads((run_dir / "summary.json").read_text())
        verdict = summary["verdict"]
        entry = {"seed": seed, "wall_seconds": round(seconds, 1), "verdict_seconds": round(verdict["seconds"], 1),
                 "first_generation_mean_params_above_ppo": first_generation_above_ppo(run_dir), "generations": summary["generations"]}
        for name_, against in verdict["against"].items():
            entry[name_] = {"verdict": against["verdict"], "baseline_config": against["config"]}
            for side, label in (("candidate", "learned"), ("baseline", "baseline"), ("difference", "difference")):
                entry[name_][f"{label}_iqm"] = against[side]["iqm"]
                entry[name_][f"{label}_ci"] = against[side]["ci"]
        runs.append(entry)
        print(json.dumps(entry), flush=True)

    import jax  # only for the platform's name, after the runs (they start their own processes)

    learned = [r["ppo"]["learned_iqm"] for r in runs]
    tuned = runs[0].get("tuned_ppo", {}).get("baseline_iqm")
    report = {
        "command": "metarl meta-train " + " ".join(args.extra),
        "platform": jax.devices()[0].platform,
        "score": verdict["score"],
        "held_out": verdict["seeds"],
        "baselines_seconds": round(baselines_seconds, 1),
        "runs": runs,
        "summary": {
            "better_than_same_settings_ppo": sum(r["ppo"]["verdict"] == "better" for r in runs),
            "better_than_tuned_ppo": sum(r.get("tuned_ppo", {}).get("verdict") == "better" for r in runs),
            "mean_learned_iqm": sum(learned) / len(learned),
            "ppo_iqm": runs[0]["ppo"]["baseline_iqm"],
            "tuned_ppo_iqm": tuned,
            "max_wall_seconds": max(r["wall_seconds"] for r in runs),
        },
    }
    summary = report["summary"]
    summary["targets"] = {
        "all_better_than_same_settings_ppo": summary["better_than_same_settings_ppo"] == len(runs),
        "mean_at_or_above_tuned_ppo": tuned is not None and summary["mean_learned_iqm"] >= tuned,
        f"every_run_within_{TARGET_SECONDS}_s": summary["max_wall_seconds"] <= TARGET_SECONDS,
    }
    path = Path(args.json or ROOT / "benchmarks" / "results" / f"discovery-{report['platform']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
