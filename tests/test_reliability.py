"""shared/RELIABILITY.md items that had no test of their own (the others are named in the docstrings of their
tests): 8 (no jax_debug_nans, no NaN replaced by a big number), 9 (unknown shaping / outer loop), 10 (an
indivisible population names both numbers), 11 (non-positive lifetimes, a meta-gradient learning rate <= 0),
13 (eval's earlier run folder), 18 (a generation's memory grows linearly), 19 (a sweep started twice), 21 (a full disk),
24 (nothing written outside the folders a command is given).
Item 17 for every outer loop: test_outer_loops.py::
test_every_registered_loop_meta_trains_compiles_its_step_once_and_resumes_bit_identically."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from conftest import TINY, tiny

from metarl.app.cli import main
from metarl.config import ESConfig, MetaGradConfig, MetaTrainConfig, PPOConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1] / "metarl"
TINY_META_FLAGS = ["--ppo.num-envs", "4", "--ppo.num-steps", "16", "--ppo.total-timesteps", "192", "--tasks.no-normalize",
                   "--verdict.num-seeds", "0", "--reference-store", ""]


# --- 8: jax_debug_nans only in a debug mode; never a NaN silently replaced by a big negative number ----------


def test_no_code_turns_on_jax_debug_nans():
    """metarl has no debug mode, so nothing may turn jax_debug_nans on: the inner loop's metrics carry NaN on
    purpose (updates past a lifetime, no episode finished yet), which debug_nans would raise on."""
    users = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "debug_nans" in p.read_text() or "nan_to_num" in p.read_text()]
    assert users == [], users
    from metarl.app import evaluation, meta_train, sweep, train  # noqa: F401  (every command's imports)

    assert not jax.config.jax_debug_nans


def test_a_nan_member_is_counted_and_ranked_worst_not_scored_as_a_big_negative_number():
    from metarl.meta import fitness as fit
    from metarl.meta.es_loop import make_es_outer_loop
    from metarl.meta.tasks import References

    clean, count = fit.sanitize(jnp.array([1000.0, jnp.nan, 1002.0]))
    assert int(count) == 1 and float(clean[1]) == 999.0  # worst finite minus one: ranked last, not a sentinel

    def nan_for_half(meta_params, num_updates, key, references, hparams=None):
        value = jnp.sum(meta_params["w"])  # members near 0 (sigma 0.1)
        return jnp.where(meta_params["w"][0] > 0, jnp.nan, value), value[None]

    config = MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=8, sigma=0.1),
                             verdict=VerdictConfig(num_seeds=0))
    loop = make_es_outer_loop(config, nan_for_half, {"w": jnp.zeros(3)})
    state = loop.init(jax.random.PRNGKey(0), {"w": jnp.zeros(3)})
    _, metrics = jax.jit(lambda s: loop.step(s, jax.random.PRNGKey(1), References(jnp.zeros(1), jnp.ones(1))))(state)
    assert 0 < int(metrics["nonfinite_members"]) < 8
    # the logged fitness is over the finite members only: a replaced NaN would drag the minimum far below -1
    for name in ("fitness_min", "fitness_mean", "fitness_max"):
        assert -1.0 < float(metrics[name]) < 1.0, (name, float(metrics[name]))


# --- 9: unknown names are refused listing the known ones -------------------------------------------------


def test_an_unknown_shaping_or_heuristic_is_refused_listing_the_known_names(tmp_path, capsys):
    assert main(["metarl", "train", "--shaping.name", "potentiall", "--out", str(tmp_path)]) == 2
    assert "unknown shaping 'potentiall'; known shapings: " in (err := capsys.readouterr().err) and "potential" in err
    assert main(["metarl", "train", "--shaping.name", "naive", "--shaping.heuristic", "centre", "--out", str(tmp_path)]) == 2
    assert "unknown heuristic 'centre'" in (err := capsys.readouterr().err) and "center" in err
    assert not any(tmp_path.iterdir())


def test_an_unknown_outer_loop_is_refused_listing_the_known_loops(tmp_path, capsys):
    from metarl.meta import registry as loops

    with pytest.raises(SystemExit) as exit_:
        main(["metarl", "meta-train", "--out", str(tmp_path), "outer:evolution"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "evolution" in err and all(f"outer:{name}" in err for name in loops.names())
    assert not any(tmp_path.iterdir())


def test_an_unknown_outer_loop_in_a_sweep_file_is_refused_listing_the_known_loops(tmp_path):
    from metarl.app.sweep import load_sweep

    path = tmp_path / "sweep.toml"
    path.write_text('command = "meta-train"\nname = "x"\n[base]\nouter = "evolution"\n')
    with pytest.raises(ConfigError, match=r"sweep.toml: stage 1 run 1: key 'outer': expected one of 'es', 'metagrad', got 'evolution'"):
        load_sweep(path)


# --- 10: an indivisible population names both numbers -------------------------------------------------------


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--outer.population-size", "5"], "outer.population_size: must be even with antithetic sampling .*got 5"),
        (["--outer.population-size", "3", "--outer.no-antithetic", "--outer.algorithm", "SNES"],
         "outer.population_size: 3 is not divisible by the device count 2"),
        # Open_ES always samples in pairs: evosax's own assert, once a traceback, is a config error naming both
        (["--outer.population-size", "3", "--outer.no-antithetic"], "outer.population_size: Open_ES refuses 3 members: .*even"),
    ],
)
def test_an_indivisible_population_is_refused_naming_both_numbers(flags, message, tmp_path, capsys):
    import re

    assert main(["metarl", "meta-train", *TINY_META_FLAGS, "--out", str(tmp_path), "outer:es", *flags]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


# --- 11: non-positive lifetimes and meta-gradient learning rates name the field ---------------------------


@pytest.mark.parametrize(
    "config,message",
    [
        (MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(lifetimes=(0, 2))), "tasks.lifetimes: must be a positive integer, got 0"),
        (MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(lifetimes=(-3,))), "tasks.lifetimes: must be a positive integer, got -3"),
        (MetaTrainConfig(ppo=tiny(), outer=MetaGradConfig(lr=0.0)), "outer.lr: must be > 0, got 0.0"),
        (MetaTrainConfig(ppo=tiny(), outer=MetaGradConfig(lr=-1e-3)), "outer.lr: must be > 0, got -0.001"),
        (MetaTrainConfig(ppo=tiny(), outer=MetaGradConfig(max_grad_norm=0.0)), "outer.max_grad_norm: must be > 0"),
        (MetaTrainConfig(ppo=tiny(), outer=MetaGradConfig(num_agents=0)), "outer.num_agents: must be a positive integer"),
        (MetaTrainConfig(ppo=tiny(), outer=MetaGradConfig(lr=float("nan"))), "outer.lr: must be a finite number"),
    ],
)
def test_non_positive_lifetimes_and_meta_gradient_settings_name_the_field(config, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config.validate()


def test_non_positive_eval_lifetimes_and_a_zero_metagrad_lr_on_the_command_line_name_the_field(tmp_path, capsys):
    assert main(["metarl", "eval", "--lifetimes", "4", "0", "--out", str(tmp_path)]) == 2
    assert "lifetimes: must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["metarl", "meta-train", *TINY_META_FLAGS, "--out", str(tmp_path), "outer:metagrad", "--outer.lr", "0"]) == 2
    assert "outer.lr: must be > 0, got 0.0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


# --- 13: eval given the folder of an earlier run -----------------------------------------------------------

EVAL_FLAGS = ["--objectives", "ppo", "--envs", "CartPole-v1", "--lifetimes", "2", "--num-seeds", "2", "--ppo.num-envs", "4",
              "--ppo.num-steps", "8", "--ppo.num-minibatches", "1", "--ppo.update-epochs", "1", "--ppo.hidden-sizes", "8"]


@pytest.mark.heavy
def test_eval_refuses_the_folder_of_an_earlier_run_unless_forced(tmp_path, capsys):
    earlier = tmp_path / "grid"
    earlier.mkdir()
    (earlier / "eval.npz").write_bytes(b"an earlier run")
    assert main(["metarl", "eval", *EVAL_FLAGS, "--out", str(tmp_path), "--name", "grid"]) == 2
    assert "already holds an earlier run; pass --force" in capsys.readouterr().err
    assert (earlier / "eval.npz").read_bytes() == b"an earlier run"
    assert main(["metarl", "eval", *EVAL_FLAGS, "--out", str(tmp_path), "--name", "grid", "--force"]) == 0
    from metarl.app.evaluation import load_eval

    assert load_eval(earlier / "eval.npz")["scores"].shape[-1] == 2  # the new run's, 2 seeds


# --- 18: a generation's memory grows linearly with the population and the envs ------------------------------


@pytest.mark.slow  # 15-21 s: in CI's slow step, so the README's test command stays within 8 min on 2 cores
@pytest.mark.heavy
def test_a_generations_memory_grows_linearly_with_members_and_envs():
    """XLA's memory analysis of the population evaluation (arguments, temporaries, outputs; compiled, not run)
    for P = 1, 2, 4 members of 2 envs and for 4 members of 8 envs: each member adds the same bytes (measured:
    ~41 KiB for 2 envs of this tiny agent), and 4x the envs at most 4x the bytes (the agent's parameters are
    shared by its envs). Nothing grows faster than members x envs."""
    from metarl.meta import memory
    from metarl.meta.run import build_problem
    from metarl.meta.tasks import References, make_member_evaluator

    references = References(jax.ShapeDtypeStruct((1,), jnp.float32), jax.ShapeDtypeStruct((1,), jnp.float32))

    def generation_bytes(members, num_envs):
        ppo = PPOConfig(num_envs=num_envs, num_steps=8, total_timesteps=num_envs * 8 * 2, update_epochs=1, num_minibatches=1,
                        hidden_sizes=(8,))
        config = MetaTrainConfig(ppo=ppo, tasks=TaskDistribution(normalize=False, seeds_per_member=1), verdict=VerdictConfig(num_seeds=0))
        problem = build_problem(config)
        evaluate = make_member_evaluator(config, problem.objective, problem.env_specs, 1, problem.components)
        return memory.measured_member_bytes(evaluate, problem.meta_params, members, references) * members

    one, two, four = (generation_bytes(p, 2) for p in (1, 2, 4))
    per_member = two - one
    assert per_member > 0
    assert four - two == pytest.approx(2 * per_member, rel=0.15)  # linear in the members, not faster
    assert four <= 4.4 * one
    assert generation_bytes(4, 8) <= 4.4 * four  # 4x the envs


# --- 19: a sweep started twice ----------------------------------------------------------------------------

HOLDING_SWEEP = """
import sys, time
import metarl.app.train

