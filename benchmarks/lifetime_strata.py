"""Seconds per ES generation with lifetimes split into strata, against one scan to the longest lifetime, in one process.

    python benchmarks/lifetime_strata.py                        # --preset ta_lpo's generation: lifetimes 2..128
    python benchmarks/lifetime_strata.py --strata 1 2 4 8 --repeats 3

Members draw lifetimes log-uniformly, but a vmapped population scans one length: every member runs the longest
lifetime's updates, those past its own N masked. ``tasks.lifetime_strata S`` gives each of S equal log-width strata
1/S of the population and its own scan. The ratio (seconds at 1 stratum / seconds at S), measured in the same process
on the same generation keys, is the figure; the updates scanned per member (the sum of the strata's scan lengths / S)
say what it should be if the inner loop is all that costs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax

from metarl.app.meta_train import parse_meta_train_config
from metarl.meta.run import build, strong_types
from metarl.meta.tasks import References, strata_scan_lengths
from metarl.presets import PRESETS


def seconds_per_generation(args: list[str], repeats: int) -> dict:
    config = parse_meta_train_config(args)
    problem, loop = build(config)
    references = References(jax.numpy.zeros(1), jax.numpy.ones(1))
    step = jax.jit(lambda state, key: strong_types(loop.step(state, key, references)))
    state = strong_types(loop.init(jax.random.PRNGKey(0), problem.meta_params))  # as meta-train's: one compile, not two
    start = time.perf_counter()
    state, _ = jax.block_until_ready(step(state, jax.random.PRNGKey(0)))
    first = time.perf_counter() - start
    times = []
    for r in range(repeats):
        start = time.perf_counter()
        state, _ = jax.block_until_ready(step(state, jax.random.PRNGKey(r + 1)))
        times.append(time.perf_counter() - start)
    scans = strata_scan_lengths(config.tasks, config.ppo)
    return {"strata": config.tasks.lifetime_strata, "scan_lengths": list(scans),
            "updates_scanned_per_member": sum(scans) / len(scans), "compile_plus_first_seconds": round(first, 2),
            "seconds_per_generation": round(min(times), 3), "all_seconds": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strata", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "lifetime_strata-cpu.json"))
    parsed = parser.parse_args()
    base = [*PRESETS["meta-train"]["ta_lpo"], "--tasks.no-normalize"]
    rows = [seconds_per_generation([*base, "--tasks.lifetime-strata", str(s)], parsed.repeats) for s in parsed.strata]
    one = next((r for r in rows if r["strata"] == 1), None)
    for row in rows:
        if one is not None:
            row["speedup_vs_one_scan"] = round(one["seconds_per_generation"] / row["seconds_per_generation"], 2)
            row["updates_ratio_vs_one_scan"] = round(one["updates_scanned_per_member"] / row["updates_scanned_per_member"], 2)
    report = {"generation": "metarl meta-train --preset ta_lpo (TA-LPO, CartPole-v1, 4 x 128 steps, lifetimes 2..128 "
                            "log-uniform, 16 members x 2 seeds), unnormalized fitness",
              "platform": jax.devices()[0].platform, "devices": jax.device_count(), "jax": jax.__version__, "rows": rows}
    text = json.dumps(report, indent=2)
    print(text)
    Path(parsed.out).parent.mkdir(parents=True, exist_ok=True)
    Path(parsed.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
