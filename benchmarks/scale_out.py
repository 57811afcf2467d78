"""Generation throughput on 1, 2 and 4 forced CPU devices, and on 1 process vs 2 processes joined by
jax.distributed on this machine, reported as ratios measured in one run of this script.

    python benchmarks/scale_out.py                     # population 16, 1e5-step CartPole PPO members
    python benchmarks/scale_out.py --population 8 --total-timesteps 20000 --generations 2

Each layout is one real `metarl meta-train` (LPO, OpenES, no normalization, no evaluation of the mean) in
fresh processes; throughput = inner env-steps per second across the population (members x seeds x steps
of a lifetime / seconds per generation), taken from the run's metrics.jsonl (the fastest generation after
the first, which includes compilation). The 2-process layout uses one device per process, so it is
compared with one process on 2 devices (same devices, different number of controllers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], devices: int, processes: int, out: Path) -> float:
    """Run a layout; returns the fastest seconds per generation after the first."""
    extra = []
    port = free_port()
    running = []
    for process_id in range(processes):
        if processes > 1:
            extra = ["--distributed.coordinator", f"127.0.0.1:{port}", "--distributed.num-processes", str(processes),
                     "--distributed.process-id", str(process_id)]
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        running.append(subprocess.Popen([sys.executable, "-m", "metarl.app.cli", "meta-train", *args, "--out", str(out), *extra],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for process in running:
        output, _ = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise RuntimeError(f"layout {devices} device(s) x {processes} process(es) failed:\n{output[-3000:]}")
    rows = [json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()]
    return min(row["seconds_per_generation"] for row in rows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--total-timesteps", type=int, default=100_000)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale_out-cpu.json"))
    options = parser.parse_args()
    steps_per_generation = options.population * options.total_timesteps  # one seed per member
    args = ["--objective", "lpo", "--ppo.total-timesteps", str(options.total_timesteps), "--outer.population-size",
            str(options.population), "--tasks.seeds-per-member", "1", "--tasks.no-normalize", "--eval-seeds", "0",
            "--num-generations", str(options.generations), "--chunk-size", "1", "--name", "run"]
    layouts = [(1, 1), (2, 1), (4, 1), (1, 2)]  # (devices per process, processes)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for devices, processes in layouts:
            seconds = launch(args, devices, processes, Path(tmp) / f"d{devices}p{processes}")
            results.append({"devices_per_process": devices, "processes": processes, "total_devices": devices * processes,
                            "seconds_per_generation": round(seconds, 3), "env_steps_per_second": round(steps_per_generation / seconds)})
            print(json.dumps(results[-1]), flush=True)
    by_layout = {(r["devices_per_process"], r["processes"]): r["env_steps_per_second"] for r in results}
    ratios = {
        "2_devices_vs_1": round(by_layout[(2, 1)] / by_layout[(1, 1)], 2),
        "4_devices_vs_1": round(by_layout[(4, 1)] / by_layout[(1, 1)], 2),
        "2_processes_x_1_device_vs_1_process_x_2_devices": round(by_layout[(1, 2)] / by_layout[(2, 1)], 2),
        "2_processes_x_1_device_vs_1_process_x_1_device": round(by_layout[(1, 2)] / by_layout[(1, 1)], 2),
    }
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "generation": {"objective": "lpo", "env": "CartPole-v1", "population": options.population,
                             "total_timesteps_per_member": options.total_timesteps, "num_envs": 4, "num_steps": 128},
              "layouts": results, "ratios": ratios}
    text = json.dumps(report, indent=2)
    print(text)
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    Path(options.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
