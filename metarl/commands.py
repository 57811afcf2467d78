"""The table of `metarl` commands, shared by the CLI (usage and dispatch) and the sweep runner (which runs
the commands that take a config: ``train``, ``meta-train``, ``eval``).

Each entry names its config class and the library function that runs it as ``module:attribute`` strings,
imported when used, so reading the table imports neither jax nor the registries.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple


class Command(NamedTuple):
    summary: str
    config: str | None = None  # "module:Class" of its frozen config (commands a sweep can run)
    run: str | None = None  # "module:function", called as function(config, argv, verbose=...)


COMMANDS: dict[str, Command] = {
    "meta-train": Command("discover an objective, curriculum or shaping with an outer loop (checkpointed, resumable)",
                          "metarl.config:MetaTrainConfig", "metarl.meta.run:run_meta_train"),
    "train": Command("train an agent with one objective (built-in or a learned file)", "metarl.config:TrainConfig",
                     "metarl.train:run_train"),
    "eval": Command("evaluate objectives (names or learned files) on envs x lifetimes x seeds", "metarl.evaluation:EvalConfig",
                    "metarl.evaluation:run_eval"),
    "sweep": Command("validate, then run every run of a sweep file (skips complete runs, resumes interrupted ones)"),
    "verdict": Command("reprint stored verdicts (meta-train or eval run folders) from their per-seed scores alone"),
    "plot": Command("regenerate every figure below a results folder from its files"),
    "list": Command("list the registered envs, objectives, outer loops, curricula and shapings"),
    "info": Command("backend, devices and their memory, processes, versions (--json for a machine-readable copy)"),
}

RUNNABLE = tuple(name for name, command in COMMANDS.items() if command.config)  # what a sweep stage may run


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def config_class(name: str) -> type:
    return _load(COMMANDS[name].config)


def runner(name: str):
    return _load(COMMANDS[name].run)


def usage() -> str:
    lines = ["usage: metarl <command> [options]   (metarl <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(lines)
