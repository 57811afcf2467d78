"""`metarl sweep`: a bad file fails before any run; complete runs are skipped and interrupted ones resume;
numeric variants stepped together (vmapped) equal the same runs made one by one; every study stored in
results/ regenerates as stored (its sweep file, its runs both ways, the commands recorded beside them)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_META, in_default_codegen

from metarl.app.cli import main
from metarl.app.sweep import load_sweep, run_sweep
from metarl.errors import ConfigError
from metarl.io.results import read_index

ROOT = Path(__file__).resolve().parent.parent



def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "extra,message",
    [
        ('grid = { "outer.sigmaa" = [0.1] }', r"stage 1 run 1: unknown key 'outer.sigmaa'; allowed keys of outer: .*sigma"),
        ('grid = { objective = ["lpo", "nope"] }', r"stage 1 run 'nope_s0': unknown objective 'nope'; known objectives: .*lpo"),
        ('grid = { "outer.sigma" = ["big"] }', r"stage 1 run 1: Error parsing key 'outer.sigma': could not convert string to float: 'big'"),
        ('grid = { "outer.sigma" = [-1.0] }', r"run 'lpo_s0': outer.sigma: must be > 0"),
        ('grid = { out = ["elsewhere"] }', r"key 'out' is set by the sweep"),
        ('grid = { "tasks.fitness" = ["best"] }', r"invalid choice 'best' for key 'tasks.fitness'. Expected one of \('final_return'"),
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
    lpo_seconds = index[0]["seconds"]
    assert float(lpo_seconds) > 0
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
    assert read_index(out / "index.csv")[0]["seconds"] == lpo_seconds  # and its recorded time kept
    for a, b in zip(_leaves(straight), _leaves(_final_params(run)), strict=True):
        np.testing.assert_array_equal(a, b)  # resumed = uninterrupted, bit for bit
    assert _rows(run) == straight_rows
    assert (out / "sweep.png").is_file() and (out / "sweep.toml").read_text() == path.read_text()
    # stopped after its last generation but before its verdict (no summary.json): pending, not complete
    (out / "lpo_s0" / "summary.json").unlink()
    capsys.readouterr()
    assert main(["metarl", "sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    assert "[ pending] stage 1 · lpo_s0" in capsys.readouterr().out


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

    from metarl.app import sweep as sweep_module
    from metarl.app.sweep import _batch_groups
    from metarl.meta import run as meta_run

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
    sweep = load_sweep(path, out=str(together))
    names = [run.name for run in sweep.runs]
    assert len(names) == 2
    groups = [[run.name for run in group] for group in _batch_groups(sweep.runs)]
    assert groups == [names], f"the two runs must form one batch group (split, 'together' would be 'alone'): {groups}"
    batched, single = [], []  # how run_sweep made the runs: stepped together (one call for both), or one by one
    batch_runs, one_run = sweep_module.run_meta_train_batch, meta_run.run_meta_train  # as the sweep calls them

    def recording_batch(configs, *args, **kwargs):
        batched.append([config.name for config in configs])
        return batch_runs(configs, *args, **kwargs)

    def recording_one(config, *args, **kwargs):
        single.append(config.name)
        return one_run(config, *args, **kwargs)

    sweep_module.run_meta_train_batch, meta_run.run_meta_train = recording_batch, recording_one
    try:
        run_sweep(path, out=str(together), verbose=False)
        assert (batched, single) == ([names], []), f"together: stepped together {batched}, alone {single}"
        run_sweep(path, out=str(alone), vmap=False, verbose=False)
        assert (batched, single) == ([names], names), f"one by one: stepped together {batched}, alone {single}"
    finally:
        sweep_module.run_meta_train_batch, meta_run.run_meta_train = batch_runs, one_run
    rows = []
    for run in sweep.runs:
        for a, b in zip(_leaves(_final_params(together / run.name)), _leaves(_final_params(alone / run.name)), strict=True):
            np.testing.assert_array_equal(a, b)
        assert _rows(together / run.name) == _rows(alone / run.name)
        rows.append(_rows(together / run.name))
    assert rows[0] != rows[1]  # two different runs


# --- the stored studies: results/<study> regenerates as stored -------------------------------------------

STUDIES = sorted(path.parent.name for path in (ROOT / "results").glob("*/sweep.toml"))


def _plain(values):
    return json.loads(json.dumps(values))  # tuples as lists, as stored


def _filled(defaults, stored):
    """``stored`` with the fields it lacks (added to metarl after the run was made) at their defaults."""
    if not (isinstance(defaults, dict) and isinstance(stored, dict)):
        return stored
    return {**defaults, **{key: _filled(defaults.get(key), value) for key, value in stored.items()}}


def stored_config_differences(command: str, config, stored: dict) -> list[str]:
    """Fields in which ``config`` differs from a run folder's config.json (``stored``), empty if it is the stored
    run's config. A meta-training run's trajectory is compared by its identity (MetaTrainConfig.identity: the
    checkpoint's notion of the same run, which keeps older runs' identity across renamed fields and changed
    defaults), every other field as stored; a field added to metarl after a run was made counts as equal when
    ``config`` has its default. ``force`` (start again) and ``reference_store`` (where baselines are cached, under keys
    that hold everything their numbers depend on) are how a command runs, not what it runs."""
    from metarl.config import to_dict
    from metarl.io.checkpoint import differing_fields

    if stored.get("kind", command) != command:  # eval folders from before 'kind' was recorded have none
        return [f"kind (stored: {stored.get('kind')!r}, now: {command!r})"]
    current = _plain(to_dict(config))
    previous = _filled(_plain(to_dict(type(config)())), stored["config"])
    differences = []
    if command == "meta-train":
        identity = _plain(config.identity())
        differences = differing_fields(stored["identity"], identity)
        trajectory = set(identity) | {"outer", "curriculum", "shaping"}
        current = {key: value for key, value in current.items() if key not in trajectory}
        previous = {key: previous.get(key) for key in current}
    for values in (current, previous):
        values.pop("force", None)
        values.pop("reference_store", None)
    previous.pop("kind", None)  # early eval folders recorded it inside the config
    return differences + differing_fields(previous, current)


def parse_command(command_line: str):
    """``(command, config)``: what ``metarl <command> ...`` builds, through the CLI's own entry point and parser,
    with the command's run replaced in the command table by one that keeps the config (nothing can run)."""
    import dataclasses
    import shlex

    from metarl.app import commands

    argv = shlex.split(command_line)
    parsed = []
    with pytest.MonkeyPatch.context() as patch:
        for name, command in list(commands.COMMANDS.items()):
            patch.setitem(commands.COMMANDS, name, dataclasses.replace(command, main=lambda config, argv: parsed.append(config)))
        try:
            code = main(argv)
        except SystemExit as error:
            raise AssertionError(f"the CLI refused {command_line!r} (exit {error.code})") from None
    assert code == 0 and len(parsed) == 1, f"{command_line!r}: exit {code}, {len(parsed)} configs"
    return argv[1], parsed[0]


