"""`metarl info`: what metarl sees on this machine (backend, devices and their memory, processes, versions).

The first thing to run on a new GPU machine or cluster node: a CUDA install that jax cannot load falls back
to the CPU with only a warning, and this names the backend that was actually picked.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from typing import Any

import jax

import metarl
from metarl import curricula, envs, objectives, shaping
from metarl.app.cli import compile_cache_dir
from metarl.meta import registry as loops
from metarl.meta.evosax_adapter import algorithm_names

# Distributions whose versions decide what a run computes (and how fast); metarl's own last.
PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "evosax", "gymnax", "orbax-checkpoint", "metarl")


def versions(packages=PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None if absent), and Python's."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    if found.get("metarl") is None and "metarl" in packages:  # run from a source folder on PYTHONPATH, not installed

        found["metarl"] = f"{metarl.__version__} (source)"
    return found


def host_memory_bytes() -> int | None:
    """Total physical memory of this host (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def describe_device(device) -> dict[str, Any]:
    """One device: id, platform, kind, and its memory. An accelerator reports its allocator's limit and use
    (``memory_stats()``); a CPU device reports none, so the host's memory stands in (``memory_source``)."""
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # some backends raise instead of returning None
        stats = None
    entry: dict[str, Any] = {
        "id": device.id,
        "platform": device.platform,
        "kind": device.device_kind,
        "process_index": getattr(device, "process_index", 0),
    }
    if stats and "bytes_limit" in stats:
        entry.update(memory_bytes=int(stats["bytes_limit"]), memory_in_use_bytes=int(stats.get("bytes_in_use", 0)),
                     memory_source="device")
    else:
        entry.update(memory_bytes=host_memory_bytes(), memory_in_use_bytes=None, memory_source="host")
    return entry


def describe(devices=None, cache_dir=None) -> dict[str, Any]:
    """Backend, every device (``devices``: default all of jax's), process count and index, versions and
    ``cache_dir``, the compilation-cache folder of CLI runs (the CLI passes it: this module does not import the CLI)."""
    devices = jax.devices() if devices is None else list(devices)
    return {
        "backend": jax.default_backend(),
        "device_count": len(devices),
        "local_device_count": jax.local_device_count(),
        "process_count": jax.process_count(),
        "process_index": jax.process_index(),
        "devices": [describe_device(d) for d in devices],
        "versions": versions(),
        "compile_cache_dir": None if cache_dir is None else str(cache_dir),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "machine": platform.machine(),
        "cpu_cores": os.cpu_count(),
    }


def _gib(value: int | None) -> str:
    return "?" if value is None else f"{value / 2**30:.1f} GiB"


def format_info(info: dict[str, Any]) -> str:
    lines = [f"backend      {info['backend']} ({info['device_count']} devices, {info['local_device_count']} local; "
             f"process {info['process_index']} of {info['process_count']})"]
    for d in info["devices"]:
        memory = _gib(d["memory_bytes"]) + (" (host)" if d["memory_source"] == "host" else "")
        if d["memory_in_use_bytes"] is not None:
            memory += f", {_gib(d['memory_in_use_bytes'])} in use"
        lines.append(f"device {d['id']:<5} {d['platform']} · {d['kind']} · {memory}")
    lines.append("versions     " + " · ".join(f"{name} {version or 'missing'}" for name, version in info["versions"].items()))
    if info["compile_cache_dir"]:
        lines.append(f"cache        {info['compile_cache_dir']}")
    host = f"host         {info['machine']}, {info['cpu_cores']} cores"
    lines.append(host + (f", XLA_FLAGS={info['xla_flags']}" if info["xla_flags"] else ""))
    return "\n".join(lines)


def print_info(as_json: bool = False, cache_dir=None) -> dict[str, Any]:
    info = describe(cache_dir=cache_dir)
    if as_json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    sys.stdout.flush()
    return info


if __name__ == "__main__":
    print_info("--json" in sys.argv[1:])


def list_main(args: list[str], argv: list[str]) -> int:
    """`metarl list`: the registered envs, objectives, curricula, shapings, outer loops and ES algorithms."""
    print("objectives:", ", ".join(objectives.names()))
    print("curricula:", ", ".join(["none", *curricula.names()]))
    print("shapings:", ", ".join(shaping.names()), "· heuristics:", ", ".join(shaping.heuristics.REGISTRY.names()))
    print("envs:", ", ".join(envs.names()))
    print("envs with a level space (curricula):", ", ".join(envs.LEVEL_ENVS))
    print("outer loops (meta-train outer:NAME):", ", ".join(loops.names()))
    print("es algorithms (outer:es --outer.algorithm):", ", ".join(algorithm_names()))
    return 0


def info_main(args: list[str], argv: list[str]) -> int:
    """`metarl info [--json]`."""
    print_info(as_json="--json" in args, cache_dir=compile_cache_dir())
    return 0
