"""Whole-process time of `metarl train` (CartPole-v1, 5e5 steps) against a plain single-file jitted PPO run as
its own process, with metarl's persistent compilation cache cold and warm.

    python benchmarks/startup.py            # 3 rounds, writes benchmarks/results/startup-<platform>.json

Each round runs, alternately on the same machine: the reference PPO (`reference_ppo.py`: import, compile,
train once), `metarl train` with an empty cache folder (the first run a user sees), and `metarl train`
again on that folder (a repeated or swept command). Ratios are reference seconds / metarl seconds, so
above 1 means metarl's whole process is faster. Minimum over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REFERENCE = (
    "import sys, jax\n"
    f"sys.path.insert(0, {str(HERE)!r})\n"
    "from reference_ppo import make_reference_train\n"
    "train = jax.jit(make_reference_train(total_timesteps=int(sys.argv[1])))\n"
    "jax.block_until_ready(train(jax.random.PRNGKey(0)))\n"
)


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    args = parser.parse_args()
    steps = str(args.total_timesteps)
    rows = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
            metarl = [sys.executable, "-m", "metarl.app.cli", "train", "--env", "CartPole-v1", "--ppo.total-timesteps", steps,
                      "--out", out, "--force"]
            reference = timed([sys.executable, "-c", REFERENCE, steps])
            cold = timed(metarl, {"METARL_CACHE_DIR": cache})
            warm = timed(metarl, {"METARL_CACHE_DIR": cache})
        rows.append({"reference_seconds": round(reference, 2), "metarl_cold_seconds": round(cold, 2),
                     "metarl_warm_seconds": round(warm, 2)})
        print(json.dumps(rows[-1]), flush=True)
    best = {key: min(row[key] for row in rows) for key in rows[0]}
    import jax

    report = {"platform": jax.devices()[0].platform, "total_timesteps": args.total_timesteps, "rounds": rows, "best": best,
              "ratio_reference_over_metarl_cold": round(best["reference_seconds"] / best["metarl_cold_seconds"], 3),
              "ratio_reference_over_metarl_warm": round(best["reference_seconds"] / best["metarl_warm_seconds"], 3)}
    path = HERE / "results" / f"startup-{report['platform']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
