"""Does the default recipe discover? K independent `metarl meta-train` runs, each judged on the test seeds.

    python benchmarks/discovery.py                   # 5 runs (seeds 0..4) of the README's first command
    python benchmarks/discovery.py --runs 3 --out /tmp/discovery -- --num-generations 40   # extra meta-train flags

Each run is the README's command (`metarl meta-train`, its defaults) with its own `--seed`, in a fresh
process, timed from start to exit. For each it reads the verdict that the run stored in summary.json
(the discovery against PPO at the same inner settings and against tuned PPO, on 32 paired seeds of the test
stream) and, from metrics.jsonl, the first generation at which the mean meta-parameters scored above PPO's
reference (normalized fitness > 1 on the run's 8 progress seeds, read at chunk ends). Each run's
summary.json (every per-seed score), config.json, metrics.jsonl and learned file are kept beside the JSON
(``benchmarks/results/discovery-<platform>/<run>/``), so `metarl verdict` reprints every verdict from them;
the success rates come with Wilson intervals.

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
import shutil
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
    parser.add_argument("--runs", type=int, default=5, help="independent meta-training runs (seeds 0..runs-1)")
    parser.add_argument("--out", default="/tmp/metarl-discovery", help="parent folder of the run folders")
    parser.add_argument("--json", default=None, help="output file (default: benchmarks/results/discovery-<platform>.json)")
    parser.add_argument("extra", nargs="*", help="flags passed on to every `metarl meta-train` (after --)")
    args = parser.parse_args()

    metarl = [sys.executable, "-m", "metarl.cli", "meta-train"]
    import jax  # only for the platform's name (the runs start their own processes)

    platform = jax.devices()[0].platform
    path = Path(args.json or ROOT / "benchmarks" / "results" / f"discovery-{platform}.json")
    keep_dir = path.with_suffix("")  # benchmarks/results/discovery-<platform>/<run>/
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
        kept = keep_dir / name
        if kept.exists():
            shutil.rmtree(kept)
        kept.mkdir(parents=True)
        for file in ("summary.json", "config.json", "metrics.jsonl"):
            shutil.copy2(run_dir / file, kept / file)
        shutil.copytree(run_dir / "learned", kept / "learned")
        verdict = summary["verdict"]
        entry = {"seed": seed, "wall_seconds": round(seconds, 1), "verdict_seconds": round(verdict["seconds"], 1),
                 "first_generation_mean_params_above_ppo": first_generation_above_ppo(run_dir), "generations": summary["generations"]}
        for name_, against in verdict["against"].items():
            entry[name_] = {"verdict": against["verdict"], "verdict_holm": against.get("verdict_holm"),
                            "baseline_config": against["config"], "probability_of_improvement": against.get("probability_of_improvement")}
            for side, label in (("candidate", "learned"), ("baseline", "baseline"), ("difference", "difference")):
                entry[name_][f"{label}_iqm"] = against[side]["iqm"]
                entry[name_][f"{label}_ci"] = against[side]["ci"]
        runs.append(entry)
        print(json.dumps(entry), flush=True)

    from metarl.verdict import wilson_interval

    learned = [r["ppo"]["learned_iqm"] for r in runs]
    tuned = runs[0].get("tuned_ppo", {}).get("baseline_iqm")
    report = {
        "command": "metarl meta-train " + " ".join(args.extra),
        "platform": platform,
        "score": verdict["score"],
        "judged_on": verdict["seeds"],
        "run_folders": str(keep_dir.relative_to(ROOT)) if keep_dir.is_relative_to(ROOT) else str(keep_dir),
        "baselines_seconds": round(baselines_seconds, 1),
        "runs": runs,
        "summary": {
            "runs": len(runs),
            "better_than_same_settings_ppo": sum(r["ppo"]["verdict"] == "better" for r in runs),
            "better_than_tuned_ppo": sum(r.get("tuned_ppo", {}).get("verdict") == "better" for r in runs),
            "better_than_same_settings_ppo_rate_wilson95": wilson_interval(sum(r["ppo"]["verdict"] == "better" for r in runs), len(runs)),
            "better_than_tuned_ppo_rate_wilson95": wilson_interval(sum(r.get("tuned_ppo", {}).get("verdict") == "better" for r in runs),
                                                                   len(runs)),
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
