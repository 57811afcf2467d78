"""Devices and hosts: split the CPU into one XLA host device per core, join several processes with
``jax.distributed``, and the population mesh ("pop" axis) over every device of every process.

On one CPU device XLA keeps small networks mostly on one core (vmapping 32 seeds gave ~1.2x);
sharding the population over one host device per core gave 2.3-2.6x on 2 cores (shared/ANCHORS.md).
The flag must be set before jax initializes its backend, so the CLI calls
:func:`configure_host_devices` before anything imports jax. This module is read by the CLI before that
call, so it imports jax only inside its functions (the one library module that does).
"""

from __future__ import annotations

import os
import re
import sys

from metarl.config import DistributedConfig
from metarl.errors import ConfigError

_FLAG = "--xla_force_host_platform_device_count"


def configure_host_devices(count: int = 0) -> int | None:
    """Ask XLA for ``count`` CPU devices (0: one per core). Returns the count set, or None if it could not
    be set (jax already initialized, or the user set the flag themselves, which wins)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        match = re.search(_FLAG + r"=(\d+)", flags)
        return int(match.group(1)) if match else None
    if "jax" in sys.modules:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return None
    count = count or os.cpu_count() or 1
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
    return count


def population_mesh(population_size: int, num_devices: int | None = None, what: str = "outer.population_size"):
    """A 1-D mesh with axis "pop" over the default devices (all GPUs, or the host CPU devices)."""
    import jax
    from jax.sharding import AxisType

    devices = jax.devices()
    if num_devices is not None:
        devices = devices[:num_devices]
    if population_size % len(devices) != 0:
        raise ConfigError(
            f"{what}: {population_size} is not divisible by the device count {len(devices)} "
            f"({devices[0].platform}); choose a population that is a multiple of {len(devices)}"
            + (" or set --host-devices" if devices[0].platform == "cpu" else "")
        )
    return jax.make_mesh((len(devices),), ("pop",), axis_types=(AxisType.Auto,), devices=devices)


def initialize(config: DistributedConfig) -> bool:
    """Join the processes (before any jax computation). Returns whether this is a multi-process run."""
    config = config.validate()
    if not config.active:
        return False
    import jax

    # jax's preemption service would swallow SIGTERM (a scheduler's stop, `timeout`): let it end the process.
    jax.config.update("jax_enable_preemption_service", False)
    kwargs = {"initialization_timeout": 300, "heartbeat_timeout_seconds": config.heartbeat_timeout,
              "shutdown_timeout_seconds": 60}
    if config.coordinator != "auto":
        kwargs.update(coordinator_address=config.coordinator, num_processes=config.num_processes, process_id=config.process_id)
    jax.distributed.initialize(**kwargs)
    return jax.process_count() > 1


def barrier(name: str) -> None:
    """Wait until every process gets here (a no-op with one process)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def has_peers() -> bool:
    """Whether this run joined other processes (only a run that started jax can have)."""
    if "jax" not in sys.modules:
        return False
    import jax

    return jax.process_count() > 1


def leave_peers(code: int) -> None:
    """With several processes, exit at once (see :func:`exit_if_peers`); without jax started, nothing."""
    if "jax" in sys.modules:
        exit_if_peers(code)


def exit_if_peers(code: int) -> None:
    """With several processes, leave at once: a process that ends by raising would wait in jax's exit-time
    shutdown for peers that wait in a collective for it (both hang). ``os._exit`` lets the peers see it gone."""
    import jax

    if jax.process_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
