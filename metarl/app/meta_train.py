"""`metarl meta-train`: its parser (the config with every registered outer loop as a choice) and its run."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Union

import tyro

from metarl.app.argv import outer_args
from metarl.config import MetaTrainConfig
from metarl.distributed import leave_peers
from metarl.meta import registry as loops
from metarl.meta.run import NonFiniteFitnessError, run_meta_train
from metarl.presets import expand_preset


def meta_train_cli_type():
    """MetaTrainConfig whose ``outer`` is the tagged union of every registered loop's config (tyro subcommands
    ``outer:es``, ``outer:metagrad``, ...), built when the command runs so that plug-in loops are included."""
    choices = tuple(Annotated[c, tyro.conf.subcommand(c.name, default=c())] for c in loops.config_classes())
    default = dataclasses.field(default_factory=lambda: MetaTrainConfig().outer)
    union = Union[choices]  # noqa: UP007 (a union built from the registry)
    return dataclasses.make_dataclass("MetaTrainConfig", [("outer", union, default)], bases=(MetaTrainConfig,), frozen=True)


def parse_meta_train_config(args: list[str]) -> MetaTrainConfig:
    args = expand_preset("meta-train", args)
    parsed = tyro.cli(meta_train_cli_type(), args=outer_args(args), prog="metarl meta-train",
                      description="Discover an objective's meta-parameters with an outer loop: outer:es (evolution strategies, "
                                  "the default) or outer:metagrad (meta-gradients); `metarl meta-train outer:es --help` lists its flags. "
                                  "--preset smoke: every stage, verdict included, at the smallest size (a minute or two on a laptop).")
    return MetaTrainConfig(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(MetaTrainConfig)})


def meta_train_main(config: MetaTrainConfig, argv: list[str]) -> int:
    config.distributed.validate()  # the processes were joined by the CLI, before this module was imported
    try:
        run_meta_train(config, argv)
    except NonFiniteFitnessError as error:
        print(f"metarl meta-train: stopped: {error}", file=sys.stderr)
        leave_peers(3)
        return 3
    return 0