def _stored(run) -> dict:
    return json.loads((run.run_dir / "config.json").read_text())


def test_every_shipped_sweep_file_has_its_stored_study():
    assert sorted(path.stem for path in (ROOT / "sweeps").glob("*.toml")) == STUDIES


@pytest.mark.parametrize("study", STUDIES)
def test_a_stored_study_keeps_its_sweep_file(study):
    """results/<study>/sweep.toml is sweeps/<study>.toml byte for byte: the file that regenerates the study."""
    stored, shipped = ROOT / "results" / study / "sweep.toml", ROOT / "sweeps" / f"{study}.toml"
    assert stored.read_bytes() == shipped.read_bytes(), f"{stored} is not a copy of {shipped}"


@pytest.mark.parametrize("study", STUDIES)
def test_the_sweep_file_makes_exactly_the_stored_runs(study, monkeypatch):
    """Both ways: every run the sweep file makes is stored (folder and index row) with exactly the config it
    builds, and every stored run folder and index row is one of the sweep file's runs; `metarl sweep` run in
    place finds every run complete."""
    from metarl.app.sweep import is_complete

    monkeypatch.chdir(ROOT)
    sweep = load_sweep(Path("sweeps") / f"{study}.toml")
    folder = Path("results") / study
    assert sweep.out == folder
    made = sorted(run.name for run in sweep.runs)
    stored = sorted(path.parent.name for path in folder.glob("*/config.json"))
    assert stored == made, f"missing run folders: {sorted(set(made) - set(stored))}; extra: {sorted(set(stored) - set(made))}"
    problems = {run.name: diff for run in sweep.runs if (diff := stored_config_differences(run.command, run.config, _stored(run)))}
    assert not problems, problems
    index = read_index(folder / "index.csv")
    rows = [(int(row["stage"]), row["command"], row["run"], json.loads(row["overrides"])) for row in index]
    assert rows == [(run.stage, run.command, run.name, _plain(run.overrides)) for run in sweep.runs]
    assert [run.name for run in sweep.runs if not is_complete(run)] == []


@pytest.mark.parametrize("study", STUDIES)
def test_the_stored_commands_build_the_stored_configs(study, monkeypatch):
    """Each run's command, as index.csv and its config.json record it, parsed by the CLI today, builds exactly
    the stored config: run again, it makes the stored run, not the current defaults."""
    monkeypatch.chdir(ROOT)
    folder = Path("results") / study
    problems = {}
    for row in read_index(folder / "index.csv"):
        stored = json.loads((folder / row["run"] / "config.json").read_text())
        for where, line in (("index.csv", row["command_line"]), ("config.json", stored["command"])):
            command, config = parse_command(line)
            diff = stored_config_differences(row["command"], config, stored) if command == row["command"] else [f"command {command!r}"]
            if diff:
                problems[f"{row['run']} ({where}: {line})"] = diff
    assert not problems, problems


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


