"""The command line's paths no other test runs: `metarl plot` on a stored run, an unknown command, `--help` of
every command (and of every outer loop of meta-train), and meta-train's exit code 3."""

import dataclasses
import shutil
from pathlib import Path

import pytest

from metarl.app.cli import main
from metarl.app.commands import COMMANDS
from metarl.config import OuterConfig
from metarl.meta import registry as loops

STORED_RUN = Path(__file__).resolve().parents[1] / "results" / "metagrad_vs_es" / "metagrad"  # a small meta-train run


def exit_code(argv: list[str]) -> int:
    """main's return value, or the code of the SystemExit its parser raises (tyro and argparse on --help)."""
    try:
        return main(argv)
    except SystemExit as error:
        return error.code


def stored_run(tmp_path: Path) -> Path:
    """A copy of a committed meta-train run folder without its figures and checkpoints."""
    copy = tmp_path / "results" / "stored"
    shutil.copytree(STORED_RUN, copy, ignore=shutil.ignore_patterns("*.png", "checkpoints", ".metarl.lock"))
    return copy


def test_plot_redraws_a_stored_run_through_the_command_line(tmp_path, capsys):
    run = stored_run(tmp_path)
    assert main(["metarl", "plot", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    figure = run / "meta_training.png"
    assert f"wrote {figure}" in out and figure.stat().st_size > 10_000
    assert any(p.name.startswith("drift_") for p in run.glob("*.png"))  # the learned objective's figure
    assert main(["metarl", "plot", str(tmp_path / "nowhere")]) == 2
    assert "metarl plot: error: plot: " in capsys.readouterr().err


def test_an_unknown_command_is_refused_with_the_list_of_commands(capsys):
    assert main(["metarl", "meta-trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'meta-trian'" in err
    assert all(f"  {name} " in err for name in COMMANDS)


def _flags(config_class, prefix: str = "") -> list[str]:
    """Every flag tyro derives from a config dataclass (nested ones dotted); an outer loop is a subcommand."""
    flags = []
    for f in dataclasses.fields(config_class):
        value = getattr(config_class(), f.name)
        if isinstance(value, OuterConfig):
            flags.append(f"outer:{value.name}")
        elif dataclasses.is_dataclass(value):
            flags += _flags(type(value), f"{prefix}{f.name}.")
        else:
            flags.append(f"--{prefix}{f.name.replace('_', '-')}")
    return flags


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_of_every_command_exits_0_and_lists_its_options(command, tmp_path, monkeypatch, capsys):
    """For a command with a config, every field's flag; for the others, their usage line. `plot --help` draws
    nothing (it once redrew every figure of ./results)."""
    monkeypatch.setenv("COLUMNS", "300")  # tyro wraps to the terminal's width
    run = stored_run(tmp_path)
    monkeypatch.chdir(tmp_path)  # ./results holds a run that plot would draw
    assert exit_code(["metarl", command, "--help"]) == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err
    if COMMANDS[command].config:
        from metarl.app.commands import config_class

        missing = [flag for flag in _flags(config_class(command)) if flag not in text]
        assert not missing, missing
    elif command == "sweep":
        assert all(flag in text for flag in ("--dry-run", "--force", "--no-vmap", "--no-plot", "--out"))
    else:
        assert f"usage: metarl {command}" in text
    assert not list(run.glob("*.png"))


@pytest.mark.parametrize("loop", loops.names())
def test_help_of_every_outer_loop_lists_its_fields(loop, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "300")
    assert exit_code(["metarl", "meta-train", f"outer:{loop}", "--help"]) == 0
    text = capsys.readouterr().out
    fields = [f"--outer.{f.name.replace('_', '-')}" for f in dataclasses.fields(loops.config_class(loop))]
    assert fields and all(flag in text for flag in fields), [flag for flag in fields if flag not in text]


TINY_FLAGS = ["--ppo.num-envs", "4", "--ppo.num-steps", "8", "--ppo.total-timesteps", "96", "--ppo.num-minibatches", "2",
              "--ppo.update-epochs", "2", "--ppo.hidden-sizes", "8", "--tasks.no-normalize", "--eval-seeds", "0",
              "--verdict.num-seeds", "0", "--reference-store", "", "--chunk-size", "1"]


@pytest.mark.heavy
def test_meta_train_exits_3_when_every_member_is_non_finite(tmp_path, capsys):
    """A learning rate of 1e30 sends every agent's losses to inf/NaN: every member is non-finite, and after
    --outer.max-nonfinite-generations such generations (1 here) the command stops with exit code 3."""
    code = main(["metarl", "meta-train", *TINY_FLAGS, "--ppo.lr", "1e30", "--num-generations", "3", "--out", str(tmp_path),
                 "--name", "diverged", "outer:es", "--outer.population-size", "4", "--outer.max-nonfinite-generations", "1"])
    assert code == 3
    err = capsys.readouterr().err
    assert "metarl meta-train: stopped: every member's fitness was non-finite for 1 generations in a row" in err
    assert "last good checkpoint" in err
    checkpoints = tmp_path / "diverged" / "checkpoints"
    assert not (checkpoints.is_dir() and [p for p in checkpoints.iterdir() if p.name.isdigit()])  # no checkpoint of a bad state
    assert not (tmp_path / "diverged" / "summary.json").exists()


@pytest.mark.heavy
@pytest.mark.slow  # 9 s, a fresh process: CI's slow step, with the other fresh-process checks
def test_host_devices_hold_when_an_imported_module_starts_jax(tmp_path):
    """--host-devices is set before any --import module runs: a plug-in that starts jax's backend at import (as one
    importing metarl.meta.tasks does) sees the requested device count instead of fixing it at 1."""
    import json
    import os
    import subprocess
    import sys

    plugin = tmp_path / "starts_jax.py"
    plugin.write_text("import jax\nprint('DEVICES', len(jax.devices()), flush=True)\n")
    from conftest import CHEAP_CODEGEN

    env = {**os.environ, "XLA_FLAGS": CHEAP_CODEGEN.strip()}  # the test session's device flag must not decide (its cheap codegen may)
    out = subprocess.run([sys.executable, "-m", "metarl.app.cli", "train", "--import", str(plugin), "--host-devices", "3",
                          "--ppo.total-timesteps", "1024", "--out", str(tmp_path), "--name", "run"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "DEVICES 3" in out.stdout
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["host_devices"] == 3


def test_the_entry_point_imports_no_jax_before_the_devices_are_set():
    """`metarl` sets XLA's device count and joins the processes before any command module is imported: those
    import gymnax (which starts jax's backend) at their top, so the entry point and what it imports must not."""
    import subprocess
    import sys

    probe = ("import sys, metarl.app.cli, metarl.app.commands; "
             "print(sorted(m for m in ('jax', 'gymnax', 'evosax', 'flax', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("flags", [[], ["--distributed.heartbeat-timeout", "40"]])
def test_processes_are_joined_from_the_environment_before_the_command_module_is_imported(flags):
    """A host launched with only METARL_COORDINATOR / _NUM_PROCESSES / _PROCESS_ID joins its peers, flags or not, and
    does so before meta-train's module (whose gymnax import starts jax's backend) is imported."""
    import os
    import subprocess
    import sys

    probe = ("import sys, metarl.app.cli as cli\n"
             "def joined(config):\n"
             "    config = config.validate()\n"
             "    print(config.active, config.num_processes, config.heartbeat_timeout, 'metarl.app.meta_train' in sys.modules)\n"
             "    sys.exit(0)\n"
             "cli.initialize = joined\n"
             "cli.main(['metarl', 'meta-train', *sys.argv[1:]])\n")
    env = {**os.environ, "METARL_COORDINATOR": "localhost:1", "METARL_NUM_PROCESSES": "2", "METARL_PROCESS_ID": "1"}
    out = subprocess.run([sys.executable, "-c", probe, *flags], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "2", "40" if flags else "30", "False"]
