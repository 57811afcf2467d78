"""Long-run reliability: resume bit-identical (also after SIGKILL), refuse corrupt or foreign checkpoints."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from metarl import objectives
from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError
from metarl.meta.run import NonFiniteFitnessError, run_meta_train

BASE = MetaTrainConfig(
    ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4),
    num_generations=4, chunk_size=1, eval_seeds=1, verdict=VerdictConfig(num_seeds=0),
)


def run(tmp_path, name, **overrides):
    config = dataclasses.replace(BASE, out=str(tmp_path), name=name, **overrides)
    return run_meta_train(config, ["metarl", "meta-train"], verbose=False)


def metrics_without_timing(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds_per_generation"} for row in rows]


def assert_same_params(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted run of BASE (4 generations): what every interrupted run below must end as."""
    return run(tmp_path_factory.mktemp("straight"), "straight")


@pytest.mark.heavy
def test_stopping_and_rerunning_ends_identical_to_a_straight_run(tmp_path, straight):
    run(tmp_path, "resumed", num_generations=2)
    resumed = run(tmp_path, "resumed")  # same command, longer: continues from generation 2
    assert resumed["ran_generations"] == 2
    assert_same_params(straight["final_params"], resumed["final_params"])
    assert metrics_without_timing(straight["run_dir"]) == metrics_without_timing(resumed["run_dir"])
    loaded, params, _ = objectives.load(resumed["learned_file"])
    assert_same_params(params, straight["final_params"])


@pytest.mark.slow  # an end-to-end check of 26-37 s: CI's slow step runs it
@pytest.mark.heavy
def test_resume_after_sigkill_is_bit_identical(tmp_path, straight):
    command = [sys.executable, "-m", "metarl.app.cli", "meta-train", "--ppo.num-steps", "16", "--ppo.total-timesteps", str(4 * 16 * 3),
               "--ppo.update-epochs", "2", "--ppo.num-minibatches", "2", "--ppo.hidden-sizes", "16", "--tasks.no-normalize",
               "--ppo.lr", str(BASE.ppo.lr), "--ppo.anneal-lr",  # the in-process run's PPOConfig, not meta-train's defaults
               "--outer.population-size", "4", "--num-generations", str(BASE.num_generations), "--chunk-size", "1", "--eval-seeds", "1",
               "--verdict.num-seeds", "0",
               "--host-devices", "2", "--out", str(tmp_path), "--name", "killed"]
    checkpoints = tmp_path / "killed" / "checkpoints"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (checkpoints / "2" / "commit_success.txt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
    assert finished and max(finished) < BASE.num_generations, "the run finished before it could be killed"
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming" in result.stdout
    _, params, _ = objectives.load(tmp_path / "killed" / "learned" / "lpo.msgpack")
    assert_same_params(params, straight["final_params"])
    assert metrics_without_timing(straight["run_dir"]) == metrics_without_timing(tmp_path / "killed")


def change_one_stored_value(state_dir: Path) -> str:
    """Add 1 to the first element of the largest array in an orbax checkpoint item, through tensorstore (orbax's
    own storage layer: an OCDBT key-value store of zarr arrays), so that the item still reads back, with one
    value changed, as after a bit flip that the compression and orbax do not notice. Returns the array's key."""
    import tensorstore as ts

    store = {"driver": "ocdbt", "base": f"file://{state_dir}"}
    keys = [key.decode()[: -len("/.zarray")] for key in ts.KvStore.open(store).result().list().result() if key.endswith(b"/.zarray")]
    arrays = {key: ts.open({"driver": "zarr", "kvstore": {**store, "path": f"{key}/"}}).result() for key in keys}
    key = max(arrays, key=lambda k: arrays[k].size)
    first = arrays[key][(0,) * arrays[key].rank]
    first.write(first.read().result() + 1).result()
    return key


@pytest.mark.heavy
def test_a_tampered_checkpoint_is_refused_and_the_previous_one_used(tmp_path, capsys, straight):
    """Orbax reads a checkpoint with a changed value without complaint; the stored SHA-256 catches it."""
    import orbax.checkpoint as ocp

    first = run(tmp_path, "a", num_generations=3)
    latest = Path(first["run_dir"]) / "checkpoints" / "3" / "state"
    before = ocp.StandardCheckpointer().restore(latest)
    changed = change_one_stored_value(latest)
    after = ocp.StandardCheckpointer().restore(latest)  # still readable, with exactly one value changed
    pairs = zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True)
    differing = sum(int(np.sum(np.asarray(x) != np.asarray(y))) for x, y in pairs)
    assert differing == 1, (changed, differing)
    capsys.readouterr()
    resumed = run(tmp_path, "a", num_generations=4)
    assert resumed["ran_generations"] == 2  # restarted from generation 2, not 3
    err = capsys.readouterr().err
    assert "checkpoint 3: arrays do not match their stored SHA-256 (corrupt); using the previous one" in err, err
    assert "unreadable" not in err, err
    assert_same_params(resumed["final_params"], straight["final_params"])
    assert metrics_without_timing(resumed["run_dir"]) == metrics_without_timing(straight["run_dir"])


