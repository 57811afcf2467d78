import dataclasses
import json
import re

import jax
import pytest
from conftest import TINY

import metarl.inner
from metarl import objectives
from metarl.app.cli import main
from metarl.app.train import parse_train_config, run_train
from metarl.config import TrainConfig
from metarl.errors import LearnedFileError
from metarl.io.results import read_metrics


def test_train_writes_config_and_per_update_metrics(tmp_path):
    config = TrainConfig(env="CartPole-v1", objective="dpo", ppo=TINY, num_seeds=2, out=str(tmp_path))
    summary = run_train(config, ["metarl", "train", "--objective", "dpo"], verbose=False)
    run_dir = tmp_path / "CartPole-v1_dpo_s0"
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["command"] == "metarl train --objective dpo"
    assert stored["config"]["ppo"]["num_envs"] == TINY.num_envs
    rows = read_metrics(run_dir)
    assert [row["update"] for row in rows] == list(range(TINY.num_updates))
    assert len(rows[-1]["episode_return_per_seed"]) == 2
    assert summary["steps_per_second"] > 0 and len(summary["final_return_per_seed"]) == 2


@pytest.mark.parametrize(
    "args,field",
    [
        (["--env", "CartPol"], "unknown env 'CartPol'"),
        (["--objective", "lpoo"], "unknown objective 'lpoo'"),
        (["--ppo.num-minibatches", "3"], "ppo.num_minibatches: must divide"),
        (["--ppo.total-timesteps", "0"], "ppo.total_timesteps: must be a positive integer"),
        (["--ppo.num-steps", "-5"], "ppo.num_steps: must be a positive integer"),
        (["--ppo.lr", "0"], "ppo.lr: must be > 0"),
        (["--num-seeds", "0"], "num_seeds"),
        (["--num-seeds", "3"], "num_seeds: 3 is not divisible by the device count 2"),
        (["--objective-kwargs", "{bad"], "objective_kwargs: must be a JSON object"),
        (["--objective", "ppo", "--objective-kwargs", '{"clip_eps": 2}'], "clip_eps"),
        (["--objective", "lpo", "--objective-kwargs", '{"no_such_kw": 1}'], "objective 'lpo' takes no argument 'no_such_kw'"),
    ],
)
def test_bad_input_is_reported_before_compiling_and_writes_nothing(args, field, tmp_path, monkeypatch, capsys):
    def no_compile(*a, **k):
        raise AssertionError("make_train was reached: the error came too late")

    monkeypatch.setattr(metarl.app.train, "make_train", no_compile)  # as run_train calls it
    code = main(["metarl", "train", "--out", str(tmp_path), *args])
    assert code == 2
    assert field in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_existing_run_folder_is_not_overwritten_without_force(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "metrics.jsonl").write_text("{}\n")
    assert main(["metarl", "train", "--out", str(tmp_path), "--name", "x"]) == 2
    assert "already holds an earlier run" in capsys.readouterr().err
    assert (tmp_path / "x" / "metrics.jsonl").read_text() == "{}\n"


def test_presets_are_defaults_and_flags_override_them():
    assert parse_train_config(["--env", "Breakout-MinAtar"]).ppo.num_envs == 64
    assert parse_train_config(["--env", "Pendulum-v1", "--ppo.num-envs", "8"]).ppo.num_envs == 8
    assert parse_train_config([]).ppo.num_envs == 4


def test_learned_objective_file_round_trips_through_train(tmp_path):
    objective = objectives.make("ta_lpo", hidden=8)
    params = objective.init(jax.random.PRNGKey(3))
    path = objectives.save(tmp_path / "learned" / "ta_lpo", "ta_lpo", {"hidden": 8}, params, {"generation": 5})
    assert path.suffix == ".msgpack" and path.with_suffix(".json").is_file()
    loaded, loaded_params, kwargs = objectives.load(path)
    # the file records every factory argument, so a later change of a default does not change its meaning
    assert loaded.name == "ta_lpo" and kwargs["hidden"] == 8 and kwargs["mirror"] is True and "log_horizon" in kwargs
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), params, loaded_params))
    config = TrainConfig(objective_file=str(path), ppo=TINY, out=str(tmp_path / "runs"), name="from_file")
    summary = run_train(config, ["metarl"], verbose=False)
    assert summary["objective"] == "ta_lpo"
    stored = json.loads((tmp_path / "runs" / "from_file" / "config.json").read_text())
    assert json.loads(stored["config"]["objective_kwargs"]) == kwargs


def test_learned_file_with_wrong_shapes_or_family_is_refused(tmp_path):
    wrong = objectives.make("lpo", hidden=8).init(jax.random.PRNGKey(0))
    path = objectives.save(tmp_path / "bad", "lpo", {"hidden": 16}, wrong)
    with pytest.raises(LearnedFileError, match=r"expected .*16.*found .*8"):
        objectives.load(path)
    from metarl.io.learned import load_learned

    with pytest.raises(LearnedFileError, match="expected a learned curriculum, found a learned objective"):
        load_learned(path, family="curriculum")
    (tmp_path / "junk.msgpack").write_bytes(b"not msgpack at all")
    with pytest.raises(LearnedFileError, match="not a metarl learned file|expected format"):
        objectives.load(tmp_path / "junk.msgpack")


