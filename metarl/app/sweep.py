"""`metarl sweep sweeps/<name>.toml`: expand a sweep file into runs, validate them all, then run them.

A sweep file is data only. It names stages, each one command (meta-train, train or eval) with a ``base``
table of config fields, a ``grid`` (every combination of the listed values) and/or a list of ``runs``
(one override table each); every run is base ⊕ run ⊕ grid point. Keys are config fields, dotted or as
nested tables (``ppo.lr`` or ``[stage.base.ppo] lr``), with ``_`` or ``-``; ``outer = "metagrad"`` (or
``outer.name``) picks the outer loop and ``outer.x`` sets its fields; ``objective_kwargs`` may be a table
(``{ ppo_init = true }``), written as the JSON its flag takes. A run's keys become the arguments of its
command (``ppo.lr = 0.01``: ``--ppo.lr 0.01``), parsed by that command's own parser: the command line that
index.csv records is the one that built the run's config. String values may use
``{out}`` (the sweep's results folder); a stage's ``name`` is a template over the run's config fields,
e.g. ``"{objective}_s{seed}"``. A file holding one stage may put its keys at the top level.

    out = "results/ta_lpo_cartpole"     # default: results/<file name>
    [[stage]]
    command = "meta-train"
    name = "{objective}"
    base = { num_generations = 60, "outer.population_size" = 32 }
    grid = { objective = ["lpo", "ta_lpo"] }

Before any run starts, every run's config is built and validated, and every run folder that already
exists is checked against its stored config: a typo, a bad value or a changed config is reported with
the file, the stage, the run and the key. Then the runs go one after another; runs already complete are
skipped, an interrupted meta-training run resumes from its checkpoint (train and eval runs restart).
On several hosts every process runs the same sweep: meta-training runs use all of them, train and eval
runs run on process 0 while the others wait.
ES meta-training runs that differ only in numbers that can be vmapped (seed, σ, ES and PPO learning rates,
entropy coefficient) are stepped together in one jitted call (:func:`metarl.meta.run.run_meta_train_batch`).
``<out>/index.csv`` lists every run with its status,
its headline number and the equivalent single command, and ``<out>/sweep.toml`` keeps the file, so the
results regenerate from the folder alone.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import itertools
import json
import re
import shlex
import shutil
import sys
import time
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro

from metarl.app.argv import outer_args
from metarl.app.commands import config_class, parse, runnable, runner
from metarl.app.verdict import judged_as_asked
from metarl.checks import validate
from metarl.config import DistributedConfig, to_dict
from metarl.distributed import barrier, leave_peers
from metarl.errors import USER_ERRORS, ConfigError
from metarl.io.checkpoint import differing_fields
from metarl.io.lock import hold
from metarl.io.results import read_index
from metarl.meta import registry as loops
from metarl.meta.run import NonFiniteFitnessError, batch_group_key, is_writer, run_meta_train_batch

STAGE_KEYS = ("command", "name", "base", "grid", "runs", "vmap")
TOP_KEYS = ("description", "out", "plot", "stage")
RESERVED = ("out", "name", "force")  # set by the sweep itself


@dataclass(frozen=True)
class SweepOptions:
    """`metarl sweep FILE [options]`."""

    file: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="FILE")]
    """The sweep file (TOML)."""
    dry_run: bool = False
    """Validate and list the runs (with their status and command); run nothing."""
    force: bool = False
    """Start again the runs whose folder holds another config."""
    vmap: bool = True
    """Step ES runs that differ only in seed, σ, learning rates or entropy together (vmapped); --no-vmap: one by one."""
    plot: bool = True
    """Redraw the figures at the end."""
    out: str | None = None
    """Results folder (default: the file's 'out', else results/<file name>)."""
    host_devices: int = 0
    """CPU only: XLA host devices (0: one per core)."""
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    """Several hosts: every process runs the same sweep (meta-training runs use all of them)."""


class SweepFailed(RuntimeError):
    """Some runs stopped (every member non-finite); the others completed, and index.csv says which."""


INDEX_FIELDS = ("stage", "command", "run", "status", "seconds", "result", "overrides", "command_line")


@dataclass(frozen=True)
class Run:
    stage: int
    command: str
    name: str
    config: Any
    overrides: dict[str, Any]
    vmap: bool

    @property
    def run_dir(self) -> Path:
        return Path(self.config.out) / self.name

    args: tuple[str, ...] = ()
    """The arguments of its command that built ``config`` (:func:`build_config`)."""

    def command_line(self) -> list[str]:
        """The `metarl <command> ...` that makes this run alone: the very argv its config was parsed from."""
        return ["metarl", self.command, *self.args]


@dataclass(frozen=True)
class Sweep:
    path: Path
    out: Path
    plot: bool
    runs: list[Run]


# --- reading the file -----------------------------------------------------------------------------------


def _flatten(table: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Nested tables to dotted keys, ``-`` to ``_``."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of config fields, got {table!r}")
    flat = {}
    for key, value in table.items():
        dotted = prefix + ".".join(part.replace("-", "_") for part in key.split("."))
        if isinstance(value, dict) and dotted in JSON_KEYS:
            flat[dotted] = json.dumps(value, sort_keys=True)  # a factory's keywords: the JSON its flag takes
        elif isinstance(value, dict):
            flat.update(_flatten(value, where, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a list of {_describe(args[0])}"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


OUTER_NAME_KEYS = ("outer", "outer.name")  # the loop a meta-train run uses: its argv token outer:NAME
JSON_KEYS = ("objective_kwargs",)  # string fields holding a JSON object: a TOML table is accepted for them


def _field_hint(cls: type, key: str, skip: int = 0) -> Any:
    """The type of the config field ``key`` (dotted; its first ``skip`` parts lead to ``cls``), or a ConfigError
    naming the key and the allowed ones."""
    parts = key.split(".")
    owner, parts = ".".join(parts[:skip]), parts[skip:]
    for depth, name in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            allowed = ", ".join(sorted(f for f in fields if owner or f not in RESERVED))
            raise ConfigError(f"unknown key {key!r}; allowed keys{' of ' + owner if owner else ''}: {allowed}")
        hint = typing.get_type_hints(cls)[name]
        nested = hint if dataclasses.is_dataclass(hint) else None
        if depth < len(parts) - 1:
            if nested is None:
                raise ConfigError(f"unknown key {key!r}: {name!r} is not a table of fields")
            cls, owner = nested, ".".join(filter(None, [owner, name]))
        elif nested is not None:
            raise ConfigError(f"key {key!r}: is a table; set its fields ({', '.join(f.name for f in dataclasses.fields(nested))})")
    return hint


def _check_shape(value: Any, hint: Any, key: str) -> None:
    """TOML values the command line cannot spell for this field (a list for a number, a string for a switch) are
    refused here, naming the key; the values themselves are parsed by the command's own parser."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hints = [a for a in typing.get_args(hint) if a is not type(None)]
    else:
        hints = [hint]
    listed = any(typing.get_origin(h) is tuple for h in hints)
    if isinstance(value, bool) != (bool in hints) or (isinstance(value, list) and not listed) or (listed and not isinstance(value, list)):
        raise ConfigError(f"key {key!r}: expected {_describe(hint)}, got {value!r}")


def run_args(command: str, overrides: dict[str, Any]) -> list[str]:
    """A run's overrides as the arguments of its command, in the command line's spelling: ``ppo.lr = 0.01`` is
    ``--ppo.lr 0.01``, a false switch ``--ppo.no-anneal-lr``, a list its values, and the outer loop (``outer`` or
    ``outer.name``) its subcommand ``outer:NAME``. Unknown keys and values of the wrong shape are refused here,
    naming the key."""
    cls = config_class(command)
    loop = None
    for key in OUTER_NAME_KEYS:
        if key in overrides:
            loop = overrides[key]
            if command != "meta-train" or not isinstance(loop, str) or loop not in loops.names():
                raise ConfigError(f"key {key!r}: expected one of {', '.join(map(repr, loops.names()))}, got {loop!r}")
    args = []
    for key, value in overrides.items():
        if key in RESERVED:
            raise ConfigError(f"key {key!r} is set by the sweep (out: the sweep's 'out'; name: the stage's 'name')")
        if key in OUTER_NAME_KEYS:
            continue
        if key.startswith("outer."):
            hint = _field_hint(loops.config_class(loop or cls().outer.name), key, skip=1)
        else:
            hint = _field_hint(cls, key)
        _check_shape(value, hint, key)
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            head, _, last = flag.rpartition(".")
            args.append(flag if value else (f"{head}.no-{last}" if head else f"--no-{last[2:]}"))
        elif isinstance(value, list):
            args += [flag, *map(str, value)]
        else:
            args += [flag, str(value)]
    return args + ([f"outer:{loop}"] if loop else [])


def parse_run(command: str, args: list[str]) -> Any:
    """``args`` parsed by the command's own parser (:func:`metarl.app.commands.parse`, the one `metarl <command>` uses),
    its complaint (printed by tyro on the command line) turned into one ConfigError."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed), contextlib.redirect_stdout(printed):
            return parse(command, args)
    except SystemExit:
        raise ConfigError(_parser_complaint(printed.getvalue(), command)) from None


def _parser_complaint(text: str, command: str) -> str:
    """The lines of tyro's error panel that say what is wrong, flags spelled as sweep keys."""
    lines = [line.strip() for line in text.splitlines()]
    rules = [i for i, line in enumerate(lines) if line and set(line) <= {"-", "─", "━"}]
    body = lines[rules[0] + 1: rules[1]] if len(rules) >= 2 else [line for line in lines if line]
    message = " ".join(line for line in body if line) or f"metarl {command} refused the arguments"
    message = message.replace("for argument ", "for ")
    return re.sub(r"'?--((?:[a-z0-9-]+\.)*)(?:no-)?([a-z0-9-]+)'?",
                  lambda m: "key '" + (m.group(1) + m.group(2)).replace("-", "_") + "'", message)


def build_config(command: str, overrides: dict[str, Any]) -> Any:
    """The config `metarl <command>` builds from these overrides (its own parser; a train run starts from its env's
    PPO preset, as on the command line)."""
    return parse_run(command, run_args(command, overrides))


def _template_fields(config: Any, out: Path) -> dict[str, Any]:
    def show(value):
        return "+".join(map(str, value)) if isinstance(value, tuple) else value

    fields = {f.name: show(getattr(config, f.name)) for f in dataclasses.fields(config)}
    return {**fields, "out": str(out)}


def _default_name(command: str, overrides: dict[str, Any], varying: list[str]) -> str:
    if not varying:
        return command.replace("-", "_")
    parts = []
    for key in varying:
        value = overrides.get(key)
        value = "+".join(map(str, value)) if isinstance(value, list) else value
        parts.append(f"{key.rsplit('.', 1)[-1]}-{value}")
    return "_".join(parts).replace("/", "-")


def _with_out(value: Any, out: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{out}", str(out))
    if isinstance(value, list):
        return [_with_out(v, out) for v in value]
    return value


def _stage_overrides(stage: dict[str, Any], where: str, out: Path) -> list[tuple[dict[str, Any], str | None]]:
    """Every run of a stage: (overrides, the folder name its ``runs`` entry gives, if any)."""
    base = _flatten(stage.get("base", {}), f"{where} base")
    grid = _flatten(stage.get("grid", {}), f"{where} grid")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where} grid: key {key!r} must list its values, got {values!r}")
    items = stage.get("runs", [{}])
    if not isinstance(items, list):
        raise ConfigError(f"{where} runs: must be a list of tables ([[stage.runs]]), got {items!r}")
    expanded = []
    for i, item in enumerate(items):
        item = _flatten(item, f"{where} runs[{i}]")
        name = item.pop("name", None)
        points = list(itertools.product(*grid.values()))
        if name is not None and len(points) > 1:
            raise ConfigError(f"{where} runs[{i}]: a 'name' names one run, but the grid makes {len(points)}; use the stage's name template")
        for point in points:
            overrides = {**base, **item, **dict(zip(grid, point, strict=True))}
            expanded.append(({k: _with_out(v, out) for k, v in overrides.items()}, name))
    return expanded


def _planned_files(run: Run) -> list[Path]:
    """Learned files a meta-training run will write (later stages may name them before they exist)."""
    if run.command != "meta-train":
        return []
    config, learned = run.config, run.run_dir / "learned"
    files = [learned / f"{config.objective}.msgpack"]
    # every chunk's mean (metarl.meta.run): at generations chunk_size, 2 x chunk_size, ..., num_generations
    ends = sorted({min(g, config.num_generations) for g in range(config.chunk_size, config.num_generations + config.chunk_size,
                                                                   config.chunk_size)})
    files += [learned / "history" / f"{config.objective}_g{g:04d}.msgpack" for g in ends]
    if config.curriculum.name == "learned":
        files.append(learned / f"curriculum_{config.curriculum.name}.msgpack")
    if config.shaping.name in ("blend", "learned"):
        files.append(learned / f"shaping_{config.shaping.name}.msgpack")
    return files


def _validate(run: Run, planned: set[str]) -> None:
    config = run.config
    if run.command == "eval":  # learned files an earlier stage will write are checked when this stage runs
        keep = lambda entries: tuple(e for e in entries if str(Path(e)) not in planned) or None
        replaced = {name: keep(getattr(config, name)) for name in ("objectives", "curricula", "shapings")}
        dropped = any(v != getattr(config, k) for k, v in replaced.items())
        config = dataclasses.replace(config, **{k: v for k, v in replaced.items() if v is not None})
        if dropped and config.verdict_against:  # a verdict over files still to be written is checked when its stage runs
            config = dataclasses.replace(config, verdict_against="")
    if run.command == "meta-train" and config.init_from is not None and str(Path(config.init_from)) in planned:
        config = dataclasses.replace(config, init_from=None)  # the warm start is checked when its stage runs

    validate(config)


def load_sweep(path: str | Path, out: str | None = None) -> Sweep:
    """Read, expand and validate every run of a sweep file; nothing is run or written."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep: file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    if "stage" not in data:  # one stage, written at the top level
        unknown = sorted(set(data) - set(TOP_KEYS) - set(STAGE_KEYS))
        if unknown:
            raise ConfigError(f"{path}: unknown keys {unknown}; allowed: {', '.join(TOP_KEYS + STAGE_KEYS)}")
        data = {**{k: data[k] for k in TOP_KEYS if k in data}, "stage": [{k: data[k] for k in STAGE_KEYS if k in data}]}
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {unknown}; allowed: {', '.join(TOP_KEYS + STAGE_KEYS)}")
    root = Path(out or data.get("out") or Path("results") / path.stem)
    stages = data["stage"] if isinstance(data["stage"], list) else [data["stage"]]
    runs: list[Run] = []
    for index, stage in enumerate(stages, 1):
        where = f"{path}: stage {index}"
        unknown = sorted(set(stage) - set(STAGE_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {', '.join(STAGE_KEYS)}")
        command = stage.get("command")
        if command not in runnable():
            raise ConfigError(f"{where}: command must be one of {', '.join(runnable())}; got {command!r}")
        expanded = _stage_overrides(stage, where, root)
        varying = [k for k in dict.fromkeys(k for o, _ in expanded for k in o) if len({json.dumps(o.get(k)) for o, _ in expanded}) > 1]
        template = stage.get("name")
        for number, (overrides, given_name) in enumerate(expanded, 1):
            run_where = f"{where} run {number}"
            try:
                args = run_args(command, overrides)
                config = parse_run(command, args)
                if given_name is not None:
                    name = given_name
                elif template:
                    name = template.format_map(_template_fields(config, root))
                else:
                    name = _default_name(command, overrides, varying)
            except USER_ERRORS as error:
                raise ConfigError(f"{run_where}: {error}") from None
            except (KeyError, AttributeError, IndexError, ValueError) as error:
                raise ConfigError(f"{where}: name {template!r}: cannot be filled in ({error!r}); use config fields, e.g. "
                                  "'{objective}_s{seed}'") from None
            # The run's command line, parsed once more: the config is by construction the one this argv builds.
            args = [*args, "--out", str(root), "--name", name]
            if command == "meta-train":
                args = outer_args(args)  # as a user writes it: the loop's subcommand, then its own flags, last
            try:
                config = parse_run(command, args)
            except USER_ERRORS as error:
                raise ConfigError(f"{run_where}: {error}") from None
            runs.append(Run(index, command, name, config, overrides, bool(stage.get("vmap", True)), tuple(args)))
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: several runs would write the same folder {duplicates}; give the stages distinct 'name' templates")
    planned: set[str] = set()
    for run in runs:
        try:
            _validate(run, planned)
        except USER_ERRORS as error:
            raise ConfigError(f"{path}: stage {run.stage} run {run.name!r}: {error}") from None
        planned.update(str(p) for p in _planned_files(run))
    return Sweep(path, root, bool(data.get("plot", True)), runs)


# --- state of the runs on disk ------------------------------------------------------------------------


def _stored_differences(run: Run) -> list[str]:
    """Fields whose stored value differs from this run's (empty: same config or no folder yet). Fields
    added to metarl after a run was made count as equal when the run has their default."""
    stored_path = run.run_dir / "config.json"
    if not stored_path.is_file():
        return []
    stored = json.loads(stored_path.read_text())
    if stored.get("kind", run.command) != run.command:  # eval folders from before 'kind' was recorded have none
        return [f"kind (stored: {stored.get('kind')!r}, now: {run.command!r})"]
    plain = lambda values: json.loads(json.dumps(values))  # tuples as lists, as stored
    if run.command == "meta-train":
        return differing_fields(plain(stored["identity"]), plain(run.config.identity()))
    current, defaults = plain(to_dict(run.config)), plain(to_dict(type(run.config)()))
    previous = {**{k: v for k, v in defaults.items() if k not in stored["config"]}, **stored["config"]}
    for values in (current, previous):  # how a command runs, not what it computes (the store's keys hold all of that)
        values.pop("force", None)
        values.pop("reference_store", None)
    previous.pop("kind", None)  # early eval folders recorded it inside the config
    return differing_fields(previous, current)


def is_complete(run: Run) -> bool:
    if _stored_differences(run):
        return False
    if run.command == "eval":
        return (run.run_dir / "eval.npz").is_file()
    summary = run.run_dir / "summary.json"
    if run.command == "meta-train":
        last = run.config.num_generations
        if summary.is_file():
            stored = json.loads(summary.read_text())
            judged = (not run.config.verdict.num_seeds or "verdict" not in stored
                      or judged_as_asked(stored["verdict"], run.config.verdict, legacy=True))
            return stored.get("generations", 0) >= last and judged  # a changed verdict config: judged again on rerun
        # No summary: a run stopped after its last generation but before its verdict is not complete (rerun, it
        # resumes there and judges); only runs from before verdicts and summary.json count by their metrics.
        stored = run.run_dir / "config.json"
        if not stored.is_file() or "verdict" in json.loads(stored.read_text()).get("config", {}):
            return False
        metrics = run.run_dir / "metrics.jsonl"
        rows = metrics.read_text().splitlines() if metrics.is_file() else []
        return bool(rows) and json.loads(rows[-1])["generation"] + 1 >= last and any((run.run_dir / "learned").glob("*.msgpack"))
    return summary.is_file()


def headline(run: Run) -> str:
    """The number a reader of the index wants first: the last evaluated mean-params fitness (meta-train),
    the final return (train); eval runs have their table in summary.md."""
    summary, metrics = run.run_dir / "summary.json", run.run_dir / "metrics.jsonl"
    value = None
    if run.command == "meta-train" and metrics.is_file():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        value = next((r["mean_params_fitness"] for r in reversed(rows) if r.get("mean_params_fitness") is not None), None)
    elif run.command == "train" and summary.is_file():
        value = json.loads(summary.read_text()).get("final_return_mean")
    return "" if value is None else f"{value:.4g}"


def _write_index(sweep: Sweep, status: dict[str, str], seconds: dict[str, float]) -> Path:
    """index.csv: a row per run. A complete run not run by this invocation keeps the seconds an earlier one recorded
    (a rerun in place, or one that adds a stage, would otherwise blank every earlier run's time)."""
    path = sweep.out / "index.csv"
    earlier = {row["run"]: row.get("seconds", "") for row in read_index(path)} if path.is_file() else {}
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        for run in sweep.runs:
            writer.writerow({
                "stage": run.stage, "command": run.command, "run": run.name, "status": status[run.name],
                "seconds": f"{seconds[run.name]:.1f}" if run.name in seconds
                else earlier.get(run.name, "") if status[run.name] == "complete" else "", "result": headline(run),
                "overrides": json.dumps(run.overrides, sort_keys=True), "command_line": shlex.join(run.command_line()),
            })
    return path


# --- running ------------------------------------------------------------------------------------------


def _batch_groups(runs: list[Run]) -> list[list[Run]]:
    """Runs in order; ES meta-training runs that differ only in vmappable numbers (and allow it) grouped together."""
    groups: dict[str, list[Run]] = {}
    order: list[list[Run]] = []
    for run in runs:
        if run.command == "meta-train" and run.vmap and run.config.outer.batched_fields:
            key = f"{run.stage}:{batch_group_key(run.config)}"
            if key not in groups:
                groups[key] = []
                order.append(groups[key])
            groups[key].append(run)
        else:
            order.append([run])
    return order


def _start(run: Run, force: bool, verbose: bool) -> None:
    # train and eval are not resumable: an unfinished folder of the same config is started again
    fresh = force or (run.command != "meta-train" and run.run_dir.exists())
    config = dataclasses.replace(run.config, force=fresh)
    runner(run.command)(config, run.command_line(), verbose=verbose)


def run_sweep(path: str | Path, *, out: str | None = None, dry_run: bool = False, force: bool = False,
              vmap: bool = True, plot: bool = True, verbose: bool = True) -> Sweep:
    """Validate every run, then run the incomplete ones in order; see the module docstring."""
    sweep = load_sweep(path, out)
    changed = {run.name: diff for run in sweep.runs if (diff := _stored_differences(run))}
    if changed and not force:
        lines = "\n".join(f"  {name}: {'; '.join(diff)}" for name, diff in changed.items())
        raise ConfigError(f"{sweep.path}: run folders in {sweep.out} hold runs of a different config:\n{lines}\n"
                          "pass --force to run them again from scratch, or set another 'out'")
    status = {run.name: "complete" if is_complete(run) else "pending" for run in sweep.runs}
    if dry_run:
        for run in sweep.runs:
            print(f"[{status[run.name]:>8}] stage {run.stage} · {run.name}\n    {shlex.join(run.command_line())}")
        return sweep
    writer = is_writer()
    lock = None
    if writer:
        # One sweep per results folder: a second process started on it (a sweep started twice) is refused here, naming
        # the holder, before it writes anything or starts a run the first one is about to start.
        lock = hold(sweep.out)
        shutil.copyfile(sweep.path, sweep.out / "sweep.toml")
    try:
        return _run_groups(sweep, status, changed, force=force, vmap=vmap, plot=plot, verbose=verbose, writer=writer)
    finally:
        if lock is not None:
            lock.release()


def _run_groups(sweep: Sweep, status: dict[str, str], changed: dict[str, list[str]], *, force: bool, vmap: bool, plot: bool,
                verbose: bool, writer: bool) -> Sweep:
    """The incomplete runs, stage by stage (process 0 writes index.csv and the figures)."""
    seconds: dict[str, float] = {}
    failed = []
    for stage in sorted({run.stage for run in sweep.runs}):
        todo = [r for r in sweep.runs if r.stage == stage and status[r.name] != "complete"]
        for group in _batch_groups(todo) if vmap else [[r] for r in todo]:
            started = time.perf_counter()
            if writer:
                _write_index(sweep, status | {r.name: "running" for r in group}, seconds)
            if verbose:
                print(f"== {sweep.path.stem}: {', '.join(r.name for r in group)} (stage {stage})", flush=True)
            try:
                if len(group) > 1:
                    configs = [dataclasses.replace(r.config, force=force and r.name in changed) for r in group]
                    run_meta_train_batch(configs, [r.command_line() for r in group], verbose=verbose)
                elif group[0].command == "meta-train" or writer:  # train and eval runs: process 0 alone
                    _start(group[0], force and group[0].name in changed, verbose)
                barrier(f"metarl-sweep-{group[0].name}")
                outcome = "complete"
            except NonFiniteFitnessError as error:
                outcome = "failed"
                failed.append(f"{', '.join(r.name for r in group)}: {error}")
            for run in group:
                status[run.name] = outcome
                seconds[run.name] = time.perf_counter() - started
        if writer:
            _write_index(sweep, status, seconds)
    if writer:
        index = _write_index(sweep, status, seconds)
        if verbose:
            print(f"wrote {index}")
        if sweep.plot and plot:
            from metarl.app.plots import plot_all  # only when drawing: importing it sets matplotlib's backend to Agg

            for figure in plot_all(sweep.out):
                if verbose:
                    print(f"wrote {figure}")
    if failed:
        raise SweepFailed("runs failed (the others completed; see index.csv):\n" + "\n".join(failed))
    return sweep


def parse_sweep_options(args: list[str]) -> SweepOptions:
    """`metarl sweep`'s parser."""
    return tyro.cli(SweepOptions, args=args, prog="metarl sweep", description="Run every run of a sweep file (sweeps/*.toml).")


def sweep_main(options: SweepOptions, argv: list[str]) -> int:
    options.distributed.validate()  # the processes were joined by the CLI, before this module was imported
    try:
        run_sweep(options.file, out=options.out, dry_run=options.dry_run, force=options.force, vmap=options.vmap,
                  plot=options.plot)
    except SweepFailed as error:
        print(f"metarl sweep: {error}", file=sys.stderr)
        leave_peers(3)
        return 3
    return 0
