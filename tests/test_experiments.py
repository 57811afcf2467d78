"""The tables a study's script writes into results/ regenerate from the stored run folders alone."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("study", ["ta_headroom", "ta_headroom_wide"])
def test_the_time_awareness_headroom_table_regenerates_from_its_runs(study):
    if not (ROOT / "results" / study / "headroom.json").is_file():
        pytest.skip("study not stored")
    script = load_script("ta_headroom")
    root = ROOT / "results" / study
    labels, scores, envs, lifetimes, stream = script.load_members(root)
    result = script.headroom(labels, scores, envs, lifetimes, "ppo_clip0.2", stream)
    stored = json.loads((root / "headroom.json").read_text())
    assert json.loads(json.dumps(result)) == stored
    assert (root / "headroom.md").read_text() == script.markdown(result) + "\n"
    assert stream == "validation"  # a design choice: the test stream stays untouched


def test_time_varying_members_are_told_apart_by_name():
    script = load_script("ta_headroom")
    assert [script.is_time_varying(n) for n in ("ppo_clip0.3to0.05", "ppo_anneal_lr", "ppo_clip0.2", "dpo", "ppo_clip0.1")] == [
        True, True, False, False, False]


def assert_close(computed, stored, where="") -> None:
    if isinstance(stored, dict):
        assert isinstance(computed, dict) and computed.keys() == stored.keys(), where
        for key in stored:
            assert_close(computed[key], stored[key], f"{where}.{key}")
    elif isinstance(stored, list):
        assert isinstance(computed, list) and len(computed) == len(stored), where
        for i, (c, s) in enumerate(zip(computed, stored, strict=True)):
            assert_close(c, s, f"{where}[{i}]")
    elif isinstance(stored, float):
        assert computed == pytest.approx(stored, rel=1e-5, abs=1e-7, nan_ok=True), where
    else:
        assert computed == stored, where


@pytest.mark.slow  # 10-12 s of bootstraps over stored scores, like the other regenerations of results/: CI's slow step
@pytest.mark.parametrize("study", ["ta_study", "ta_wide"])
def test_the_temporally_aware_study_tables_regenerate_from_its_runs(monkeypatch, study):
    if not (ROOT / "results" / study / "study.json").is_file():
        pytest.skip("study not stored")
    script = load_script("ta_study")
    monkeypatch.chdir(ROOT)  # the tables name the learned files as the script's users do, relative to the project
    root = Path("results") / study
    meta, versus = script.meta_train_rows(root), script.versus_lpo_rows(root)
    evals, info = script.eval_rows(root)
    stored = json.loads((root / "study.json").read_text())
    # The drift numbers come from jax on the tests' cheap code generation (conftest.py): equal to the last bits or so.
    assert_close(json.loads(json.dumps({"meta_train": meta, "versus_lpo": versus, "eval": evals, "info": info})), stored)
    assert (root / "study.md").read_text() == script.markdown(meta, versus, evals, info) + "\n"
    assert {r["stream"] for r in meta} == {r["stream"] for r in versus} == {"test"}  # final verdicts: the test stream
    assert {r["stream"] for r in evals} <= {"test"}


def _eval_folder(folder: Path, objectives: list[str], scores: np.ndarray, **config) -> None:
    folder.mkdir(parents=True)
    np.savez(folder / "eval.npz", scores=scores, objectives=np.array(objectives), envs=np.array(["CartPole-v1"]),
             lifetimes=np.array([16]))
    base = {"envs": ["CartPole-v1"], "lifetimes": [16], "num_seeds": 4, "score": "auc", "heldout": "test", "ppo": {"lr": 0.01}}
    (folder / "config.json").write_text(json.dumps({"config": {**base, **config, "objectives": objectives}}))


def test_tuned_ppo_measured_later_pairs_only_on_the_same_seeds_and_settings(tmp_path):
    """An eval that left tuned PPO out gets it from <eval>_tuned only where both agree on the settings and the
    companion's PPO scores equal the folder's bit for bit; anything else stops with the reason."""
    script = load_script("ta_study")
    rng = np.random.default_rng(0)
    ppo, other, tuned = (rng.normal(size=(1, 1, 4)) for _ in range(3))
    _eval_folder(tmp_path / "eval", ["ppo", "x/lpo_s0/learned/lpo.msgpack"], np.stack([ppo, other]))
    data = {"scores": np.stack([ppo, other])}
    config = json.loads((tmp_path / "eval" / "config.json").read_text())["config"]
    entries = ["ppo", "x/lpo_s0/learned/lpo.msgpack"]
    assert script.with_tuned_companion(tmp_path / "eval", data, config, entries) == (data, entries)  # none stored: as is

    _eval_folder(tmp_path / "eval_tuned", ["ppo", "tuned_ppo"], np.stack([ppo, tuned]))
    merged, merged_entries = script.with_tuned_companion(tmp_path / "eval", data, config, entries)
    assert merged_entries == entries + ["tuned_ppo"]
    np.testing.assert_array_equal(merged["scores"], np.stack([ppo, other, tuned]))

    (tmp_path / "eval_tuned" / "eval.npz").unlink()
    np.savez((tmp_path / "eval_tuned" / "eval.npz"), scores=np.stack([ppo + 1e-7, tuned]), objectives=np.array(["ppo", "tuned_ppo"]))
    with pytest.raises(SystemExit, match="PPO scores differ"):
        script.with_tuned_companion(tmp_path / "eval", data, config, entries)
    with pytest.raises(SystemExit, match="lifetimes differ"):
        script.with_tuned_companion(tmp_path / "eval", data, {**config, "lifetimes": [32]}, entries)


@pytest.mark.slow  # 10 s of bootstraps over stored scores: CI's slow step
def test_the_acrobot_budget_tables_regenerate_from_its_runs():
    """budget.md and budget.json are a function of the study's run folders and eval.npz files alone (the verdicts'
    bootstrap draws its resamples from a fixed key, so a recomputation is exact)."""
    script = load_script("budget_curve")
    root = ROOT / "results" / "acrobot_budget"
    points, judged, spread, fine_lr = (script.run_points(root), script.judged_rows(root), script.spread_rows(root),
                                       script.fine_lr_rows(root))
    stored = json.loads((root / "budget.json").read_text())
    assert_close(json.loads(json.dumps({"runs": points, "judged": judged, "spread": spread, "fine_lr": fine_lr}, default=float)),
                 stored)
    assert (root / "budget.md").read_text() == script.markdown(points, judged, spread, fine_lr) + "\n"
    assert {r["failed"] for r in spread} != {0}  # the table describes what the IQM trims: some seeds fail
    assert {p["stream"] for p in points} == {r["stream"] for r in judged} == {"validation"}  # the test stream stays untouched


def test_the_shaping_study_tables_regenerate_from_its_runs():
    """study.md and study.json are a function of the shaping study's eval folders and shaping reports alone; every
    verdict there is on the test stream."""
    script = load_script("shaping_study")
    root = ROOT / "results" / "shaping"
    verdicts, weights, against_none = script.verdict_rows(root), script.weight_rows(root), script.against_none_rows(root)
    counts = script.success_counts(verdicts)
    stored = json.loads((root / "study.json").read_text())
    assert_close(json.loads(json.dumps({"verdicts": verdicts, "success": counts, "against_none": against_none, "weights": weights})),
                 stored)
    assert (root / "study.md").read_text() == script.markdown(verdicts, counts, weights, against_none)
    assert {json.loads((p.parent / "config.json").read_text())["config"]["heldout"] for p in root.glob("test_*/verdict.json")} == {"test"}
    assert len(verdicts) == len(against_none) == 2 * 6 * 3  # two heuristics x six discoveries x three lifetimes


@pytest.mark.slow  # bootstraps over stored scores, like the other regenerations of results/: CI's slow step
def test_the_joint_study_tables_regenerate_from_its_runs():
    """study.md and study.json are a function of the joint study's test evals and run folders alone; the compared
    variants are the ones the sweep's grid puts at those positions (joint = the joint run's drift with its own shaping)."""
    script = load_script("joint_study")
    root = ROOT / "results" / "joint"
    evals, runs = script.eval_rows(root), script.run_rows(root)
    summary = script.counts(evals)
    stored = json.loads((root / "study.json").read_text())
    assert_close(json.loads(json.dumps({"evals": evals, "summary": summary, "runs": runs}, default=float)), stored)
    assert (root / "study.md").read_text() == script.markdown(evals, summary, runs)
    for path in sorted(root.glob("test_s*/config.json")):
        config = json.loads(path.read_text())["config"]
        index, k = script._variants(config), path.parent.name.removeprefix("test_s")
        variants = [(o, s) for o in config["objectives"] for s in config["shapings"]]
        assert variants[index["joint"]] == (f"results/joint/joint_pd_bad_s{k}/learned/lpo.msgpack",
                                            f"results/joint/joint_pd_bad_s{k}/learned/shaping_learned.msgpack")
        assert variants[index["objective alone"]] == (f"results/joint/lpo_alone_s{k}/learned/lpo.msgpack", "none")
        assert variants[index["shaping alone"]] == ("ppo", f"results/shaping/pd_bad_progress_s{k}/learned/shaping_learned.msgpack")
        assert config["heldout"] == "test"


@pytest.mark.slow  # drift grids and bootstraps over stored scores, like the other regenerations of results/: CI's slow step
@pytest.mark.skipif(not (ROOT / "results" / "metagrad_ta" / "study.json").is_file(), reason="study not stored")
def test_the_es_vs_metagradient_tables_regenerate_from_their_runs(monkeypatch):
    """study.md and study.json are a function of the meta-gradient runs and ta_study's ES runs alone; both arms start
    from the same η0 per meta-seed and are paired on the same test seeds."""
    script = load_script("metagrad_study")
    monkeypatch.chdir(ROOT)
    root, es_root = Path("results") / "metagrad_ta", Path("results") / "ta_study"
    folders = [p.parent for p in sorted(es_root.glob("ta_lpo_s*/summary.json")) if script.ES_RUN.match(p.parent.name)]
    folders += [p.parent for p in sorted(root.glob("metagrad_*_s*/summary.json")) if script.METAGRAD_RUN.match(p.parent.name)]
    rows = [script.run_row(folder) for folder in folders]
    versus = script.versus_es(rows)
    stored = json.loads((root / "study.json").read_text())
    assert_close(json.loads(json.dumps({"runs": rows, "versus_es": versus})), stored)
    assert (root / "study.md").read_text() == script.markdown(rows, versus) + "\n"
    assert {r["stream"] for r in rows} == {v["stream"] for v in versus} == {"test"}
    assert {r["arm"] for r in rows} == {"ES", "meta-gradients lr1e-3", "meta-gradients lr1e-2"}
    for row in rows:  # the meta-gradient arm started where ES did: its η0 is the same init under the same seed
        config = json.loads((Path(row["folder"]) / "config.json").read_text())["config"]
        assert config["seed"] == row["seed"] and config["objective"] == "ta_lpo" and config["init_from"] is None


def test_the_step_ablation_splits_a_learned_step_size_lpo_into_ppo_under_its_schedule_and_its_drift_alone(tmp_path):
    """experiments/step_ablation.py: ``schedule_only`` is PPO's drift exactly under the file's learned schedule,
    ``drift_only`` the file's drift exactly at the recipe's step size; an LPO without a learned step is refused."""
    import jax
    import jax.numpy as jnp

    from metarl import objectives
    from metarl.objectives.base import LifetimeContext

    ablation = load_script("step_ablation")
    kwargs = {"hidden": 8, "learned_step": True, "step_gain": 10.0}
    lpo = objectives.make("lpo", **kwargs)
    params = {**jax.tree.map(lambda x: x + 0.3, lpo.init(jax.random.PRNGKey(0))), "log_step": jnp.array([0.1, -0.2])}
    path = objectives.save(tmp_path / "learned" / "lpo.msgpack", "lpo", kwargs, params)
    halves = ablation.ablations(path)
    ratio = jax.random.uniform(jax.random.PRNGKey(1), (64,), minval=0.5, maxval=1.6)
    advantages = jax.random.normal(jax.random.PRNGKey(2), (64,))
    context = LifetimeContext(3, 10)
    schedule_kwargs, schedule_params = halves["schedule_only"]
    schedule = objectives.make("lpo", **schedule_kwargs)
    np.testing.assert_array_equal(schedule.drift(schedule_params, ratio, advantages, context),
                                  objectives.make("ppo").drift({}, ratio, advantages, context))
    assert float(schedule.step_scale(schedule_params, context)) == pytest.approx(float(lpo.step_scale(params, context)))
    drift_kwargs, drift_params = halves["drift_only"]
    assert drift_kwargs == objectives.load(path)[2]
    np.testing.assert_array_equal(lpo.drift(drift_params, ratio, advantages, context), lpo.drift(params, ratio, advantages, context))
    assert float(lpo.step_scale(drift_params, context)) == 1.0
    plain = objectives.save(tmp_path / "plain.msgpack", "lpo", {"hidden": 8}, objectives.make("lpo", hidden=8).init(jax.random.PRNGKey(0)))
    with pytest.raises(SystemExit, match="learned_step is needed"):
        ablation.ablations(plain)