def test_cli_list_names_objectives_and_envs(capsys):
    assert main(["metarl", "list"]) == 0
    out = capsys.readouterr().out
    assert "ta_lpo" in out and "Breakout-MinAtar" in out


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.lr = 1.0  # type: ignore[misc]


def test_cli_runs_use_a_persistent_compile_cache_unless_told_not_to(tmp_path, monkeypatch):
    from metarl.app.cli import compile_cache

    previous = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("METARL_CACHE_DIR", str(tmp_path / "cache"))
    try:
        jax.config.update("jax_compilation_cache_dir", None)
        assert compile_cache(["--no-compile-cache", "--env", "x"], "train") == ["--env", "x"]
        assert not jax.config.jax_compilation_cache_dir
        assert compile_cache(["--env", "x"], "list") == ["--env", "x"] and not jax.config.jax_compilation_cache_dir
        assert compile_cache(["--env", "x"], "train") == ["--env", "x"]
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "cache") and (tmp_path / "cache").is_dir()
        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))  # a folder the caller set is kept
        compile_cache([], "meta-train")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


# --- the command layer (one table, one parser per command) --------------------------------------------------


def test_a_command_registered_in_the_table_is_dispatched_with_its_parser(capsys):
    """`metarl <name>` runs whatever the table holds: a toy command added from here parses and runs through
    cli.main, with the user errors of every command (one line, exit 2)."""
    from metarl.app.commands import Command, register, unregister
    from metarl.errors import ConfigError

    def parse(args):
        if "--bad" in args:
            raise ConfigError("--bad: not allowed here")
        return {"words": args}

    def run(parsed, argv):
        print("toy:", *parsed["words"])
        return 7

    register("toy", Command("a toy", main=run, parse=parse))
    try:
        assert main(["metarl", "toy", "a", "b"]) == 7 and capsys.readouterr().out == "toy: a b\n"
        assert main(["metarl", "toy", "--bad"]) == 2 and capsys.readouterr().err == "metarl toy: error: --bad: not allowed here\n"
        main(["metarl", "--help"])
        assert "toy        a toy" in capsys.readouterr().out
    finally:
        unregister("toy")
    assert main(["metarl", "toy"]) == 2 and "unknown command 'toy'" in capsys.readouterr().err


def test_a_host_device_count_that_cannot_take_effect_is_refused(tmp_path, capsys):
    """This process started jax with conftest's 2 host devices: asking for 3 cannot take effect and says so
    (it used to be dropped without a word), before anything is parsed or written; asking for 2 is fine."""
    args = ["--env", "CartPole-v1", "--out", str(tmp_path), "--host-devices"]
    assert main(["metarl", "train", *args, "3"]) == 2
    assert "--host-devices 3: cannot take effect" in capsys.readouterr().err and not any(tmp_path.iterdir())
    assert main(["metarl", "train", *args, "x"]) == 2
    assert "--host-devices: must be a whole number" in capsys.readouterr().err


REMOVED_SPELLINGS = (r"--(es|metagrad)\.[a-z]", r"--outer[ =](es|metagrad)\b", r"\"(es|metagrad)\.[a-z_]+\"\s*=",
                     r"(?m)^(es|metagrad) = \{", r"\[(stage\.)?(base|grid)\.(es|metagrad)\]", r"\{(es|metagrad)\.[a-z]")


