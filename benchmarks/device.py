"""Accelerator benchmark: MinAtar PPO populations and ES generations on one device, in one run of <= 8 minutes.

    python benchmarks/device.py              # writes benchmarks/results/device-<device kind>.json (e.g. device-nvidia-h200.json)
    python benchmarks/device.py --smoke      # tiny sizes, seconds on a CPU (the tests run it); JSON to a temp file or --out

Measures, in one process:
- inner loop: metarl's PPO env-steps/s on Breakout- and SpaceInvaders-MinAtar (64 envs x 128 steps) for 1, 64,
  256 and 1024 agents vmapped on one device, beside raw vmapped env stepping (random actions) at the same number
  of envs; and the plain single-file PPO (reference_ppo.py, same settings, conv torso) on Breakout, 1 and many agents;
- outer loop: seconds per ES generation (LPO, OpenES, one 1e6-step MinAtar PPO run per member) for populations
  64, 256 and 1024, the population chunk metarl's memory estimate chose, XLA's memory figure for the compiled
  generation and the device's peak memory;
- compile times (apart from run times: each function is compiled ahead of time, then timed), device, versions.

Every case has a time guard: the cases run most important first, and one whose projected time (from the cases
measured before it) exceeds what is left of ``--budget-seconds`` is skipped and recorded as "skipped: reason".
The JSON is rewritten after every case, so a run stopped from outside keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

import jax
import jax.numpy as jnp

from metarl import envs, objectives
from metarl.config import PPOConfig
from metarl.inner import default_task, make_train
from metarl.presets import MINATAR

sys.path.insert(0, str(Path(__file__).parent))
from inner_loop import random_stepping  # noqa: E402
from reference_ppo import make_reference_train  # noqa: E402

ENVS = ("Breakout-MinAtar", "SpaceInvaders-MinAtar")
TARGETS = {
    "aggregate_env_steps_per_second": 1e7,  # a MinAtar PPO population on one device
    "generation_256_seconds": 60.0,  # 256 members x 1e6 MinAtar steps
    "metarl_to_reference_ppo": 1.0,  # same settings, same device
}
FIRST_CASE_GUESS = 60.0  # seconds assumed for a kind of case before any of it was measured


@dataclasses.dataclass(frozen=True)
class Sizes:
    envs: tuple[str, ...]
    agents: tuple[int, ...]
    reference_agents: tuple[int, ...]
    populations: tuple[int, ...]
    ppo: PPOConfig  # inner-loop cases (a few updates: throughput, not learning)
    lifetime_ppo: PPOConfig  # one ES member's run
    repeats: int
    compiler_options: dict | None = None  # XLA options of every timed compile


def sizes(smoke: bool) -> Sizes:
    if smoke:
        # One size of each kind on one env: every code path, three compiles (~10 s each on a loaded 2-core CPU).
        tiny = dataclasses.replace(MINATAR, num_envs=4, num_steps=8, num_minibatches=2, hidden_sizes=(16,))
        return Sizes(envs=ENVS[:1], agents=(2,), reference_agents=(2,), populations=(4,),
                     ppo=dataclasses.replace(tiny, total_timesteps=4 * 8 * 2),
                     lifetime_ppo=dataclasses.replace(tiny, total_timesteps=4 * 8 * 2), repeats=1,
                     compiler_options={"xla_backend_optimization_level": 0})  # halves XLA's CPU compile; numbers unused
    return Sizes(envs=ENVS, agents=(1, 64, 256, 1024), reference_agents=(1, 64, 256), populations=(64, 256, 1024),
                 ppo=dataclasses.replace(MINATAR, total_timesteps=64 * 128 * 8),
                 lifetime_ppo=dataclasses.replace(MINATAR, total_timesteps=1_000_000), repeats=2)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def device_memory(device=None) -> dict:
    """The device allocator's limit, use and peak (bytes; None where the backend keeps no statistics, e.g. CPU).
    The peak is the process's so far: jax cannot reset it, so it is read after each case in increasing size."""
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # some backends raise instead of returning None
        stats = {}
    return {"bytes_limit": stats.get("bytes_limit"), "bytes_in_use": stats.get("bytes_in_use"),
            "peak_bytes_in_use": stats.get("peak_bytes_in_use")}


def xla_memory_bytes(executable) -> int | None:
    """XLA's own figure for a compiled program: arguments + outputs + temporaries (None if not reported)."""
    try:
        analysis = executable.memory_analysis()
    except Exception:
        return None
    if analysis is None:
        return None
    return int(analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes)


