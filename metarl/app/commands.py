"""The table of `metarl` commands: the CLI dispatches through it and the sweep runner parses and runs its
runs through it, so a command is parsed the same way wherever it comes from.

Each entry names its functions as ``module:attribute`` strings (or the functions themselves), imported when
used, so reading the table imports neither jax nor the registries. :func:`register` adds a command (a test's
toy command, a user module's own):

    register("hello", Command("say hello", main=lambda args, argv: print("hello", *args)))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metarl.errors import RegistryError


@dataclass(frozen=True)
class Command:
    summary: str
    """One line for `metarl --help`."""
    main: str | Callable
    """``main(parsed, argv) -> exit code or None``: what `metarl <name>` runs once its arguments are parsed."""
    parse: str | Callable | None = None
    """``parse(args) -> parsed``: the command's arguments (after the command name) to its config; None: the
    argument list itself goes to ``main``."""
    config: str | type | None = None
    """Its frozen config class: commands with one can be stages of a sweep file."""
    runner: str | Callable | None = None
    """``runner(config, argv, verbose=...)``: the library function a sweep calls for one run (no CLI wrapping)."""
    devices: bool = False
    """It reads ``--host-devices``: XLA's device count is set from argv before any module (``--import`` ones too)
    can start jax's backend."""
    distributed: bool = False
    """Its config has ``distributed`` (``--distributed.*``, or the METARL_/JAX_ coordinator variables): the CLI joins
    the processes before the command's module is imported (jax.distributed must start before jax's backend)."""
    compiles: bool = False
    """It compiles programs: JAX's persistent compilation cache is turned on (``--no-compile-cache`` turns it off)."""
    help: str | None = None
    """``metarl <name> --help`` of a command that has no parser of its own."""


def _help(*lines: str) -> str:
    return "\n".join(lines)


COMMANDS: dict[str, Command] = {
    "meta-train": Command("discover an objective, curriculum or shaping with an outer loop (checkpointed, resumable)",
                          main="metarl.app.meta_train:meta_train_main", parse="metarl.app.meta_train:parse_meta_train_config",
                          config="metarl.config:MetaTrainConfig", runner="metarl.meta.run:run_meta_train",
                          devices=True, distributed=True, compiles=True),
    "train": Command("train an agent with one objective (built-in or a learned file)", main="metarl.app.train:train_main",
                     parse="metarl.app.train:parse_train_config", config="metarl.config:TrainConfig", runner="metarl.app.train:run_train",
                     devices=True, compiles=True),
    "eval": Command("evaluate objectives (names or learned files) on envs x lifetimes x seeds", main="metarl.app.evaluation:eval_main",
                    parse="metarl.app.evaluation:parse_eval_config", config="metarl.app.evaluation:EvalConfig",
                    runner="metarl.app.evaluation:run_eval", compiles=True),
    "sweep": Command("validate, then run every run of a sweep file (skips complete runs, resumes interrupted ones)",
                     main="metarl.app.sweep:sweep_main", parse="metarl.app.sweep:parse_sweep_options", devices=True,
                     distributed=True, compiles=True),
    "verdict": Command("reprint stored verdicts (meta-train or eval run folders) from their per-seed scores alone",
                       main="metarl.app.reprint:verdict_main"),
    "plot": Command("regenerate every figure below a results folder from its files", main="metarl.app.plots:plot_main",
                    help=_help("usage: metarl plot [FOLDER ...]", "",
                               "Redraw every figure below each FOLDER (default: results) from its stored files",
                               "(meta-train and eval run folders, sweep folders); prints each file written.")),
    "list": Command("list the registered envs, objectives, outer loops, curricula and shapings", main="metarl.app.info:list_main",
                    help=_help("usage: metarl list", "",
                               "List the registered envs, objectives, curricula, shapings and heuristics, outer loops and",
                               "ES algorithms (a user's own too, with --import FILE.py).")),
    "info": Command("backend, devices and their memory, processes, versions (--json for a machine-readable copy)",
                    main="metarl.app.info:info_main",
                    help=_help("usage: metarl info [--json]", "",
                               "Backend, devices and their memory, processes, package versions and the compile cache.",
                               "  --json   a machine-readable copy")),
}


def register(name: str, command: Command, *, overwrite: bool = False) -> None:
    """Add a command to the table (`metarl <name>` then runs it)."""
    if name in COMMANDS and not overwrite:
        raise RegistryError(f"command {name!r} is already registered (pass overwrite=True to replace it)")
    COMMANDS[name] = command


def unregister(name: str) -> None:
    COMMANDS.pop(name, None)


def runnable() -> tuple[str, ...]:
    """The commands a sweep stage may run (those with a config)."""
    return tuple(name for name, command in COMMANDS.items() if command.config)


def resolve(target: str | Callable | type) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def config_class(name: str) -> type:
    return resolve(COMMANDS[name].config)


def parse(name: str, args: list[str]) -> Any:
    """``args`` parsed by command ``name``'s own parser (the one `metarl <name> ...` uses)."""
    return resolve(COMMANDS[name].parse)(args)


def runner(name: str):
    return resolve(COMMANDS[name].runner)


def usage() -> str:
    lines = ["usage: metarl <command> [options]   (metarl <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)
