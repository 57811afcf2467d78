"""Does a recipe discover? K independent `metarl meta-train` runs, each judged on the test seeds.

    python benchmarks/discovery.py                   # 5 runs (seeds 0..4) of the README's first command (CartPole-v1)
    python benchmarks/discovery.py --env Acrobot-v1 --runs 3 -- --outer.population-size 32 --num-generations 60
    python benchmarks/discovery.py --env CartPole-v1 --env Acrobot-v1 --transfer-env MountainCar-v0   # one objective, two envs

Each run is `metarl meta-train` with its own `--seed` (and ``--env``: `--tasks.envs`; ``--transfer-env``:
`--verdict.transfer-envs`; flags after ``--`` go to every run), in a fresh process, timed from start to exit. For
each it reads the verdict that the run stored in summary.json (the discovery against PPO at the same inner settings
and against tuned PPO, on 32 paired seeds of the test stream; with several envs also on each env alone, and on each
transfer env against that env's own PPO and tuned PPO) and traces the discovery over the run: every chunk's mean
meta-parameters (learned/history/) scored on the first ``--trace-seeds`` seeds of the *validation* stream against
tuned PPO on the same seeds, giving the first generation at which the mean beats tuned PPO (IQM of the normalized
score). Each run's summary.json (every per-seed score), config.json, metrics.jsonl and learned files are kept
beside the JSON (``benchmarks/results/discovery-<platform>[-<envs>]/<run>/``), so `metarl verdict` reprints
every verdict from them; success rates come with Wilson intervals.

The baselines (PPO references, PPO and tuned PPO on the test and the validation seeds) are measured once,
before the timed runs, into the shared store (results/references/) that every run reads: their cost is reported
apart, as `baselines_seconds`, and is paid once per inner config, not per run.

Targets (the discovery issues): every run better than same-settings PPO; better than tuned PPO in at least 2 of 3
runs; at most ``--target-seconds`` a run (default 300 for the README's recipe).
Writes benchmarks/results/discovery-<platform>[-<envs>].json.
"""

from __future__ import annotations

import argparse
import json
import shlex
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
    """Fill the store with the baselines of the recipe (``extra`` flags) on the test and the validation stream
    (the trace's), and those of every transfer env, in one process."""
    code = (
        "import dataclasses, sys, time\n"
        "from metarl.app.cli import set_up_devices; set_up_devices(sys.argv[1:])  # before anything starts jax's backend\n"
        "from metarl.app.meta_train import parse_meta_train_config\n"
        "from metarl.app.verdict import measure_baselines, transfer_config\n"
        "config = parse_meta_train_config(sys.argv[1:])\n"
        "start = time.perf_counter()\n"
        "for stream in ('test', 'validation'):\n"
        "    streamed = dataclasses.replace(config, verdict=dataclasses.replace(config.verdict, stream=stream))\n"
        "    for each in [streamed] + [transfer_config(streamed, env) for env in config.verdict.transfer_envs]:\n"
        "        measure_baselines(each, ['metarl', 'meta-train', *sys.argv[1:]])\n"
        "print(time.perf_counter() - start)\n"
    )
    output = subprocess.run([sys.executable, "-c", code, *extra], check=True, capture_output=True, text=True, cwd=ROOT)
    return float(output.stdout.strip().splitlines()[-1])


def meta_train_flags(command: str) -> list[str]:
    """The flags of a stored `metarl meta-train ...` command line, split as a shell would (an --objective-kwargs JSON
    object keeps its spaces)."""
    words = shlex.split(command)
    if words[:2] != ["metarl", "meta-train"]:
        raise ValueError(f"not a `metarl meta-train` command: {command!r}")
    return words[2:]


