"""`metarl sweep`: a bad file fails before any run; complete runs are skipped and interrupted ones resume;
numeric variants stepped together (vmapped) equal the same runs made one by one; the shipped sweep
files describe exactly the runs stored in results/."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_META, in_default_codegen

from metarl.cli import main
from metarl.errors import ConfigError
from metarl.sweep import load_sweep, read_index, run_sweep

ROOT = Path(__file__).resolve().parent.parent



def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "extra,message",
    [
        ('grid = { "es.sigmaa" = [0.1] }', r"stage 1 run 1: unknown key 'outer.sigmaa'; allowed keys of outer: .*sigma"),
        ('grid = { objective = ["lpo", "nope"] }', r"stage 1 run 'nope_s0': unknown objective 'nope'; known objectives: .*lpo"),
        ('grid = { "es.sigma" = ["big"] }', r"stage 1 run 1: key 'outer.sigma': expected a number, got 'big'"),
        ('grid = { "es.sigma" = [-1.0] }', r"run 'lpo_s0': outer.sigma: must be > 0"),
        ('grid = { out = ["elsewhere"] }', r"key 'out' is set by the sweep"),
        ('grid = { "tasks.fitness" = ["best"] }', r"key 'tasks.fitness': expected one of 'final_return'"),
    ],
)
def test_a_bad_key_or_value_fails_before_any_run(tmp_path, extra, message):
    path = write(tmp_path, TINY_META.replace("[base]", f"{extra}\n[base]") + ("" if "objective =" in extra else 'objective = "lpo"\n'))
    out = tmp_path / "results"
    with pytest.raises(ConfigError, match=message) as error:
        run_sweep(path, out=str(out), verbose=False)
    assert str(path) in str(error.value)  # the message names the file
    assert not out.exists()  # nothing was started or written


def test_unknown_top_level_keys_and_bad_toml_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown keys \['stages'\]"):
        load_sweep(write(tmp_path, 'stages = 1\ncommand = "train"'))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sweep(write(tmp_path, "command = "))
    with pytest.raises(ConfigError, match="command must be one of meta-train, train, eval"):
        load_sweep(write(tmp_path, 'command = "fit"'))


def _final_params(run_dir: Path) -> dict:
    from metarl import objectives

    _, params, _ = objectives.load(next((run_dir / "learned").glob("*.msgpack")))
    return params


def _rows(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the timings."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds_per_generation"} for row in rows]


@pytest.mark.heavy
def test_an_interrupted_sweep_skips_complete_runs_and_resumes_the_other(tmp_path, capsys):
    path = write(tmp_path, TINY_META + '[grid]\nobjective = ["lpo", "ta_lpo"]\n')
    out = tmp_path / "results"
    run_sweep(path, out=str(out), verbose=False)
    index = read_index(out / "index.csv")
    assert [(r["run"], r["status"]) for r in index] == [("lpo_s0", "complete"), ("ta_lpo_s0", "complete")]
    straight = _final_params(out / "ta_lpo_s0")
    straight_rows = _rows(out / "ta_lpo_s0")
    # Interrupt ta_lpo after generation 1: drop its last checkpoint, its summary and the last metrics row.
    run = out / "ta_lpo_s0"
    shutil.rmtree(run / "checkpoints" / "2")
    (run / "summary.json").unlink()
    (run / "metrics.jsonl").write_text(json.dumps(straight_rows[0]) + "\n")
    run_files = lambda: {p: p.stat().st_mtime_ns for p in (out / "lpo_s0").rglob("*") if p.is_file() and p.suffix != ".png"}
    lpo_files = run_files()  # figures are redrawn at the end of every sweep; the run's own files must not change
    capsys.readouterr()
    assert main(["metarl", "sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "[complete] stage 1 · lpo_s0" in listing and "[ pending] stage 1 · ta_lpo_s0" in listing
    assert "metarl meta-train --num-generations 2" in listing  # each run as the single command that makes it
    run_sweep(path, out=str(out), verbose=True)
    printed = capsys.readouterr().out
    assert "resuming" in printed and "from generation 1" in printed and "== sweep: lpo_s0" not in printed
    assert run_files() == lpo_files  # skipped: untouched
    for a, b in zip(_leaves(straight), _leaves(_final_params(run)), strict=True):
        np.testing.assert_array_equal(a, b)  # resumed = uninterrupted, bit for bit
    assert _rows(run) == straight_rows
    assert (out / "sweep.png").is_file() and (out / "sweep.toml").read_text() == path.read_text()


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


@pytest.mark.slow  # a fresh process compiling three meta-train programs with XLA's default codegen: the -m slow tier
@pytest.mark.heavy
def test_numeric_variants_stepped_together_equal_the_runs_one_by_one(tmp_path):
    """Seeds, σ, ES and PPO learning rates and entropy coefficients vmapped in one jitted step give each
    run exactly what it gets alone. Two differently compiled programs compared bit for bit: checked in a
    process with XLA's default code generation, as users run (see conftest.py)."""
    in_default_codegen(__file__, "check_numeric_variants", str(tmp_path))


