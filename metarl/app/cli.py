"""The `metarl` command. Subcommands parse a frozen config with tyro, validate it, then run.

    metarl train --env CartPole-v1 --objective ppo --num-seeds 4
    metarl train --env Breakout-MinAtar --objective-file results/.../learned/ta_lpo.msgpack
    metarl train --import my_objectives.py --objective my_drift   # a user's own objective
    metarl list                      # registered envs and objectives
"""

from __future__ import annotations

import sys
from pathlib import Path

from metarl.app.argv import outer_args
from metarl.config import MetaTrainConfig, TrainConfig
from metarl.errors import USER_ERRORS, ConfigError


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value of ``--flag X`` or ``--flag=X`` in ``args`` (last one wins), else None."""
    value = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
    return value


def load_plugins(args: list[str]) -> list[str]:
    """Import every ``--import X`` (a module name or a .py file) and return the remaining args.

    A plugin registers its own objectives (or envs, ...) at import, so a user's component is usable
    from the command line without editing metarl.
    """
    import importlib
    import importlib.util

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
    import os

    if os.environ.get("METARL_CACHE_DIR"):
        return Path(os.environ["METARL_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metarl" / "jax" / machine_signature()


def machine_signature() -> str:
    import hashlib
    import platform

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
    from metarl.app.commands import COMMANDS

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
    from metarl.distributed import configure_host_devices

    requested = _flag_value(args, "--host-devices")
    if requested is not None and not (requested.isdigit()):
        raise ConfigError(f"--host-devices: must be a whole number >= 0 (0: one per core), got {requested!r}")
    count = int(requested or 0)
    got = configure_host_devices(count)
    if count and got != count:
        why = (f"XLA_FLAGS already sets {got} host devices" if got is not None else
               "jax's backend had already started (in a program that imported jax before calling metarl)")
        raise ConfigError(f"--host-devices {count}: cannot take effect: {why}; drop the flag or start a fresh process")


def parse_train_config(args: list[str]) -> TrainConfig:
    """tyro parse with the env's PPO preset as defaults, so `--env X` alone trains well."""
    import tyro

    from metarl.presets import expand_preset, ppo_preset

    args = expand_preset("train", args)
    env = _flag_value(args, "--env") or TrainConfig.env
    default = TrainConfig(env=env, ppo=ppo_preset(env))
    return tyro.cli(TrainConfig, args=args, default=default, prog="metarl train",
                    description="Train an agent with one objective. --preset smoke: every stage at the smallest size (seconds).")


def meta_train_cli_type():
    """MetaTrainConfig whose ``outer`` is the tagged union of every registered loop's config (tyro subcommands
    ``outer:es``, ``outer:metagrad``, ...), built when the command runs so that plug-in loops are included."""
    import dataclasses
    from typing import Annotated, Union

    import tyro

    from metarl.meta import registry as loops

    choices = tuple(Annotated[c, tyro.conf.subcommand(c.name, default=c())] for c in loops.config_classes())
    default = dataclasses.field(default_factory=lambda: MetaTrainConfig().outer)
    union = Union[choices]  # noqa: UP007 (a union built from the registry)
    return dataclasses.make_dataclass("MetaTrainConfig", [("outer", union, default)], bases=(MetaTrainConfig,), frozen=True)


def parse_meta_train_config(args: list[str]) -> MetaTrainConfig:
    import dataclasses

    import tyro

    from metarl.presets import expand_preset

    args = expand_preset("meta-train", args)
    parsed = tyro.cli(meta_train_cli_type(), args=outer_args(args), prog="metarl meta-train",
                      description="Discover an objective's meta-parameters with an outer loop: outer:es (evolution strategies, "
                                  "the default) or outer:metagrad (meta-gradients); `metarl meta-train outer:es --help` lists its flags. "
                                  "--preset smoke: every stage, verdict included, at the smallest size (a minute or two on a laptop).")
    return MetaTrainConfig(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(MetaTrainConfig)})


def run_list() -> None:
    from metarl import curricula, envs, objectives, shaping
    from metarl.meta import registry as loops
    from metarl.meta.evosax_adapter import algorithm_names

    print("objectives:", ", ".join(objectives.names()))
    print("curricula:", ", ".join(["none", *curricula.names()]))
    print("shapings:", ", ".join(shaping.names()), "· heuristics:", ", ".join(shaping.heuristics.REGISTRY.names()))
    print("envs:", ", ".join(envs.names()))
    print("envs with a level space (curricula):", ", ".join(envs.LEVEL_ENVS))
    print("outer loops (meta-train outer:NAME):", ", ".join(loops.names()))
    print("es algorithms (outer:es --outer.algorithm):", ", ".join(algorithm_names()))


def parse_eval_config(args: list[str]):
    import tyro

    from metarl.app.evaluation import EvalConfig
    from metarl.presets import expand_preset

    return tyro.cli(EvalConfig, args=expand_preset("eval", args), prog="metarl eval",
                    description="Evaluate objectives on a grid. --preset smoke: every stage at the smallest size (seconds).")


