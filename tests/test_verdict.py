"""The held-out verdict: paired statistics on hand-made scores, the store of baseline measurements, the
references measured on the configured seeds and reused, and the verdict written by meta-train and eval."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from conftest import tiny

from metarl import verdict
from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError
from metarl.meta import tasks

SEEDS = 32


def seed_effects(seed: int = 0) -> np.ndarray:
    """Per-seed scores with a large seed-to-seed spread that candidate and baseline share (paired seeds)."""
    return np.random.default_rng(seed).normal(300.0, 60.0, SEEDS)


@pytest.mark.parametrize(
    ("shift", "expected"),
    [(12.0, "better"), (-12.0, "worse"), (0.0, "indistinguishable")],
)
def test_paired_comparison_gives_each_verdict(shift, expected):
    baseline = seed_effects()
    candidate = baseline + shift + np.random.default_rng(1).normal(0.0, 6.0, SEEDS)
    result = verdict.paired_comparison(candidate, baseline)
    assert result["verdict"] == expected
    low, high = result["difference"]["ci"]
    assert low < result["difference"]["iqm"] < high
    for side in ("candidate", "baseline"):
        assert result[side]["ci"][0] <= result[side]["iqm"] <= result[side]["ci"][1]
    if expected != "indistinguishable":
        # Pairing is what makes the shift visible: each side's own CI is far wider than the shift.
        assert result["baseline"]["ci"][1] - result["baseline"]["ci"][0] > 2 * abs(shift)


def test_paired_comparison_counts_a_diverged_seed_as_a_failure():
    baseline = seed_effects()
    candidate = baseline + 12.0
    assert verdict.paired_comparison(candidate, baseline)["verdict"] == "better"
    candidate[: SEEDS // 2] = np.nan  # half the seeds diverged: they must not be dropped
    result = verdict.paired_comparison(candidate, baseline)
    assert result["diverged"] == {"candidate": SEEDS // 2, "baseline": 0}
    assert result["verdict"] == "worse"


def test_paired_comparison_refuses_unpaired_input():
    with pytest.raises(ValueError, match="equal shape"):
        verdict.paired_comparison(np.zeros(5), np.zeros(6))


def test_the_store_measures_once_per_key_and_records_the_command(tmp_path):
    store = verdict.Store(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"scores": [len(calls)]}

    key = {"envs": ["CartPole-v1"], "lr": 0.01}
    assert store.get("ppo_scores", key, compute, ["metarl", "meta-train"]) == {"scores": [1]}
    assert store.get("ppo_scores", dict(key), compute) == {"scores": [1]}
    assert store.get("ppo_scores", {**key, "lr": 0.001}, compute) == {"scores": [2]}
    files = sorted(tmp_path.glob("ppo_scores-CartPole-v1-*.json"))
    assert len(files) == 2 and len(calls) == 2
    assert json.loads(files[0].read_text())["measured_by"].startswith("metarl meta-train") or json.loads(
        files[1].read_text())["measured_by"].startswith("metarl meta-train")
    assert json.loads(files[0].read_text())["measured_on"]["devices"] == jax.device_count()  # recorded, not keyed
    assert verdict.Store("").get("x", key, compute) == {"scores": [3]}  # no store: always measured


def test_references_are_measured_on_the_configured_seeds_and_reused_for_an_identical_config(tmp_path, monkeypatch):
    measured = []

    def fake_measure(config, env_specs, objective, keys):
        measured.append(keys.shape[0])
        return tasks.References(np.asarray([10.0]), np.asarray([200.0 + len(measured)]))

    monkeypatch.setattr(tasks, "measure_references", fake_measure)
    store = verdict.Store(tmp_path)
    config = MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(reference_seeds=40))
    first = verdict.references_from_store(config, [None], store)
    again = verdict.references_from_store(config, [None], store)
    assert measured == [40]  # the identical inner config read the stored numbers
    np.testing.assert_array_equal(np.asarray(first.ppo), np.asarray(again.ppo))
    other = MetaTrainConfig(ppo=tiny(lr=0.003), tasks=TaskDistribution(reference_seeds=40))
    verdict.references_from_store(other, [None], store)
    assert measured == [40, 40]
    assert MetaTrainConfig().tasks.reference_seeds >= 32


def test_held_out_seeds_are_a_stream_apart_and_prefix_stable():
    held_out = np.asarray(verdict.stream_keys(verdict.VERDICT_STREAM, 8))
    np.testing.assert_array_equal(held_out[:4], np.asarray(verdict.stream_keys(verdict.VERDICT_STREAM, 4)))
    selection = np.asarray(verdict.stream_keys(verdict.SELECTION_STREAM, 8))
    assert not (held_out[:, None] == selection[None]).all(-1).any()


@pytest.mark.parametrize(
    ("verdict_config", "message"),
    [(VerdictConfig(num_seeds=1), "verdict.num_seeds"), (VerdictConfig(tuned_clips=(1.5,)), "verdict.tuned_clips"),
     (VerdictConfig(tuned_lrs=()), "verdict.tuned_lrs")],
)
def test_bad_verdict_settings_name_the_field(verdict_config, message):
    with pytest.raises(ConfigError, match=message):
        MetaTrainConfig(ppo=tiny(), verdict=verdict_config).validate()


@pytest.mark.heavy
def test_meta_train_ends_with_a_stored_verdict_against_ppo_and_tuned_ppo(tmp_path, capsys):
    from metarl.meta.run import run_meta_train

    config = MetaTrainConfig(
        ppo=tiny(), tasks=TaskDistribution(reference_seeds=2), outer=ESConfig(population_size=4), num_generations=1, eval_seeds=0,
        verdict=VerdictConfig(num_seeds=4, selection_seeds=2, tuned_lrs=(0.01, 0.001), tuned_clips=(0.2,), tuned_epochs=(2,),
                              tuned_anneal=(False,)),
        reference_store=str(tmp_path / "store"), out=str(tmp_path / "runs"),
    )
    run_meta_train(config, ["metarl", "meta-train"])
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / config.run_name / "summary.json").read_text())
    result = summary["verdict"]
    assert set(result["against"]) == {"ppo", "tuned_ppo"}
    for entry in result["against"].values():
        assert entry["verdict"] in verdict.VERDICTS and entry["num_seeds"] == 4
        assert np.asarray(entry["baseline_scores"]).shape == (1, 1, 4)
    assert result["against"]["tuned_ppo"]["config"]["lr"] in (0.01, 0.001)
    assert "held-out seeds" in printed and "tuned PPO" in printed
    kinds = sorted(p.name.split("-")[0] for p in (tmp_path / "store").glob("*.json"))
    assert kinds == ["ppo_scores", "ppo_scores", "reference", "tuned_ppo"]
    # A rerun of the finished command keeps the stored verdict and measures nothing again.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}
    run_meta_train(config, ["metarl", "meta-train"], verbose=False)
    assert json.loads((tmp_path / "runs" / config.run_name / "summary.json").read_text())["verdict"] == result
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}


@pytest.mark.heavy
def test_eval_compares_objectives_on_held_out_paired_seeds(tmp_path):
    from metarl.evaluation import EvalConfig, run_eval

    config = EvalConfig(objectives=("ppo", "dpo"), envs=("CartPole-v1",), lifetimes=(3,), num_seeds=4, ppo=tiny(),
                        verdict_against="ppo", out=str(tmp_path))
    run_dir = run_eval(config, ["metarl", "eval"], verbose=False)
    rows = json.loads((run_dir / "verdict.json").read_text())
    assert [(r["objective"], r["baseline_objective"], r["lifetime"]) for r in rows] == [("dpo", "ppo", 3)]
    assert rows[0]["verdict"] in verdict.VERDICTS
    assert "| dpo |" in (run_dir / "summary.md").read_text()
    with pytest.raises(ConfigError, match="verdict_against"):
        EvalConfig(objectives=("ppo", "dpo"), verdict_against="lpo").validate()