def hold_the_run(*args, **kwargs):  # the run folder is locked by now: stand in for a long training
    print("running", flush=True)
    time.sleep(300)

metarl.app.train._train_and_write = hold_the_run
from metarl.app.sweep import run_sweep
run_sweep(sys.argv[1], out=sys.argv[2], plot=False, verbose=False)
"""

TRAIN_SWEEP = """
command = "train"
name = "cartpole_s{seed}"
[base]
ppo = { num_envs = 4, num_steps = 16, total_timesteps = 192, update_epochs = 2, num_minibatches = 2, hidden_sizes = [16] }
[grid]
seed = [0, 1]
"""


@pytest.mark.heavy
def test_a_sweep_started_twice_is_refused_at_once_naming_the_holder_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(TRAIN_SWEEP)
    out = tmp_path / "results"
    first = subprocess.Popen([sys.executable, "-c", HOLDING_SWEEP, str(path), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout.readline().strip() == "running", first.stderr.read()[-2000:]
        files = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
        started = time.perf_counter()
        assert main(["metarl", "sweep", str(path), "--out", str(out), "--no-plot"]) == 2
        assert time.perf_counter() - started < 30
        err = capsys.readouterr().err
        assert f"is in use by process {first.pid}" in err
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == files  # nothing written, nothing started
    finally:
        first.kill()
        first.wait()
    # the killed sweep's lock does not block the rerun, which runs both runs
    from metarl.app.sweep import run_sweep
    from metarl.io.results import read_index

    run_sweep(path, out=str(out), plot=False, verbose=False)
    assert [(r["run"], r["status"]) for r in read_index(out / "index.csv")] == [("cartpole_s0", "complete"), ("cartpole_s1", "complete")]
    assert TINY.num_updates == len((out / "cartpole_s0" / "metrics.jsonl").read_text().splitlines())


# --- 21: a full disk during a checkpoint is one line naming the folder, and the same command resumes -------------


def test_a_full_disk_during_a_checkpoint_is_one_line_and_the_same_command_resumes(tmp_path, capsys, monkeypatch):
    import errno
    import json

    import orbax.checkpoint as ocp

    original = ocp.CheckpointManager.save

    def full_disk_at_step_2(self, step, *args, **kwargs):
        if step == 2:  # as tensorstore reports it: a ValueError quoting the OS error
            raise ValueError(f"Error writing {self.directory}/2/state: [errno {errno.ENOSPC}] No space left on device")
        return original(self, step, *args, **kwargs)

    argv = ["metarl", "meta-train", *TINY_META_FLAGS, "--num-generations", "3", "--chunk-size", "1", "--eval-seeds", "0",
            "--out", str(tmp_path), "--name", "run"]
    monkeypatch.setattr(ocp.CheckpointManager, "save", full_disk_at_step_2)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "No space left on device" in lines[0] and str(tmp_path / "run") in lines[0]
    assert "the checkpoint of generation 1 is intact" in lines[0]
    rows = [json.loads(line)["generation"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 1]  # the failed chunk's row was written before its checkpoint; the rerun truncates it
    monkeypatch.setattr(ocp.CheckpointManager, "save", original)  # space freed
    assert main(argv) == 0
    rows = [json.loads(line)["generation"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 1, 2]


def test_disk_errors_are_found_behind_a_library_and_nothing_else_is_taken_for_one():
    import errno

    from metarl.errors import StorageError
    from metarl.io.results import disk_error, writing

    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded", "/x/metrics.jsonl")
        except OSError as inner:
            raise RuntimeError("the storage library failed") from inner
    except RuntimeError as outer:
        assert disk_error(outer).errno == errno.EDQUOT
    assert disk_error(ValueError("shape mismatch")) is None
    assert disk_error(FileNotFoundError(errno.ENOENT, "No such file or directory", "x.msgpack")) is None  # a read, not the disk
    with pytest.raises(StorageError, match="could not write to /runs/a: No space left on device; the checkpoint is intact"):
        with writing("/runs/a", "the checkpoint is intact"):
            raise ValueError("write failed: No space left on device")
    with pytest.raises(KeyError):  # not a disk error: passes through untouched
        with writing("/runs/a"):
            raise KeyError("generation")


def test_a_full_disk_under_any_other_command_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    import errno

    import numpy as np

    def full_disk(path, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(np, "savez", full_disk)
    assert main(["metarl", "eval", *EVAL_FLAGS, "--out", str(tmp_path), "--name", "grid"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"metarl eval: error: could not write {tmp_path / 'grid' / 'eval.npz'}: No space left on device"]


# --- 24: nothing is written outside the folders a command was given -------------------------------------------


def test_the_baseline_store_follows_the_run_not_the_current_directory():
    from metarl.config import store_folder

    assert store_folder("auto", "results/meta_train") == "results/references"  # the committed store, as before
    assert store_folder("auto", "results/ta_study") == "results/references"
    assert store_folder("auto", "../scratch") == "../scratch/references"
    assert store_folder("auto", "/tmp/runs/results/x") == "/tmp/runs/results/references"
    assert store_folder("shared/refs", "../scratch") == "shared/refs" and store_folder("", "../scratch") is None


def test_a_run_started_elsewhere_creates_no_results_folder_where_it_was_started(tmp_path, monkeypatch, capsys):
    """A meta-train with its references normalized (measured and stored) and an --out outside the current folder."""
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    flags = [flag for flag in TINY_META_FLAGS if flag not in ("--tasks.no-normalize", "--reference-store", "")]
    assert main(["metarl", "meta-train", *flags, "--tasks.reference-seeds", "2", "--num-generations", "1", "--eval-seeds", "0",
                 "--out", str(tmp_path / "scratch"), "--name", "run", "outer:es", "--outer.population-size", "4"]) == 0
    assert list((tmp_path / "here").iterdir()) == []
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "scratch" / "references").iterdir()) == ["reference"]