def compile_ahead(fn, *args, options: dict | None = None):
    """(executable, compile seconds): lowered and compiled before any call, so no run time counts as compile.
    ``options``: XLA compiler options (None: XLA's defaults, as metarl's own runs compile)."""
    start = time.perf_counter()
    executable = jax.jit(fn).lower(*args).compile(compiler_options=options)
    return executable, time.perf_counter() - start


def run_seconds(executable, *args, repeats: int) -> float:
    """Best of ``repeats`` calls (one only when a call takes over 5 s: the budget matters more than the noise)."""
    best = math.inf
    for i in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(executable(*args))
        best = min(best, time.perf_counter() - start)
        if i == 0 and best > 5.0:
            break
    return best


def raw_stepping(env_name: str, num_envs: int, num_steps: int, repeats: int, options: dict | None = None) -> dict:
    """Vmapped env stepping with uniformly random actions in lax.scan, no learning: the env's ceiling."""
    run = random_stepping(env_name, num_envs, num_steps)
    executable, compile_seconds = compile_ahead(run, jax.random.PRNGKey(0), options=options)
    seconds = run_seconds(executable, jax.random.PRNGKey(1), repeats=repeats)
    steps = num_envs * num_steps
    return {"num_envs": num_envs, "env_steps": steps, "compile_seconds": round(compile_seconds, 2),
            "run_seconds": round(seconds, 4), "steps_per_second": steps / seconds}


def metarl_ppo(env_name: str, config: PPOConfig, agents: int, repeats: int, options: dict | None = None) -> dict:
    """metarl's PPO (``make_train`` with the ``ppo`` objective), ``agents`` independent runs vmapped on one device."""
    env = envs.make(env_name)
    train = make_train(config, env, objectives.make("ppo"))
    task = default_task(config, env)
    keys = jax.random.split(jax.random.PRNGKey(0), agents)
    fn = jax.vmap(train, in_axes=(None, None, 0))
    executable, compile_seconds = compile_ahead(fn, {}, task, keys, options=options)
    seconds = run_seconds(executable, {}, task, keys, repeats=repeats)
    steps = config.num_updates * config.batch_size * agents
    return {"agents": agents, "num_envs": config.num_envs, "num_steps": config.num_steps, "num_updates": config.num_updates,
            "env_steps": steps, "compile_seconds": round(compile_seconds, 2), "run_seconds": round(seconds, 4),
            "steps_per_second": steps / seconds, "xla_memory_bytes": xla_memory_bytes(executable)}


def reference_ppo(env_name: str, config: PPOConfig, agents: int, repeats: int, options: dict | None = None) -> dict:
    """The plain single-file PPO at the same settings (envs, steps, epochs, minibatches, lr, conv torso)."""
    train = make_reference_train(env_id=env_name, num_envs=config.num_envs, num_steps=config.num_steps,
                                 total_timesteps=config.total_timesteps, epochs=config.update_epochs,
                                 minibatches=config.num_minibatches, lr=config.lr, hidden=config.hidden_sizes[0], conv=True)
    keys = jax.random.split(jax.random.PRNGKey(0), agents)
    executable, compile_seconds = compile_ahead(jax.vmap(train), keys, options=options)
    seconds = run_seconds(executable, keys, repeats=repeats)
    steps = config.num_updates * config.batch_size * agents
    return {"agents": agents, "env_steps": steps, "compile_seconds": round(compile_seconds, 2), "run_seconds": round(seconds, 4),
            "steps_per_second": steps / seconds}


def es_generation_seconds(population: int, env_name: str, ppo: PPOConfig, repeats: int, options: dict | None = None) -> dict:
    """Seconds per jitted ES generation: LPO, OpenES, ``population`` members of one ``ppo``-lifetime run each,
    the population chunk chosen by metarl's memory estimate. Every metarl-internal call of the outer loop is
    here (the driver's internals are being reshaped; this mirrors benchmarks/es_generation.py)."""
    from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
    from metarl.meta.memory import population_chunk
    from metarl.meta.run import build, place
    from metarl.meta.tasks import References, make_member_evaluator

    config = MetaTrainConfig(objective="lpo", ppo=ppo, outer=ESConfig(population_size=population), eval_seeds=0,
                             tasks=TaskDistribution(envs=(env_name,), normalize=False, seeds_per_member=1),
                             verdict=VerdictConfig(num_seeds=0), reference_store="")
    config.validate()
    start = time.perf_counter()
    built = build(config)  # the population mesh and the memory-based chunk (may compile a memory analysis)
    build_seconds = time.perf_counter() - start
    key = jax.random.PRNGKey(0)
    problem, loop = built
    chunk = population_chunk(config, make_member_evaluator(config, problem.objective, problem.env_specs, 1, problem.components),
                             problem.meta_params, loop.mesh.size, problem.env_specs)  # the chunk build chose (for the report)
    references = References(jnp.zeros(1), jnp.ones(1))
    state = place(loop.init(key, problem.meta_params), loop.mesh)
    executable, compile_seconds = compile_ahead(lambda state, key: loop.step(state, key, references), state, key, options=options)
    seconds = run_seconds(executable, state, key, repeats=repeats)
    steps = population * ppo.num_updates * ppo.batch_size
    return {"population": population, "devices": loop.mesh.size, "population_chunk": chunk,
            "lifetime_env_steps": ppo.num_updates * ppo.batch_size, "num_updates": ppo.num_updates,
            "build_seconds": round(build_seconds, 2), "compile_seconds": round(compile_seconds, 2),
            "seconds_per_generation": round(seconds, 3), "env_steps_per_second": steps / seconds,
            "xla_memory_bytes": xla_memory_bytes(executable), **device_memory()}