def test_no_removed_spelling_is_left_in_the_project():
    """The outer loop's settings are `outer:NAME --outer.x` on the command line and `outer.x` in sweep files; the
    spellings from before the loops became a registry were migrated and removed, here included: scripts, sweeps,
    benchmarks, the README and the tests themselves use the current ones. Stored results are data, not searched; the
identities of stored runs name the loop's settings by the loop, as metarl.compat (the one place for old data) says."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [*root.glob("README.md"), *root.glob("*/README.md"), *(root / "docs").glob("*.md"), *(root / "sweeps").glob("*.toml"),
             *(root / "experiments").glob("*"),
             *(root / "benchmarks").glob("*.py"), *(root / "benchmarks").glob("*.sh"),
             *(p for p in (root / "metarl").rglob("*.py") if p.name != "compat.py"),
             *(p for p in (root / "tests").glob("*.py") if p.name != "test_cli.py")]
    found = [f"{path.relative_to(root)}: {match.group(0)!r}" for path in files if path.is_file()
             for spelling in REMOVED_SPELLINGS for match in re.finditer(spelling, path.read_text())]
    assert not found, found


@pytest.mark.parametrize("command", ["train", "meta-train", "eval"])
def test_the_smoke_preset_is_flags_the_users_own_flags_override(command):
    """`--preset smoke` puts its flags before the user's: the config is what those flags build, a later flag wins,
    and an unknown preset is refused naming the known ones."""
    from metarl.app.commands import parse
    from metarl.errors import ConfigError
    from metarl.presets import PRESETS

    smoke = parse(command, ["--preset", "smoke"])
    assert smoke == parse(command, PRESETS[command]["smoke"] + (["--outer.population-size", "4"] if command == "meta-train" else []))
    assert smoke.ppo.total_timesteps == 1024 and smoke != parse(command, [])
    assert parse(command, ["--preset", "smoke", "--ppo.total-timesteps", "2048"]).ppo.total_timesteps == 2048
    with pytest.raises(ConfigError, match="'huge' is not a preset of metarl .*; presets: smoke"):
        parse(command, ["--preset", "huge"])


def test_the_smoke_preset_sets_the_outer_loops_own_fields_for_the_loop_the_run_uses():
    from metarl.app.meta_train import parse_meta_train_config

    assert parse_meta_train_config(["--preset", "smoke", "outer:metagrad"]).outer.num_agents == 2
    assert parse_meta_train_config(["outer:es", "--preset", "smoke"]).outer.population_size == 4


def test_the_ta_lpo_preset_is_the_temporally_aware_studys_recipe():
    """`metarl meta-train --preset ta_lpo` makes the wide-range study's TA-LPO run (results/ta_wide/ta_lpo_s0): the same
    identity, so the same trajectory, bit for bit."""
    from pathlib import Path

    from metarl.app.meta_train import parse_meta_train_config
    from metarl.io.checkpoint import differing_fields

    stored = json.loads((Path(__file__).resolve().parents[1] / "results" / "ta_wide" / "ta_lpo_s0" / "config.json").read_text())
    config = parse_meta_train_config(["--preset", "ta_lpo"])
    assert not differing_fields(stored["identity"], json.loads(json.dumps(config.identity())))
    assert config.objective == "ta_lpo" and not config.verdict.tuned


def test_the_shaping_preset_is_the_shaping_studys_recipe():
    """`metarl meta-train --preset shaping` makes the shaping study's run (results/shaping/pd_bad_progress_s0) with the
    same identity, so the same trajectory; only its verdict's stream differs (the study chose on validation seeds)."""
    from pathlib import Path

    from metarl.app.meta_train import parse_meta_train_config
    from metarl.io.checkpoint import differing_fields

    run = Path(__file__).resolve().parents[1] / "results" / "shaping" / "pd_bad_progress_s0"
    stored = json.loads((run / "config.json").read_text())
    config = parse_meta_train_config(["--preset", "shaping"])
    assert not differing_fields(stored["identity"], json.loads(json.dumps(config.identity())))
    assert config.shaping.name == "learned" and config.objective == "ppo" and config.verdict.stream == "test"
    assert parse_meta_train_config(["--preset", "shaping", "--shaping.heuristic", "pd_good"]).shaping.heuristic == "pd_good"


def test_the_curriculum_preset_is_the_curricula_studys_recipe():
    """`metarl meta-train --preset curriculum` makes the curricula study's run (results/curricula_pocket/learned_progress_s0)
    with the same identity; only its verdict differs (the study judged each run on validation seeds, the preset judges
    on test seeds). The study stepped its three meta-seeds together (`metarl sweep --vmap`), which rounds differently
    from a run alone, so a solo run follows its own trajectory from the same start."""
    from pathlib import Path

    from metarl.app.meta_train import parse_meta_train_config
    from metarl.io.checkpoint import differing_fields

    run = Path(__file__).resolve().parents[1] / "results" / "curricula_pocket" / "learned_progress_s0"
    stored = json.loads((run / "config.json").read_text())
    config = parse_meta_train_config(["--preset", "curriculum"])
    assert not differing_fields(stored["identity"], json.loads(json.dumps(config.identity())))
    assert config.curriculum.name == "learned" and config.verdict.stream == "test" and config.verdict.statistic == "mean"
    assert parse_meta_train_config(["--preset", "curriculum", "--outer.sigma", "0.3"]).outer.sigma == 0.3


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """Every `metarl meta-train|train` line in the README's and docs' code blocks: (file, command, its arguments), with
    backslash continuations joined and trailing comments dropped."""
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [root / "README.md", *(root / "docs").glob("*.md")]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if (len(words) > 2 and words[0] == "metarl" and words[1] in ("meta-train", "train") and "--help" not in words
                        and "..." not in words):
                    found.append((path.name, words[1], words[2:]))
    return found


@pytest.mark.parametrize("name, command, args", documented_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_documented_command_line_is_a_valid_config(name, command, args):
    """The command lines the README and docs show build configs that pass validation (an example lifetime beyond the
    scan, a misspelt flag, a removed option would fail here, not on a reader's machine)."""
    from metarl.app.commands import parse
    from metarl.checks import validate

    if "--import" in args or any("path/to" in a or a.endswith(".msgpack") for a in args):
        pytest.skip("names a file of the reader's own")
    config = parse(command, args)
    config.validate()
    if command == "meta-train":
        validate(config)