@pytest.mark.heavy
def test_a_leftover_temporary_save_is_ignored(tmp_path, straight):
    first = run(tmp_path, "a", num_generations=2)
    (Path(first["run_dir"]) / "checkpoints" / "3.orbax-checkpoint-tmp-1234").mkdir()
    resumed = run(tmp_path, "a")  # BASE's 4 generations: continues from generation 2
    assert resumed["ran_generations"] == 2
    assert_same_params(resumed["final_params"], straight["final_params"])
    assert metrics_without_timing(resumed["run_dir"]) == metrics_without_timing(straight["run_dir"])


@pytest.mark.heavy
def test_a_run_folder_of_another_config_is_refused_naming_the_fields(tmp_path):
    run(tmp_path, "a", num_generations=1)
    with pytest.raises(ConfigError, match=r"es\.sigma \(checkpoint: 0\.03, now: 0\.05\)"):
        run(tmp_path, "a", outer=ESConfig(population_size=4, sigma=0.05))
    fresh = run(tmp_path, "a", outer=ESConfig(population_size=4, sigma=0.05), num_generations=1, force=True)
    assert fresh["ran_generations"] == 1


def make_nan_objective():
    def drift(meta_params, ratio, advantages, context):
        return jnp.full_like(ratio, jnp.nan) * jnp.sum(meta_params["w"])

    return objectives.drift_objective("always_nan", drift, init=lambda key: {"w": jnp.ones(2)})


@pytest.mark.heavy
def test_all_members_non_finite_stops_the_run_with_the_last_good_checkpoint_intact(tmp_path):
    objectives.register("always_nan", make_nan_objective)
    try:
        with pytest.raises(NonFiniteFitnessError, match="non-finite for 2 generations in a row"):
            run(tmp_path, "nan", objective="always_nan", outer=ESConfig(population_size=4, max_nonfinite_generations=2))
    finally:
        objectives.REGISTRY._factories.pop("always_nan")
    assert sorted(p.name for p in (tmp_path / "nan" / "checkpoints").iterdir() if p.name.isdigit()) == ["1"]


@pytest.mark.slow  # two small meta-training runs of all three families (20-40 s)
@pytest.mark.heavy
def test_a_joint_discovery_of_objective_curriculum_and_shaping_resumes_exactly_and_writes_all_three(tmp_path):
    """Objective, curriculum and shaping in one meta-parameter pytree: stopped after one generation and rerun, the run
    ends where a straight run ends, part for part, and writes one learned file per part that reads back as it."""
    from metarl import components, envs
    from metarl.config import CurriculumConfig, ShapingConfig

    joint = dict(objective="lpo", curriculum=CurriculumConfig(name="learned"),
                 shaping=ShapingConfig(name="learned", heuristic="pd_good", kwargs='{"hidden": 4}'),
                 tasks=TaskDistribution(envs=("CartPole-levels",), fitness="heldout_return", normalize=False), num_generations=2,
                 eval_seeds=0)
    straight = run(tmp_path, "straight", **joint)
    run(tmp_path, "resumed", **{**joint, "num_generations": 1})
    resumed = run(tmp_path, "resumed", **joint)
    assert resumed["ran_generations"] == 1
    final = straight["final_params"]
    assert all(jax.tree.leaves(part) for part in (final.objective, final.curriculum, final.shaping))  # three searched parts
    assert_same_params(final, resumed["final_params"])
    learned = Path(resumed["run_dir"]) / "learned"
    spec = envs.make("CartPole-levels")
    assert_same_params(objectives.load(learned / "lpo.msgpack")[1], final.objective)
    assert_same_params(components.load_curriculum(learned / "curriculum_learned.msgpack", spec)[1], final.curriculum)
    assert_same_params(components.load_shaping(learned / "shaping_learned.msgpack", spec, 0.99)[2], final.shaping)
