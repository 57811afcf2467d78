"""The `metarl` entry point: devices first, then the user's ``--import`` modules, the compile cache, and the
command's own parser and run, looked up in :data:`metarl.app.commands.COMMANDS`.

    metarl train --env CartPole-v1 --objective ppo --num-seeds 4
    metarl meta-train --preset smoke
    metarl train --import my_objectives.py --objective my_drift   # a user's own objective
    metarl list                      # registered envs and objectives

XLA reads its device count when jax's backend starts, and importing gymnax starts it; so this module and the
few it imports at the top (argv, commands, config, errors, distributed, io.results, tyro) import no jax, and a
command's own module (which imports what it needs at its top) is imported only once the devices are set and,
for meta-train and sweep, the processes joined (from ``--distributed.*`` or the coordinator variables:
jax.distributed must also start before the backend).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import platform
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from metarl.app.argv import flag_value
from metarl.app.commands import COMMANDS, resolve, usage
from metarl.config import DistributedConfig
from metarl.distributed import configure_host_devices, has_peers, initialize, leave_peers
from metarl.errors import USER_ERRORS, ConfigError
from metarl.io.results import disk_error


def load_plugins(args: list[str]) -> list[str]:
    """Import every ``--import X`` (a module name or a .py file) and return the remaining args.

    A plugin registers its own objectives (or envs, ...) at import, so a user's component is usable
    from the command line without editing metarl.
    """
    remaining, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--import" or arg.startswith("--import="):
            target = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in arg else 2
            if not target:
                raise ConfigError("--import: needs a module name or a path to a .py file")
            if target.endswith(".py"):
                path = Path(target)
                if not path.is_file():
                    raise ConfigError(f"--import: file {target!r} does not exist")
                spec = importlib.util.spec_from_file_location(path.stem, path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                try:
                    importlib.import_module(target)
                except ModuleNotFoundError as error:
                    raise ConfigError(f"--import: cannot import {target!r} ({error})") from None
            continue
        remaining.append(arg)
        i += 1
    return remaining


COMPILE_CACHE_FLAG = "--no-compile-cache"


def compile_cache_dir() -> Path:
    """Where CLI runs keep compiled programs: $METARL_CACHE_DIR, else $XDG_CACHE_HOME/metarl/jax/<machine>
    (~/.cache/...). <machine> names the CPU's architecture and instruction-set flags: a CPU program compiled
    for one machine can crash another (SIGILL), and a home folder is often shared across a cluster's nodes."""
    if os.environ.get("METARL_CACHE_DIR"):
        return Path(os.environ["METARL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metarl" / "jax" / machine_signature()


def machine_signature() -> str:
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        flags = next((line for line in cpuinfo.read_text(errors="ignore").splitlines() if line.startswith(("flags", "Features"))), "")
    return f"{platform.machine() or 'cpu'}-{hashlib.sha256((platform.processor() + flags).encode()).hexdigest()[:10]}"


def compile_cache(args: list[str], command: str) -> list[str]:
    """Turn on JAX's persistent compilation cache for commands that compile (a repeated or swept command then
    loads its programs instead of compiling them); ``--no-compile-cache`` (any command) turns it off.
    The cache changes no number: a cached program is the program the compiler would build. A cache folder
    set already (JAX_COMPILATION_CACHE_DIR, or by the calling program) is kept."""
    if COMPILE_CACHE_FLAG in args:
        return [a for a in args if a != COMPILE_CACHE_FLAG]
    if command in COMMANDS and COMMANDS[command].compiles:
        import jax

        if jax.config.jax_compilation_cache_dir:
            return args
        folder = compile_cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return args


def set_up_devices(args: list[str]) -> None:
    """XLA's CPU device count from ``--host-devices`` (0 or absent: one per core), set before anything starts
    jax's backend. An explicit count that cannot take effect (the backend already started, or XLA_FLAGS already
    sets another count) is refused: the population would silently not be sharded as asked."""
    requested = flag_value(args, "--host-devices")
    if requested is not None and not (requested.isdigit()):
        raise ConfigError(f"--host-devices: must be a whole number >= 0 (0: one per core), got {requested!r}")
    count = int(requested or 0)
    got = configure_host_devices(count)
    if count and got != count:
        why = (f"XLA_FLAGS already sets {got} host devices" if got is not None else
               "jax's backend had already started (in a program that imported jax before calling metarl)")
        raise ConfigError(f"--host-devices {count}: cannot take effect: {why}; drop the flag or start a fresh process")


@dataclass(frozen=True)
class _Processes:
    """The ``--distributed.*`` flags alone, under their own names (tyro's messages then name them as typed)."""

    distributed: DistributedConfig = field(default_factory=DistributedConfig)


def join_processes(args: list[str], name: str) -> None:
    """Join the other processes now, from the ``--distributed.*`` flags and the METARL_/JAX_ coordinator variables
    (no flag and no variable: one process, and nothing happens): jax.distributed must start before jax's
    backend, and the command's module (gymnax among its imports) starts it when imported. The command's own
    parser reads the same flags again, with the rest."""
    own, i = [], 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--distributed."):
            own.append(arg)
            if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("--"):
                own.append(args[i + 1])
                i += 1
        i += 1
    initialize(tyro.cli(_Processes, args=own, prog=f"metarl {name}").distributed)


def main(argv: list[str] | None = None) -> int:
    """`metarl <command> ...`: devices first (before any module can start jax's backend), then the user's
    ``--import`` modules, the compile cache, the command's parser and its run, all from :data:`metarl.app.commands.COMMANDS`."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(usage())
        return 0
    name, args = argv[1], argv[2:]
    command = COMMANDS.get(name)
    if command is None:
        print(f"metarl: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if command.help and any(a in ("-h", "--help") for a in args):  # commands without a parser of their own
        print(command.help)
        return 0
    try:
        if command.devices:
            set_up_devices(args)
        if command.distributed and not any(a in ("-h", "--help") for a in args):
            join_processes(args, name)
        args = load_plugins(args)
        args = compile_cache(args, name)
        parsed = resolve(command.parse)(args) if command.parse else args
        return resolve(command.main)(parsed, argv) or 0
    except USER_ERRORS as error:
        print(f"metarl {name}: error: {error}", file=sys.stderr)
        leave_peers(2)
        return 2
    except Exception as error:
        cause = disk_error(error)  # a write the disk refused, outside the guarded ones: one line, not a library's traceback
        if cause is None or has_peers():
            _tell_peers()
            raise
        where = f" {cause.filename}" if cause.filename else ""
        print(f"metarl {name}: error: could not write{where}: {cause.strerror or cause}", file=sys.stderr)
        return 2
    except BaseException:
        _tell_peers()
        raise


def _tell_peers() -> None:
    """Before an unexpected exception propagates: with peer processes (several hosts), print it and tell them to leave."""
    if has_peers():
        traceback.print_exc()
        leave_peers(1)


if __name__ == "__main__":
    sys.exit(main())