def trace(run_dir: Path, num_seeds: int) -> dict:
    """Every chunk's mean meta-parameters (learned/history/) on the first ``num_seeds`` validation seeds against
    tuned PPO on the same seeds (IQM of the normalized score, averaged over envs and lifetimes), in one process."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "run_dir, num_seeds, command = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]\n"
        "from metarl.app.cli import set_up_devices; set_up_devices(command)  # before anything starts jax's backend\n"
        "from metarl.app.meta_train import parse_meta_train_config\n"
        "config = parse_meta_train_config(command)\n"
        "from metarl.app.verdict import trace_history\n"
        "print(json.dumps(trace_history(config, run_dir, num_seeds)))\n"
    )
    flags = meta_train_flags(json.loads((run_dir / "config.json").read_text())["command"])
    output = subprocess.run([sys.executable, "-c", code, str(run_dir), str(num_seeds), *flags], check=True, capture_output=True,
                            text=True, cwd=ROOT)
    return json.loads(output.stdout.strip().splitlines()[-1])


def verdict_entry(against: dict) -> dict:
    """One verdict's comparisons, flattened: word (raw and Holm), baseline cell, IQMs and CIs."""
    entry = {}
    for name, row in against.items():
        entry[name] = {"verdict": row["verdict"], "verdict_holm": row.get("verdict_holm"), "baseline_config": row["config"],
                       "probability_of_improvement": row.get("probability_of_improvement")}
        for side, label in (("candidate", "learned"), ("baseline", "baseline"), ("difference", "difference")):
            entry[name][f"{label}_iqm"] = row[side]["iqm"]
            entry[name][f"{label}_ci"] = row[side]["ci"]
    return entry


def success(runs: list[dict], path: tuple[str, ...], baseline: str) -> dict:
    """How many runs were *better* than ``baseline`` in the verdict at ``path`` (e.g. ("per_env", "Acrobot-v1"))."""
    from metarl.app.verdict import wilson_interval

    def verdict_at(run):
        node = run
        for key in path:
            node = node[key]
        return node.get(baseline, {}).get("verdict")

    wins = sum(verdict_at(r) == "better" for r in runs)
    return {"better": wins, "runs": len(runs), "rate_wilson95": wilson_interval(wins, len(runs))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="independent meta-training runs (seeds first-seed..)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first run")
    parser.add_argument("--env", action="append", default=[], help="meta-training env (repeat for several; default: the recipe's)")
    parser.add_argument("--transfer-env", action="append", default=[], help="env never seen in meta-training, judged too (repeatable)")
    parser.add_argument("--trace-seeds", type=int, default=16, help="validation seeds of the per-chunk trace (0: no trace)")
    parser.add_argument("--target-seconds", type=float, default=TARGET_SECONDS, help="wall-time target of a run")
    parser.add_argument("--out", default="/tmp/metarl-discovery", help="parent folder of the run folders")
    parser.add_argument("--json", default=None, help="output file (default: benchmarks/results/discovery-<platform>[-<envs>].json)")
    parser.add_argument("--rebuild", default=None, metavar="JSON", help="rewrite this report from its kept run folders; train nothing")
    parser.add_argument("extra", nargs="*", help="flags passed on to every `metarl meta-train` (after --)")
    args = parser.parse_args()
    if args.rebuild:
        rebuild(Path(args.rebuild))
        return

    metarl = [sys.executable, "-m", "metarl.app.cli", "meta-train"]
    import jax  # only for the platform's name (the runs start their own processes)

    platform = jax.devices()[0].platform
    # Every run reads the shared store (its runs' own --out is elsewhere: by default a store would follow it there).
    extra = ["--reference-store", str(Path("results") / "references"), *args.extra]
    if args.env:
        extra = ["--tasks.envs", *args.env, *extra]
    if args.transfer_env:
        extra = ["--verdict.transfer-envs", *args.transfer_env, *extra]
    tag = f"-{'+'.join(args.env)}" if args.env else ""
    path = Path(args.json or ROOT / "benchmarks" / "results" / f"discovery-{platform}{tag}.json")
    keep_dir = path.with_suffix("")  # benchmarks/results/discovery-<platform>[-<envs>]/<run>/
    baselines_seconds = measure_baselines(extra)
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.runs):
        name = f"discovery_s{seed}"
        command = [*metarl, "--seed", str(seed), "--out", args.out, "--name", name, "--force", *extra]
        start = time.perf_counter()
        log = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - start
        if log.returncode != 0:
            raise SystemExit(f"run {seed} failed:\n{log.stdout[-3000:]}\n{log.stderr[-3000:]}")
        run_dir = Path(args.out) / name
        kept = keep_dir / name
        if kept.exists():
            shutil.rmtree(kept)
        kept.mkdir(parents=True)
        for file in ("summary.json", "config.json", "metrics.jsonl"):
            shutil.copy2(run_dir / file, kept / file)
        shutil.copytree(run_dir / "learned", kept / "learned")
        entry = run_entry(kept, seed, seconds)
        if args.trace_seeds:
            entry["trace"] = trace(run_dir, args.trace_seeds)
        runs.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if k != "trace"}), flush=True)
    write_report(path, runs, extra, platform, keep_dir, baselines_seconds, args.target_seconds)