def test_a_later_stage_may_start_from_a_chunk_an_earlier_stage_will_write(tmp_path):
    """A warm start names an earlier run's history file (every chunk's mean): planned, so the sweep validates;
    a chunk that run never ends at is refused before anything runs."""
    text = '''
[[stage]]
command = "meta-train"
name = "lpo"
[stage.base]
num_generations = 12
chunk_size = 5
[[stage]]
command = "meta-train"
name = "warm"
[stage.base]
objective = "ta_lpo"
init_from = "{out}/lpo/learned/history/lpo_g%s.msgpack"
'''
    out = tmp_path / "results"
    for generation in ("0005", "0010", "0012"):
        sweep = load_sweep(write(tmp_path, text % generation), out=str(out))
        assert [run.name for run in sweep.runs] == ["lpo", "warm"]
    with pytest.raises(ConfigError, match=r"run 'warm': .*lpo_g0015.msgpack"):
        load_sweep(write(tmp_path, text % "0015"), out=str(out))
    assert not out.exists()


def test_a_verdict_over_shapings_an_earlier_stage_will_write_validates(tmp_path):
    """An eval judging a learned shaping an earlier stage will write against the best hand-designed one: the files are
    planned, so the sweep validates (the verdict is checked when its stage runs), and the command names the file."""
    text = """
[[stage]]
command = "meta-train"
name = "learned"
[stage.base]
objective = "ppo"
shaping = { name = "learned", heuristic = "pd_bad" }
[[stage]]
command = "eval"
name = "judge"
[stage.base]
objectives = ["ppo"]
shapings = ["none", "naive", "{out}/learned/learned/shaping_learned.msgpack"]
heuristic = "pd_bad"
heldout = "test"
verdict_against = "best_hand_designed"
"""
    out = tmp_path / "results"
    sweep = load_sweep(write(tmp_path, text), out=str(out))
    judge = sweep.runs[1]
    assert judge.config.verdict_against == "best_hand_designed"
    assert str(out / "learned" / "learned" / "shaping_learned.msgpack") in judge.command_line() and not out.exists()


def test_an_objectives_keywords_may_be_a_toml_table(tmp_path):
    """``objective_kwargs = { ppo_init = true }`` is the JSON string ``--objective-kwargs`` takes, in the run's command."""
    path = write(tmp_path, 'command = "meta-train"\nname = "x"\n[base]\nobjective = "lpo"\n'
                           'objective_kwargs = { ppo_init = true, clip_eps = 0.5 }\n')
    (run,) = load_sweep(path).runs
    assert json.loads(run.config.objective_kwargs) == {"ppo_init": True, "clip_eps": 0.5}
    assert run.command_line()[run.command_line().index("--objective-kwargs") + 1] == '{"clip_eps": 0.5, "ppo_init": true}'


def test_a_finished_run_whose_judging_stream_changed_is_pending_and_keeps_its_training(tmp_path):
    """The design-then-test protocol in a sweep: a run judged on the validation stream (a design choice) counts as
    complete while its stage asks for validation; once the stage asks for the test stream it is pending (a rerun
    resumes at its last generation and judges it again, nothing trained again). A verdict stored before verdicts
    kept their seed keys counts as judged as asked."""
    from metarl.app.sweep import is_complete

    text = '''
[[stage]]
command = "meta-train"
name = "lpo"
[stage.base]
num_generations = 3
"verdict.stream" = "%s"
"verdict.num_seeds" = 4
'''
    out = tmp_path / "results"
    (run,) = load_sweep(write(tmp_path, text % "validation"), out=str(out)).runs
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "config.json").write_text(json.dumps({"kind": "meta-train", "identity": _plain(run.config.identity())}))
    judged = {"stream": "validation", "seed_keys": [[0, i] for i in range(4)], "against": {"ppo": {}, "tuned_ppo": {}}}
    (run.run_dir / "summary.json").write_text(json.dumps({"generations": 3, "verdict": judged}))
    assert is_complete(run)
    (rejudged,) = load_sweep(write(tmp_path, text % "test"), out=str(out)).runs
    assert not is_complete(rejudged)
    (run.run_dir / "summary.json").write_text(json.dumps({"generations": 3, "verdict": {"against": {"ppo": {}, "tuned_ppo": {}}}}))
    assert is_complete(rejudged)
    (run.run_dir / "summary.json").write_text(json.dumps({"generations": 2, "verdict": judged}))
    assert not is_complete(run)  # and an unfinished run stays pending whatever its verdict
