"""How many population members one device evaluates at once.

A generation holds every member's whole inner run in memory at once (rollout buffers, activations,
optimizer states), so device memory grows linearly with the population. When a device's share of the
population does not fit, it evaluates its members ``chunk`` at a time (``jax.lax.map`` with a batch
size: a vmap over ``chunk`` members inside a scan over the chunks); each member's arithmetic is the
same, so the fitness is the same as the unchunked evaluation's.

The chunk comes from a memory estimate. A cheap upper bound is tried first: when the whole share fits
in a tenth of the free memory by that bound, nothing is chunked and nothing extra is compiled. Otherwise
XLA's own memory analysis of the compiled share gives the bytes per member, and the chunk is the largest
that fits in half of the free memory.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.config import MetaTrainConfig
from metarl.errors import ConfigError
from metarl.meta.tasks import References

ROUGH_FRACTION = 0.1  # the rough bound must fit in this share of free memory to skip the measurement
MEASURED_FRACTION = 0.5  # measured bytes may use this share of free memory


def free_bytes(device=None) -> int:
    """Free memory of one device: the accelerator's allocator limit minus what is in use, or on CPU the
    host's available memory divided among its local devices (they share it)."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages * os.sysconf("SC_PAGE_SIZE")) // max(1, jax.local_device_count())


def rough_member_bytes(config: MetaTrainConfig, obs_sizes: list[int], param_count: int) -> int:
    """A generous upper bound on one member's memory: per env and seed, the rollout of one update (obs,
    next obs and ~16 floats a step), the update's activations (x8 for forward, backward and copies) and
    the agent's parameters with their Adam moments and gradients; times 2 for XLA's temporaries."""
    ppo = config.ppo
    steps = ppo.num_envs * ppo.num_steps
    widest = max(ppo.hidden_sizes)
    per_run = 0
    for obs in obs_sizes:
        agent = 4 * (obs * widest + sum(ppo.hidden_sizes) * widest + 64 * widest)  # params (fp32), loose
        rollout = 4 * steps * (2 * obs + 16)
        activations = 4 * 8 * ppo.minibatch_size * (obs + sum(ppo.hidden_sizes))
        per_run += rollout + activations + 4 * agent + 4 * ppo.num_updates * 32
    return 2 * (config.tasks.seeds_per_member * per_run + 16 * param_count)


def measured_member_bytes(evaluate_member, solution, members: int, references) -> float:
    """Bytes per member from XLA's memory analysis of ``members`` members vmapped (arguments, temporaries
    and outputs, all counted against the members: an overestimate by the fixed part)."""
    population = jax.tree.map(lambda x: jax.ShapeDtypeStruct((members,) + jnp.shape(x), jnp.result_type(x)), solution)
    num_updates = jax.ShapeDtypeStruct((members,), jnp.int32)
    keys = jax.ShapeDtypeStruct((members, 2), jnp.uint32)
    batched = jax.jit(jax.vmap(evaluate_member, in_axes=(0, 0, 0, None)))
    analysis = batched.lower(population, num_updates, keys, references).compile().memory_analysis()
    if analysis is None:
        return float("nan")
    return (analysis.temp_size_in_bytes + analysis.output_size_in_bytes + analysis.argument_size_in_bytes) / members


def choose_chunk(members: int, member_bytes: float, budget: float) -> int:
    """The most members (at most ``members``) whose memory fits ``budget``; 0 means all at once."""
    if not np.isfinite(member_bytes) or member_bytes * members <= budget:
        return 0
    fits = int(budget // member_bytes)
    if fits < 1:
        raise ConfigError(
            f"population_chunk: one population member needs ~{member_bytes / 2**20:.0f} MiB, more than the "
            f"{budget / 2**20:.0f} MiB free on a device; shrink ppo.num_envs / num_steps or tasks.seeds_per_member"
        )
    return fits


def population_chunk(config: MetaTrainConfig, evaluate_member, solution: Any, num_devices: int, env_specs: list,
                     budget: float | None = None) -> int:
    """``config.population_chunk`` if given, else the chunk the memory estimate allows (0: no chunking).
    ``budget``: free bytes per device (default: measured)."""
    if config.population_chunk:
        return config.population_chunk
    members = config.outer.population_size // num_devices
    free = free_bytes() if budget is None else budget
    param_count = sum(int(np.size(x)) for x in jax.tree.leaves(solution))
    obs_sizes = [int(np.prod(spec.obs_shape)) for spec in env_specs]
    if rough_member_bytes(config, obs_sizes, param_count) * members <= ROUGH_FRACTION * free:
        return 0
    per_env = jax.ShapeDtypeStruct((len(env_specs),), jnp.float32)
    references = References(per_env, per_env)
    per_member = measured_member_bytes(evaluate_member, solution, min(members, 2), references)
    return choose_chunk(members, per_member, MEASURED_FRACTION * free)