class Budget:
    """Seconds left for the run; a case is skipped when its projection does not fit in them."""

    def __init__(self, seconds: float, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + seconds

    def left(self) -> float:
        return self.deadline - self.clock()

    def skip_reason(self, projected: float) -> str | None:
        left = self.left()
        if projected > left:
            return f"skipped: projected {projected:.0f} s, {max(left, 0):.0f} s of the budget left"
        return None


def project(measured: list[tuple[int, dict]], size: int, run_key: str = "run_seconds", repeats: int = 1) -> float:
    """Seconds a case of ``size`` (agents or members) will take, from cases of the same kind measured before:
    the largest smaller one's compile time x 1.5 plus its run time scaled linearly (an over-estimate on a device
    that smaller sizes leave idle). Before any was measured: a fixed guess."""
    smaller = [(s, r) for s, r in measured if s <= size and isinstance(r, dict) and run_key in r]
    if not smaller:
        return FIRST_CASE_GUESS
    s, r = max(smaller, key=lambda pair: pair[0])
    run = r[run_key] * size / s
    return 1.5 * r.get("compile_seconds", 0.0) + r.get("build_seconds", 0.0) + run * (repeats if run < 5.0 else 1)


def finite_ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or b <= 0:
        return None
    return a / b


def summarize(report: dict) -> dict:
    """The issue's targets against the measured figures (``met`` None where no case for it ran): the fastest
    population of PPO agents (vmapped agents, or an ES generation's members), the 256-member generation, and
    the slowest metarl / reference ratio over the agent counts measured."""
    populations = [(c["metarl_ppo"]["steps_per_second"], f"inner loop {env} x{agents}")
                   for env, per_env in report["inner_loop"].items() for agents, c in per_env.items()
                   if isinstance(c, dict) and "metarl_ppo" in c]
    populations += [(c["env_steps_per_second"], f"ES generation x{p}") for p, c in report["es_generation"].items()
                    if isinstance(c, dict) and "env_steps_per_second" in c]
    generation = report["es_generation"].get("256")
    ratios = {agents: c["ratio_metarl_to_reference"] for agents, c in report["reference_ppo"].items()
              if isinstance(c, dict) and c.get("ratio_metarl_to_reference") is not None}
    fastest = max(populations) if populations else (None, None)
    measured = {
        "aggregate_env_steps_per_second": (fastest[0], {"case": fastest[1]}),
        "generation_256_seconds": (generation.get("seconds_per_generation") if isinstance(generation, dict) else None, {}),
        "metarl_to_reference_ppo": (min(ratios.values()) if ratios else None, {"by_agents": ratios}),
    }
    out = {}
    for name, target in TARGETS.items():
        value, detail = measured[name]
        met = None if value is None else (value <= target if name == "generation_256_seconds" else value >= target)
        out[name] = {"target": target, "measured": value, "met": met, **detail}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes for a CPU run of seconds (the tests use it)")
    parser.add_argument("--budget-seconds", type=float, default=420.0, help="time for all cases; later cases that do not fit are skipped")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/device-<device kind>.json)")
    args = parser.parse_args(argv)

    from metarl.app.info import describe

    budget = Budget(args.budget_seconds)
    size = sizes(args.smoke)
    info = describe()
    device = jax.local_devices()[0]
    kind = slug(device.device_kind if device.platform != "cpu" else "cpu")
    if args.out:
        out = Path(args.out)
    elif args.smoke:
        out = Path(tempfile.gettempdir()) / f"device-{kind}-smoke.json"
    else:
        out = Path(__file__).parent / "results" / f"device-{kind}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    first = info["devices"][0]
    report: dict = {
        "smoke": args.smoke, "device": {"platform": device.platform, "kind": device.device_kind, "count": info["device_count"],
                                        "memory_bytes": first["memory_bytes"], "memory_source": first["memory_source"]},
        "versions": info["versions"], "backend": info["backend"], "budget_seconds": args.budget_seconds,
        "settings": {"inner": {"num_envs": size.ppo.num_envs, "num_steps": size.ppo.num_steps, "num_updates": size.ppo.num_updates,
                               "update_epochs": size.ppo.update_epochs, "num_minibatches": size.ppo.num_minibatches},
                     "es_member_lifetime_env_steps": size.lifetime_ppo.num_updates * size.lifetime_ppo.batch_size,
                     "agents": list(size.agents), "populations": list(size.populations),
                     "compiler_options": size.compiler_options},
        "inner_loop": {env: {} for env in size.envs}, "reference_ppo": {}, "es_generation": {}, "skipped": [],
    }

    def write():
        report["elapsed_seconds"] = round(args.budget_seconds - budget.left(), 1)
        report["targets"] = summarize(report)
        out.write_text(json.dumps(report, indent=2) + "\n")

    def case(section: dict, key: str, name: str, projected: float, measure) -> None:
        reason = budget.skip_reason(projected)
        if reason:
            section[key] = reason
            report["skipped"].append(f"{name}: {reason}")
        else:
            try:
                section[key] = measure()
            except Exception as error:  # an out-of-memory case is a result too; the others still run
                section[key] = {"error": f"{type(error).__name__}: {str(error)[:500]}"}
                traceback.print_exc()
        print(f"[{args.budget_seconds - budget.left():6.1f} s] {name}: {json.dumps(section[key])[:300]}", file=sys.stderr, flush=True)
        write()

    def ppo_measured(env: str) -> list[tuple[int, dict]]:
        """metarl PPO cases measured on ``env`` (on any env before the first of ``env``)."""
        def rows(names):
            return [(int(a), c.get("metarl_ppo", c)) for e in names for a, c in report["inner_loop"][e].items() if isinstance(c, dict)]

        return rows([env]) or rows(size.envs)

    def inner_case(env: str, agents: int) -> None:
        def measure():
            ppo = metarl_ppo(env, size.ppo, agents, size.repeats, size.compiler_options)
            raw = raw_stepping(env, size.ppo.num_envs * agents, size.ppo.num_updates * size.ppo.num_steps, size.repeats,
                               size.compiler_options)
            return {"metarl_ppo": ppo, "raw_stepping": raw,
                    "ratio_metarl_to_raw": finite_ratio(ppo["steps_per_second"], raw["steps_per_second"])}

        projected = 1.3 * project(ppo_measured(env), agents, repeats=size.repeats)  # raw stepping: a fraction of PPO's time
        case(report["inner_loop"][env], str(agents), f"inner {env} x{agents}", projected, measure)

    def reference_case(agents: int) -> None:
        env = ENVS[0]

        def measure():
            ref = reference_ppo(env, size.ppo, agents, size.repeats, size.compiler_options)
            ours = report["inner_loop"][env].get(str(agents), {})
            ours = ours.get("metarl_ppo", {}).get("steps_per_second") if isinstance(ours, dict) else None
            return {**ref, "env": env, "ratio_metarl_to_reference": finite_ratio(ours, ref["steps_per_second"])}

        measured = [(int(a), c) for a, c in report["reference_ppo"].items() if isinstance(c, dict)] or ppo_measured(env)
        projected = project(measured, agents, repeats=size.repeats)
        case(report["reference_ppo"], str(agents), f"reference PPO {env} x{agents}", projected, measure)

    def generation_case(population: int) -> None:
        measured = [(int(p), c) for p, c in report["es_generation"].items() if isinstance(c, dict)]
        projected = project(measured, population, run_key="seconds_per_generation", repeats=size.repeats)
        if measured:  # a larger population may need the memory estimate's own compile (metarl.meta.memory): one more
            projected += max(r.get("compile_seconds", 0.0) for _, r in measured if isinstance(r, dict))
        case(report["es_generation"], str(population), f"ES generation x{population}", projected,
             lambda: es_generation_seconds(population, ENVS[0], size.lifetime_ppo, size.repeats, size.compiler_options))

    # Most important first, so a short budget keeps the three targets: one agent of each PPO (the ratio),
    # the generations up to 256 members, then the large populations of agents, the second env, the largest generation.
    first, *more_agents = size.agents
    inner_case(ENVS[0], first)
    reference_case(size.reference_agents[0])
    for population in size.populations[:2]:
        generation_case(population)
    for agents in more_agents:
        inner_case(ENVS[0], agents)
        if agents in size.reference_agents:
            reference_case(agents)
    for env in size.envs[1:]:
        for agents in size.agents:
            inner_case(env, agents)
    for population in size.populations[2:]:
        generation_case(population)
    write()
    print(json.dumps(report["targets"], indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