def parse_sweep_options(args: list[str]):
    import tyro

    from metarl.app.sweep import SweepOptions

    return tyro.cli(SweepOptions, args=args, prog="metarl sweep", description="Run every run of a sweep file (sweeps/*.toml).")


def meta_train_main(config: MetaTrainConfig, argv: list[str]) -> int:
    from metarl.distributed import initialize
    from metarl.meta.run import NonFiniteFitnessError, run_meta_train

    config.distributed.validate()
    initialize(config.distributed)
    try:
        run_meta_train(config, argv)
    except NonFiniteFitnessError as error:
        print(f"metarl meta-train: stopped: {error}", file=sys.stderr)
        _leave_peers(3)
        return 3
    return 0


def train_main(config: TrainConfig, argv: list[str]) -> int:
    from metarl.app.train import run_train

    run_train(config, argv)
    return 0


def eval_main(config, argv: list[str]) -> int:
    from metarl.app.evaluation import run_eval

    run_eval(config, argv)
    return 0


def sweep_main(options, argv: list[str]) -> int:
    from metarl.app.sweep import SweepFailed, run_sweep
    from metarl.distributed import initialize

    options.distributed.validate()
    initialize(options.distributed)
    try:
        run_sweep(options.file, out=options.out, dry_run=options.dry_run, force=options.force, vmap=options.vmap,
                  plot=options.plot)
    except SweepFailed as error:
        print(f"metarl sweep: {error}", file=sys.stderr)
        _leave_peers(3)
        return 3
    return 0


def plot_main(args: list[str], argv: list[str]) -> int:
    from metarl.app.plots import plot_all

    roots = [a for a in args if not a.startswith("-")] or ["results"]
    for root in roots:
        if not Path(root).is_dir():
            raise ConfigError(f"plot: {root!r} is not a folder")
        for path in plot_all(root):
            print(f"wrote {path}")
    return 0


def list_main(args: list[str], argv: list[str]) -> int:
    run_list()
    return 0


def info_main(args: list[str], argv: list[str]) -> int:
    from metarl.app.info import print_info

    print_info(as_json="--json" in args, cache_dir=compile_cache_dir())
    return 0


def main(argv: list[str] | None = None) -> int:
    """`metarl <command> ...`: devices first (before any module can start jax's backend), then the user's
    ``--import`` modules, the compile cache, the command's parser and its run, all from :data:`metarl.app.commands.COMMANDS`."""
    from metarl.app.commands import COMMANDS, resolve, usage

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
        args = load_plugins(args)
        args = compile_cache(args, name)
        parsed = resolve(command.parse)(args) if command.parse else args
        return resolve(command.main)(parsed, argv) or 0
    except USER_ERRORS as error:
        print(f"metarl {name}: error: {error}", file=sys.stderr)
        _leave_peers(2)
        return 2
    except Exception as error:
        from metarl.io.results import disk_error

        cause = disk_error(error)  # a write the disk refused, outside the guarded ones: one line, not a library's traceback
        if cause is None or _has_peers():
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
    if _has_peers():
        import traceback

        traceback.print_exc()
        _leave_peers(1)


def verdict_main(args: list[str], argv: list[str] | None = None) -> int:
    """`metarl verdict PATH...`: every stored verdict recomputed from its per-seed scores; exit 1 when one differs
    from what its file says."""
    rewrite = "--rewrite" in args
    paths = [a for a in args if a != "--rewrite"]
    if not paths or any(a in ("-h", "--help") for a in args):
        print("usage: metarl verdict [--rewrite] PATH...   (meta-train run folders or summary.json files, eval run folders\n"
              "with a verdict)\n\n"
              "Recomputes each stored verdict from its stored per-seed scores alone and prints it; exit 1 if a recomputed\n"
              "number differs from the stored one. --rewrite stores the recomputed verdict instead (a verdict of an older\n"
              "protocol re-derived from the same scores; nothing is trained).")
        return 0 if any(a in ("-h", "--help") for a in args) else 2
    from metarl.app.reprint import reprint_path

    failed = False
    for path in paths:
        try:
            text, mismatches = reprint_path(path, rewrite=rewrite)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(f"verdict: {error}") from None
        print(text)
        if mismatches and rewrite:
            print(f"  rewrote the stored verdict (it differed in {', '.join(mismatches[:6])}{' ...' if len(mismatches) > 6 else ''})")
        elif mismatches:
            failed = True
            print(f"  MISMATCH: the stored verdict differs from its scores in {', '.join(mismatches)}", file=sys.stderr)
    return 1 if failed else 0


def _has_peers() -> bool:
    if "jax" not in sys.modules:  # only a run that started jax can have peers
        return False
    import jax

    return jax.process_count() > 1


def _leave_peers(code: int) -> None:
    """With several processes, exit at once: see metarl.distributed.exit_if_peers."""
    if "jax" in sys.modules:  # only a run that started jax can have peers
        from metarl.distributed import exit_if_peers

        exit_if_peers(code)


if __name__ == "__main__":
    sys.exit(main())