def check_numeric_variants(tmp_path: str) -> None:
    import os

    assert "optimization_level" not in os.environ["XLA_FLAGS"]
    tmp_path = Path(tmp_path)
    grid = """
[[runs]]
seed = 1
"outer.sigma" = 0.1
"ppo.lr" = 0.001
[[runs]]
seed = 0
"outer.lr" = 0.1
"ppo.ent_coef" = 0.0
"""
    text = TINY_META.replace('name = "{objective}_s{seed}"', 'name = "r{seed}_{outer.sigma}_{outer.lr}_{ppo.lr}_{ppo.ent_coef}"')
    path = write(tmp_path, text + 'objective = "lpo"\n' + grid)
    together, alone = tmp_path / "together", tmp_path / "alone"
    sweep = run_sweep(path, out=str(together), verbose=False)
    assert len(sweep.runs) == 2
    run_sweep(path, out=str(alone), vmap=False, verbose=False)
    rows = []
    for run in sweep.runs:
        for a, b in zip(_leaves(_final_params(together / run.name)), _leaves(_final_params(alone / run.name)), strict=True):
            np.testing.assert_array_equal(a, b)
        assert _rows(together / run.name) == _rows(alone / run.name)
        rows.append(_rows(together / run.name))
    assert rows[0] != rows[1]  # two different runs


@pytest.mark.parametrize("sweep_file", sorted(p.name for p in (ROOT / "sweeps").glob("*.toml")))
def test_shipped_sweeps_describe_the_stored_runs(sweep_file, monkeypatch):
    monkeypatch.chdir(ROOT)
    sweep = load_sweep(Path("sweeps") / sweep_file)
    from metarl.sweep import _stored_differences

    stored = [run for run in sweep.runs if (run.run_dir / "config.json").is_file()]
    assert stored, f"{sweep_file}: no stored run in {sweep.out}"
    for run in stored:
        assert _stored_differences(run) == [], run.name


def test_a_run_that_stops_is_marked_failed_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    from metarl.meta import run as meta_run

    original = meta_run.run_meta_train

    def stop_lpo(config, *args, **kwargs):
        if config.objective == "lpo":
            raise meta_run.NonFiniteFitnessError("every member's fitness was non-finite (test)")
        return original(config, *args, **kwargs)

    monkeypatch.setattr(meta_run, "run_meta_train", stop_lpo)
    path = write(tmp_path, TINY_META.replace("num_generations = 2", "num_generations = 1") + '[grid]\nobjective = ["lpo", "ta_lpo"]\n')
    out = tmp_path / "results"
    assert main(["metarl", "sweep", str(path), "--out", str(out), "--no-plot"]) == 3
    assert "lpo_s0: every member's fitness was non-finite (test)" in capsys.readouterr().err
    assert [(r["run"], r["status"]) for r in read_index(out / "index.csv")] == [("lpo_s0", "failed"), ("ta_lpo_s0", "complete")]
