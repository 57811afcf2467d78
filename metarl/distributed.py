"""Devices and hosts: split the CPU into one XLA host device per core, join several processes with
``jax.distributed``, and the population mesh ("pop" axis) over every device of every process.

On one CPU device XLA keeps small networks mostly on one core (vmapping 32 seeds gave ~1.2x);
sharding the population over one host device per core gave 2.3-2.6x on 2 cores (shared/ANCHORS.md).
The flag must be set before jax initializes its backend, so the CLI calls
:func:`configure_host_devices` before anything imports jax.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

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


# Flags win; then metarl's variables; then jax's own (what `jax.distributed.initialize` reads itself).
_ENV = {
    "coordinator": ("METARL_COORDINATOR", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("METARL_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("METARL_PROCESS_ID", "JAX_PROCESS_ID"),
}


@dataclass(frozen=True)
class DistributedConfig:
    """Several processes (hosts) running one meta-training run. Every process runs the same command; each
    evaluates its share of the population, process 0 writes logs and results, all take part in checkpoints."""

    coordinator: str | None = None
    """host:port of process 0 (env: METARL_COORDINATOR or JAX_COORDINATOR_ADDRESS); 'auto': let jax detect a
    cluster (SLURM, Open MPI, ...). Unset: one process."""
    num_processes: int = 0
    """Number of processes (env: METARL_NUM_PROCESSES or JAX_NUM_PROCESSES)."""
    process_id: int = -1
    """This process's id, 0 .. num_processes - 1 (env: METARL_PROCESS_ID or JAX_PROCESS_ID)."""
    heartbeat_timeout: int = 30
    """Seconds without a peer's heartbeat after which the other processes stop (non-zero exit) instead of waiting."""

    def resolved(self) -> DistributedConfig:
        """Unset fields filled from the environment."""
        values = {}
        for name, variables in _ENV.items():
            value = getattr(self, name)
            if value in (None, 0, -1):
                found = next((os.environ[v] for v in variables if os.environ.get(v)), None)
                if found is not None:
                    try:
                        value = found if name == "coordinator" else int(found)
                    except ValueError:
                        raise ConfigError(f"distributed.{name}: environment variable has {found!r}, not an integer") from None
            values[name] = value
        return DistributedConfig(**values, heartbeat_timeout=self.heartbeat_timeout)

    @property
    def active(self) -> bool:
        return self.coordinator is not None

    def validate(self) -> DistributedConfig:
        config = self.resolved()
        if not config.active:
            return config
        if config.coordinator != "auto":
            host, _, port = config.coordinator.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"distributed.coordinator: must be host:port (or 'auto'), got {config.coordinator!r}")
            if config.num_processes < 1:
                raise ConfigError("distributed.num_processes: must be >= 1 with a coordinator "
                                  f"(flag or METARL_NUM_PROCESSES), got {config.num_processes}")
            if not 0 <= config.process_id < config.num_processes:
                raise ConfigError(f"distributed.process_id: must be in 0..{config.num_processes - 1}, got {config.process_id}")
        if config.heartbeat_timeout < 1:
            raise ConfigError(f"distributed.heartbeat_timeout: must be >= 1 second, got {config.heartbeat_timeout}")
        return config


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


def exit_if_peers(code: int) -> None:
    """With several processes, leave at once: a process that ends by raising would wait in jax's exit-time
    shutdown for peers that wait in a collective for it (both hang). ``os._exit`` lets the peers see it gone."""
    import jax

    if jax.process_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