def run_entry(kept: Path, seed: int, wall_seconds: float) -> dict:
    """One run's row, from its kept folder alone (summary.json, metrics.jsonl) and its measured wall time."""
    summary = json.loads((kept / "summary.json").read_text())
    verdict = summary["verdict"]
    metrics = [json.loads(line) for line in (kept / "metrics.jsonl").read_text().splitlines()]
    paces = [row["seconds_per_generation"] for row in metrics if row.get("seconds_per_generation") == row.get("seconds_per_generation")]
    entry = {"seed": seed, "wall_seconds": round(wall_seconds, 1), "verdict_seconds": round(verdict["seconds"], 1),
             "seconds_per_generation": sum(paces) / len(paces) if paces else None,  # the compiling chunk's is NaN
             "first_generation_mean_params_above_ppo": first_generation_above_ppo(kept), "generations": summary["generations"],
             **verdict_entry(verdict["against"])}
    for part in ("per_env", "transfer"):
        if part in verdict:
            entry[part] = {env: verdict_entry(v["against"]) for env, v in verdict[part].items()}
    return entry


def rebuild(path: Path) -> None:
    """The report again from its kept run folders (verdicts, counts, intervals), keeping each run's measured wall
    time and trace: nothing is trained or measured."""
    old = json.loads(path.read_text())
    keep_dir = path.with_suffix("")
    runs = []
    for previous in old["runs"]:
        entry = run_entry(keep_dir / f"discovery_s{previous['seed']}", previous["seed"], previous["wall_seconds"])
        if "trace" in previous:
            entry["trace"] = previous["trace"]
        runs.append(entry)
    extra = meta_train_flags(old["command"])
    write_report(path, runs, extra, old["platform"], keep_dir, old["baselines_seconds"], old.get("target_seconds", TARGET_SECONDS))


def write_report(path: Path, runs: list[dict], extra: list[str], platform: str, keep_dir: Path, baselines_seconds: float,
                 target_seconds: float) -> None:
    verdict = json.loads((keep_dir / f"discovery_s{runs[0]['seed']}" / "summary.json").read_text())["verdict"]
    learned = [r["ppo"]["learned_iqm"] for r in runs]
    tuned = runs[0].get("tuned_ppo", {}).get("baseline_iqm")
    summary = {
        "runs": len(runs),
        "better_than_same_settings_ppo": success(runs, (), "ppo"),
        "better_than_tuned_ppo": success(runs, (), "tuned_ppo"),
        "mean_learned_iqm": sum(learned) / len(learned),
        "ppo_iqm": runs[0]["ppo"]["baseline_iqm"],
        "tuned_ppo_iqm": tuned,
        "max_wall_seconds": max(r["wall_seconds"] for r in runs),
        "mean_seconds_per_generation": sum(r["seconds_per_generation"] or 0 for r in runs) / len(runs),
        "first_generation_above_tuned_ppo_on_validation": [r.get("trace", {}).get("first_generation_above_tuned_ppo") for r in runs],
    }
    for part in ("per_env", "transfer"):
        if part in runs[0]:
            summary[part] = {env: {baseline: success(runs, (part, env), baseline) for baseline in runs[0][part][env]}
                             for env in runs[0][part]}
    summary["targets"] = {
        "all_better_than_same_settings_ppo": summary["better_than_same_settings_ppo"]["better"] == len(runs),
        "better_than_tuned_ppo_in_2_of_3": summary["better_than_tuned_ppo"]["better"] * 3 >= 2 * len(runs),
        f"every_run_within_{target_seconds:g}_s": summary["max_wall_seconds"] <= target_seconds,
    }
    report = {
        "command": shlex.join(["metarl", "meta-train", *extra]),
        "platform": platform,
        "score": verdict["score"],
        "judged_on": verdict["seeds"],
        "envs": verdict["envs"],
        "run_folders": str(keep_dir.relative_to(ROOT)) if keep_dir.is_relative_to(ROOT) else str(keep_dir),
        "baselines_seconds": round(baselines_seconds, 1),
        "target_seconds": target_seconds,
        "runs": runs,
        "summary": summary,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
