"""Outer loops are plug-ins: the README's random-search loop (one file, ~50 lines) registers itself and
meta-trains, resumes bit-identically and runs from the command line, with nothing in metarl edited."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import tiny

from metarl.config import ESConfig, MetaGradConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError, RegistryError
from metarl.meta import registry as loops

# --- the plug-in: the README's example, imported as a user's file would be ---------------------------


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The README's random-search loop written to a file and imported (it registers itself); unregistered after."""
    import importlib.util

    from test_readme import readme_example

    path = tmp_path_factory.mktemp("plugin") / "random_search.py"
    path.write_text(readme_example("custom-outer-loop"))
    spec = importlib.util.spec_from_file_location("random_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield path, module
    _unregister()


def _unregister():
    loops.REGISTRY._factories.pop("random_search", None)
    loops._CONFIGS.pop("random_search", None)


# --- the tests -------------------------------------------------------------------------------------------


def config(plugin, tmp_path, name, generations, **overrides) -> MetaTrainConfig:
    return MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=plugin[1].RandomSearchConfig(),
                           num_generations=generations,
                           chunk_size=1, eval_seeds=0, verdict=VerdictConfig(num_seeds=0), out=str(tmp_path), name=name, **overrides)


def rows(run_dir):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds_per_generation"}
            for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_resumed_as_straight(straight, resumed, tmp_path):
    """A run stopped after generation 1 and resumed to 3 ends bit-identical to the straight 3-generation run."""
    assert resumed["ran_generations"] == 2
    for a, b in zip(jax.tree.leaves(straight["final_params"]), jax.tree.leaves(resumed["final_params"]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert rows(tmp_path / "resumed") == rows(tmp_path / "straight")
    assert [r["generation"] for r in rows(tmp_path / "straight")] == [0, 1, 2]


@pytest.mark.heavy
def test_a_plug_in_outer_loop_meta_trains_and_resumes_bit_identically(plugin, tmp_path):
    from metarl.meta.run import run_meta_train

    straight = run_meta_train(config(plugin, tmp_path, "straight", 3), verbose=False)
    run_meta_train(config(plugin, tmp_path, "resumed", 1), verbose=False)
    resumed = run_meta_train(config(plugin, tmp_path, "resumed", 3), verbose=False)
    assert_resumed_as_straight(straight, resumed, tmp_path)
    stored = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert stored["config"]["outer"] == {"name": "random_search", "candidates": 4, "scale": 0.05}
    assert stored["identity"]["outer"] == "random_search" and stored["identity"]["random_search"]["candidates"] == 4
    assert (tmp_path / "straight" / "learned" / "lpo.msgpack").is_file()


@pytest.mark.heavy
def test_a_plug_in_outer_loop_runs_from_the_command_line(plugin, tmp_path, capsys):
    from metarl.app.cli import main

    _unregister()  # the command imports the user's file itself
    code = main(["metarl", "meta-train", "--import", str(plugin[0]), "--ppo.num-envs", "4", "--ppo.num-steps", "16",
                 "--ppo.total-timesteps", "192", "--ppo.num-minibatches", "2", "--ppo.update-epochs", "2", "--ppo.hidden-sizes", "16",
                 "--tasks.no-normalize", "--num-generations", "1", "--eval-seeds", "0", "--verdict.num-seeds", "0",
                 "outer:random_search", "--outer.candidates", "2", "--out", str(tmp_path), "--name", "cli"])
    assert code == 0
    assert "gen    1/1 · best " in capsys.readouterr().out
    stored = json.loads((tmp_path / "cli" / "config.json").read_text())["config"]
    assert stored["outer"]["name"] == "random_search" and stored["outer"]["candidates"] == 2
    assert stored["ppo"]["num_steps"] == 16  # a flag after the loop's subcommand still reaches the run


def test_every_registered_loop_has_a_named_config_with_defaults(plugin):
    assert {"es", "metagrad", "random_search"} <= set(loops.names())
    for name in loops.names():
        cls = loops.config_class(name)
        assert cls.name == name and isinstance(cls().validate(), cls)


def test_a_loop_whose_config_is_not_named_for_it_is_refused(plugin):
    module = plugin[1]
    with pytest.raises(RegistryError, match="must match"):
        loops.register("random", module.make_random_search, module.RandomSearchConfig)
    with pytest.raises(RegistryError, match="OuterConfig"):
        loops.register("plain", module.make_random_search, dict)
    with pytest.raises(RegistryError, match="already registered"):
        loops.register("random_search", module.make_random_search, module.RandomSearchConfig)


def test_outer_flags_in_any_order_and_the_removed_spellings_are_refused_naming_the_current_one():
    from metarl.app.meta_train import parse_meta_train_config

    parsed = parse_meta_train_config(["outer:es", "--outer.sigma", "0.1", "--seed", "3"])
    assert parsed.outer == ESConfig(sigma=0.1) and parsed.seed == 3
    later = parse_meta_train_config(["--outer.truncation", "3", "outer:metagrad", "--seed", "2"])
    assert later.outer == MetaGradConfig(truncation=3) and later.seed == 2
    assert parse_meta_train_config(["--outer.no-antithetic"]).outer == ESConfig(antithetic=False)
    assert parse_meta_train_config([]).outer == ESConfig()
    with pytest.raises(ConfigError, match="already chose"):
        parse_meta_train_config(["outer:metagrad", "outer:es"])
    with pytest.raises(ConfigError, match="write outer:NAME"):
        parse_meta_train_config(["--outer", "metagrad"])


def test_es_and_metagrad_runs_keep_the_identity_of_their_stored_runs():
    """Stored runs were hashed with the loop's settings under its name ("es" / "metagrad") and, for
    meta-gradients only, ``outer`` naming the loop; a field added since (max_nonfinite_generations) is left
    out at its default."""
    es = MetaTrainConfig().identity()
    assert "outer" not in es and "metagrad" not in es and es["es"]["sigma"] == 0.03
    metagrad = MetaTrainConfig(outer=MetaGradConfig()).identity()
    assert metagrad["outer"] == "metagrad" and "es" not in metagrad and "max_nonfinite_generations" not in metagrad["metagrad"]


# --- every registered loop: meta-trains, compiles its step once, resumes bit-identically -----------------

# Small settings of the built-in loops; a loop registered later runs at its config's defaults.
TINY_LOOP_PPO = tiny(num_steps=8, total_timesteps=4 * 8 * 3, hidden_sizes=(8,))
TINY_OUTER = {"es": ESConfig(population_size=4), "metagrad": MetaGradConfig(num_agents=2, truncation=2)}


def loop_config(loop_name, tmp_path, name, generations) -> MetaTrainConfig:
    # TA-LPO without the offset that makes the exact-mirror drift start flat (refused by meta-gradients)
    return MetaTrainConfig(objective="ta_lpo", objective_kwargs='{"offset": 0.0}', ppo=TINY_LOOP_PPO,
                           tasks=TaskDistribution(normalize=False),
                           outer=TINY_OUTER.get(loop_name) or loops.config_class(loop_name)(), num_generations=generations,
                           chunk_size=1, eval_seeds=0, verdict=VerdictConfig(num_seeds=0), reference_store="", out=str(tmp_path), name=name)


@pytest.mark.heavy
@pytest.mark.parametrize("loop_name", loops.names())
def test_every_registered_loop_meta_trains_compiles_its_step_once_and_resumes_bit_identically(loop_name, tmp_path, caplog):
    """RELIABILITY 2 and 17 for every loop of the registry: a run stopped after generation 1 (the straight run's
    folder with its later checkpoints and rows removed: two compiles instead of three) and rerun to 3 ends
    bit-identical to the straight run of 3, and the straight run compiles its generation step once (a state placed
    or typed differently from the step's output would compile it again at generation 2)."""
    import logging
    import shutil

    from metarl.meta.run import build_problem, run_meta_train

    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            straight = run_meta_train(loop_config(loop_name, tmp_path, "straight", 3), verbose=False)
    finally:
        jax.config.update("jax_log_compiles", False)
    steps = [r.getMessage()[:200] for r in caplog.records if "Compiling jit(<lambda>)" in r.getMessage()]
    assert len(steps) == 1, steps
    # Stopped after generation 1: the straight run's folder as it was then (checkpoint 1, one metrics row).
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed", ignore=shutil.ignore_patterns(".metarl.lock", "summary.json"))
    for later in ("2", "3"):
        shutil.rmtree(tmp_path / "resumed" / "checkpoints" / later)
    (tmp_path / "resumed" / "metrics.jsonl").write_text((tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()[0] + "\n")
    resumed = run_meta_train(loop_config(loop_name, tmp_path, "resumed", 3), verbose=False)
    assert_resumed_as_straight(straight, resumed, tmp_path)
    assert all(np.isfinite(v) for r in rows(tmp_path / "straight") for v in r.values() if isinstance(v, float))
    stored = json.loads((tmp_path / "straight" / "config.json").read_text())
    assert stored["config"]["outer"]["name"] == loop_name
    assert stored["identity"].get("outer", "es") == loop_name  # ES runs, stored before the choice, omit it
    if loop_name == "metagrad":
        assert all("meta_loss" in r for r in rows(tmp_path / "straight"))
    assert (tmp_path / "straight" / "learned" / "ta_lpo.msgpack").is_file()
    initial = build_problem(loop_config(loop_name, tmp_path, "straight", 3)).meta_params
    moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(initial), jax.tree.leaves(straight["final_params"]), strict=True)]
    assert any(moved), "the loop did not change the meta-parameters"
