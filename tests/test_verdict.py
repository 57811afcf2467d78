"""The verdict: paired statistics, equivalence and Holm on hand-made scores, the three seed streams, the tuned
grid's extension on fake score tables, the store of baseline measurements (keyed by the numerics version), the
references measured on the configured seeds and reused, the verdict written by meta-train and eval, and the
reprint of every committed verdict from its stored scores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny

from metarl import envs as metarl_envs
from metarl.app import verdict
from metarl.app.reprint import reprint_path
from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError
from metarl.meta import tasks
from metarl.stats import iqm

SEEDS = 32


def seed_effects(seed: int = 0) -> np.ndarray:
    """Per-seed scores with a large seed-to-seed spread that candidate and baseline share (paired seeds)."""
    return np.random.default_rng(seed).normal(300.0, 60.0, SEEDS)


@pytest.mark.parametrize(
    ("shift", "noise", "expected"),
    [(12.0, 6.0, "better"), (-12.0, 6.0, "worse"), (0.0, 0.5, "equivalent"), (0.0, 40.0, "inconclusive")],
)
def test_paired_comparison_gives_each_verdict(shift, noise, expected):
    baseline = seed_effects()
    candidate = baseline + shift + np.random.default_rng(1).normal(0.0, noise, SEEDS)
    result = verdict.paired_comparison(candidate, baseline, margin=3.0)
    assert result["verdict"] == expected
    low, high = result["difference"]["ci"]
    assert low < result["difference"]["iqm"] < high
    for side in ("candidate", "baseline"):
        assert result[side]["ci"][0] <= result[side]["iqm"] <= result[side]["ci"][1]
    if expected in ("better", "worse"):
        # Pairing is what makes the shift visible: each side's own CI is far wider than the shift.
        assert result["baseline"]["ci"][1] - result["baseline"]["ci"][0] > 2 * abs(shift)
        assert result["p_difference"] < 0.05
    if expected == "equivalent":
        assert -3.0 < low and high < 3.0 and result["p_equivalence"] < 0.05
    if expected == "inconclusive":  # neither away from 0 nor inside the margin: not "equal"
        assert low < 0 < high and (low < -3.0 or high > 3.0)


def test_without_a_margin_nothing_is_equivalent():
    baseline = seed_effects()
    candidate = baseline + np.random.default_rng(1).normal(0.0, 0.5, SEEDS)
    assert verdict.paired_comparison(candidate, baseline, margin=3.0)["verdict"] == "equivalent"
    assert verdict.paired_comparison(candidate, baseline, margin=0.0)["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        verdict.paired_comparison(candidate, baseline, margin=-1.0)


@pytest.mark.parametrize("num_seeds", [2, 7, 32])
def test_resampled_probability_of_improvement_is_the_direct_one_to_the_bit(num_seeds):
    """The verdict's bootstrap of P(X > Y) from seed multiplicities equals comparing the resampled copies, ties
    included (scores on a coarse grid tie often)."""
    rng = np.random.default_rng(num_seeds)
    candidate, baseline = np.arange(num_seeds) % 3.0, rng.permutation(np.arange(num_seeds) % 3.0 + 1.0)  # wins, ties, losses
    index = rng.integers(0, num_seeds, size=(500, num_seeds))
    direct = verdict.probability_of_improvement(candidate[index], baseline[index])
    np.testing.assert_array_equal(verdict.resampled_probability_of_improvement(candidate, baseline, index), direct)
    assert 0.0 < direct.std()  # resamples that differ: the multiplicities matter


def test_probability_of_improvement_on_hand_made_scores():
    low, high = np.arange(4.0), np.arange(4.0) + 10
    assert verdict.probability_of_improvement(high, low) == 1.0
    assert verdict.probability_of_improvement(low, high) == 0.0
    assert verdict.probability_of_improvement(low, low) == 0.5  # 4 ties of 16 pairs, 6 wins: (6 + 2) / 16
    assert verdict.probability_of_improvement(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.5
    result = verdict.paired_comparison(high, low)
    assert result["probability_of_improvement"]["value"] == 1.0
    assert result["probability_of_improvement"]["ci"] == [1.0, 1.0]


def test_holm_adjusts_step_down_and_stays_monotone():
    # By hand: sorted 0.01, 0.03, 0.04, 0.5 -> 4 * 0.01, 3 * 0.03, max(2 * 0.04, 0.09), max(0.5, 0.09)
    np.testing.assert_allclose(verdict.holm([0.01, 0.04, 0.03, 0.5]), [0.04, 0.09, 0.09, 0.5])
    np.testing.assert_allclose(verdict.holm([0.2, 0.9]), [0.4, 0.9])
    np.testing.assert_allclose(verdict.holm([0.6, 0.6]), [1.0, 1.0])  # capped at 1


def test_holm_verdicts_demote_a_borderline_win_in_a_large_family():
    def comparison(p, iqm=1.0, p_equivalence=1.0, margin=0.05):
        return {"p_difference": p, "p_equivalence": p_equivalence, "margin": margin, "difference": {"iqm": iqm}}

    alone = [comparison(0.02)]
    assert verdict.holm_verdicts(alone) == ["better"]
    family = [comparison(0.02), comparison(0.001, iqm=-2.0)] + [comparison(0.6) for _ in range(8)]
    words = verdict.holm_verdicts(family)
    assert words[0] == "inconclusive" and words[1] == "worse"  # 0.02 * 9 > 0.05; 0.001 * 10 < 0.05
    assert verdict.holm_verdicts([comparison(0.6, p_equivalence=0.001)]) == ["equivalent"]
    assert verdict.holm_verdicts([comparison(0.6, p_equivalence=0.001, margin=0.0)]) == ["inconclusive"]


def test_wilson_interval_on_hand_computed_values():
    # 5 of 5 at 95 %: lower bound n / (n + z^2) = 5 / 8.8415 = 0.5655
    np.testing.assert_allclose(verdict.wilson_interval(5, 5), [0.5655, 1.0], atol=1e-4)
    np.testing.assert_allclose(verdict.wilson_interval(0, 5), [0.0, 0.4345], atol=1e-4)
    low, high = verdict.wilson_interval(3, 5)
    assert low < 0.6 < high and abs((low + high) / 2 - 0.6) < 0.1
    with pytest.raises(ValueError, match="trials"):
        verdict.wilson_interval(0, 0)


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

    monkeypatch.setattr(verdict, "measure_references", fake_measure)
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


def test_the_seed_streams_never_share_a_seed_and_are_prefix_stable():
    streams = {**verdict.STREAMS, "reference": verdict.REFERENCE_STREAM}
    assert len(set(streams.values())) == len(streams)
    keys = {name: np.asarray(verdict.stream_keys(stream, 64)) for name, stream in streams.items()}
    np.testing.assert_array_equal(keys["test"][:4], np.asarray(verdict.stream_keys(verdict.TEST_STREAM, 4)))
    names = list(keys)
    for i, a in enumerate(names):
        assert len({tuple(k) for k in keys[a]}) == 64
        for b in names[i + 1:]:
            assert not (keys[a][:, None] == keys[b][None]).all(-1).any(), (a, b)
    assert verdict.stream_seed("test") == verdict.TEST_STREAM and verdict.stream_seed("validation") == verdict.VALIDATION_STREAM
    with pytest.raises(ValueError, match="validation, test"):
        verdict.stream_seed("selection")  # the selection stream never judges


def meta_training_keys(config: MetaTrainConfig, generations: int) -> np.ndarray:
    """Every key a default ES run of ``config`` trains a member's agents with (the derivation of metarl.meta.run,
    outer.py and tasks.py), and its progress-evaluation keys."""
    from metarl.meta.tasks import sample_member_tasks

    _, _, run_key, eval_key = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    found = []
    for generation in range(generations):
        _, task_key, _ = jax.random.split(jax.random.fold_in(run_key, generation), 3)
        members = sample_member_tasks(task_key, config, config.outer.population_size, config.outer.antithetic)
        for member_key in members.keys:
            found.append(member_key)
            for env_index in range(len(config.tasks.envs)):
                found.extend(jax.random.split(jax.random.fold_in(member_key, env_index), config.tasks.seeds_per_member))
        found.append(jax.random.fold_in(eval_key, generation))
    return np.asarray(found)


def test_judging_seeds_are_disjoint_from_every_meta_training_key():
    judging = np.concatenate([np.asarray(verdict.stream_keys(s, 64)) for s in verdict.STREAMS.values()])
    for seed in (0, 1, 2):
        config = MetaTrainConfig(seed=seed)
        trained = meta_training_keys(config, 30)
        assert not (trained[:, None] == judging[None]).all(-1).any()


def search(score, axes, bounds=None):
    bounds = bounds or {"lr": (1e-5, 0.1), "clip_eps": (0.05, 0.6), "update_epochs": (1, 16)}
    calls = []

    def score_cells(cells):
        calls.append(len(cells))
        return np.asarray([[score(c)] for c in cells])

    return verdict.search_grid(score_cells, axes, bounds), calls


AXES = {"lr": (0.001, 0.003, 0.01), "clip_eps": (0.1, 0.2, 0.3), "update_epochs": (2, 4), "anneal_lr": (False, True)}


def test_the_tuned_grid_extends_while_the_best_cell_is_on_an_edge():
    # Peak at lr 0.03, clip 0.4, 8 epochs: outside the starting grid on three axes.
    def score(cell):
        return -np.log(cell["lr"] / 0.03) ** 2 - 10 * (cell["clip_eps"] - 0.4) ** 2 - abs(np.log2(cell["update_epochs"] / 8))

    result, calls = search(score, AXES)
    best = result["best_per_group"][0]
    assert (best["lr"], best["clip_eps"], best["update_epochs"]) == (0.03, 0.4, 8)
    assert result["axes"]["lr"] == [0.001, 0.003, 0.01, 0.03, 0.09]
    assert result["axes"]["clip_eps"] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert result["axes"]["update_epochs"] == [2, 4, 8, 16]
    assert result["stopped_by_bound"] == {} and all(all(v) for v in result["interior"].values())
    assert calls[0] == 36 and sum(calls) == len(result["table"])  # every cell measured once
    table_best = max(result["table"], key=lambda row: row["scores"][0])
    assert {k: table_best[k] for k in verdict.AXES} == best


def test_an_interior_best_cell_leaves_the_grid_as_it_is():
    axes = {**AXES, "update_epochs": (2, 4, 8)}  # a two-value axis has no interior: its best is always on an edge
    result, calls = search(lambda c: -abs(np.log(c["lr"] / 0.003)) - abs(c["clip_eps"] - 0.2) - abs(c["update_epochs"] - 4), axes)
    assert calls == [54] and result["rounds"] == 1
    assert {k: list(v) for k, v in axes.items()} == result["axes"]


def test_the_tuned_grid_stops_at_its_bound_and_says_so():
    result, _ = search(lambda c: c["lr"] - c["clip_eps"], AXES, {"lr": (1e-5, 0.05), "clip_eps": (0.1, 0.6), "update_epochs": (2, 4)})
    best = result["best_per_group"][0]
    assert best["lr"] == 0.05 and best["clip_eps"] == 0.1  # the bounds, not further
    assert result["axes"]["lr"] == [0.001, 0.003, 0.01, 0.03, 0.05]
    assert result["stopped_by_bound"] == {"clip_eps": ["lower"], "lr": ["upper"], "update_epochs": ["lower"]}
    assert result["interior"]["lr"] == [False]


def test_a_group_where_every_cell_scores_alike_does_not_walk_the_grid_to_its_bounds():
    """No seed finished an episode (every score NaN), or a flat score: no best cell, so no extension from it."""
    for flat in (np.nan, 1.0):
        result = verdict.search_grid(lambda cells, flat=flat: np.full((len(cells), 1), flat), AXES,
                                     {"lr": (1e-5, 0.1), "clip_eps": (0.05, 0.6), "update_epochs": (1, 16)})
        assert result["rounds"] == 1 and result["informative"] == [False]
        assert result["axes"] == {k: list(v) for k, v in AXES.items()}
    # beside an informative group, the flat one leaves the informative group's search as it would be alone
    bounds = {"lr": (1e-5, 0.1), "clip_eps": (0.05, 0.6), "update_epochs": (1, 16)}
    both = verdict.search_grid(lambda cells: np.asarray([[np.nan, -abs(np.log(c["lr"] / 0.03))] for c in cells]), AXES, bounds)
    alone = verdict.search_grid(lambda cells: np.asarray([[-abs(np.log(c["lr"] / 0.03))] for c in cells]), AXES, bounds)
    assert both["informative"] == [False, True] and both["best_per_group"][1] == alone["best_per_group"][0]
    assert both["axes"] == alone["axes"] and both["rounds"] == alone["rounds"]
    # one scored cell is a start, not a tie: the search still extends from it (cells that did not score rank last)
    one = verdict.search_grid(lambda cells: np.asarray([[-abs(np.log(c["lr"] / 0.03))] for c in cells]),
                              {"lr": (0.01,), "clip_eps": (0.2,), "update_epochs": (4,), "anneal_lr": (False,)}, bounds)
    assert one["rounds"] > 1 and one["best_per_group"][0]["lr"] == 0.03


def test_each_group_gets_its_own_best_cell():
    def score_cells(cells):
        return np.asarray([[-abs(c["lr"] - 0.003), -abs(c["lr"] - 0.0011)] for c in cells])

    result = verdict.search_grid(score_cells, {**AXES, "clip_eps": (0.2,), "update_epochs": (4,), "anneal_lr": (False,)},
                                 {"lr": (1e-5, 0.1), "clip_eps": (0.2, 0.2), "update_epochs": (4, 4)})
    assert [b["lr"] for b in result["best_per_group"]] == [0.003, 0.001]
    assert result["axes"]["lr"][0] < 0.001  # the second group's edge extended the axis (and found 0.001 interior)


def test_a_changed_numerics_version_forces_a_re_measure(tmp_path, monkeypatch):
    config = MetaTrainConfig(ppo=tiny())
    calls = []

    def measure(config):
        return verdict.Store(tmp_path).get("ppo_scores", verdict._score_key(config, config.ppo, verdict.TEST_STREAM, 4, [3]),
                                           lambda: calls.append(1) or {"scores": [len(calls)]})

    assert measure(config) == {"scores": [1]} and measure(config) == {"scores": [1]}
    monkeypatch.setattr(verdict, "NUMERICS_VERSION", verdict.NUMERICS_VERSION + 1)
    assert measure(config) == {"scores": [2]}
    assert len(calls) == 2


def test_the_numerics_version_moves_with_the_code_that_makes_a_score():
    assert verdict.numerics_digest() == verdict.NUMERICS_DIGEST, (
        "the code that decides a stored PPO score changed (metarl.app.verdict.NUMERICS_SOURCES / NUMERICS_FUNCTIONS): if the "
        "change can move a score, bump metarl.app.verdict.NUMERICS_VERSION (every stored baseline is then re-measured); either "
        f"way set NUMERICS_DIGEST = {verdict.numerics_digest()!r}")


def test_the_numerics_digest_ignores_docstrings_and_comments_but_not_code():
    base = ast_text = "def f(x):\n    return x + 1\n"
    import ast

    canonical = verdict._canonical(ast.parse(base).body)
    assert verdict._canonical(ast.parse('def f(x):\n    """Adds one."""\n    # a comment\n    return x + 1\n').body) == canonical
    assert verdict._canonical(ast.parse("def f(x):\n    return x + 2\n").body) != canonical
    assert ast_text == base


@pytest.mark.parametrize(
    ("verdict_config", "message"),
    [(VerdictConfig(num_seeds=1), "verdict.num_seeds"), (VerdictConfig(tuned_clips=(1.5,)), "verdict.tuned_clips"),
     (VerdictConfig(tuned_lrs=()), "verdict.tuned_lrs"),
     (VerdictConfig(transfer_envs=("Acrobot-v1", "Acrobot-v1")), "verdict.transfer_envs: names an env twice")],
)
def test_bad_verdict_settings_name_the_field(verdict_config, message):
    with pytest.raises(ConfigError, match=message):
        MetaTrainConfig(ppo=tiny(), verdict=verdict_config).validate()


@pytest.mark.parametrize(("transfer", "message"), [
    (("CartPole-v1",), "verdict.transfer_envs: 'CartPole-v1' is a meta-training env"),
    (("Acrobot-v9",), "verdict.transfer_envs: unknown env 'Acrobot-v9'; known: .*Acrobot-v1"),
])
def test_a_bad_transfer_env_is_refused_before_anything_runs(transfer, message):
    from metarl.checks import validate

    with pytest.raises(ConfigError, match=message):
        validate(MetaTrainConfig(ppo=tiny(), verdict=VerdictConfig(transfer_envs=transfer)))


def small_verdict(**overrides) -> VerdictConfig:
    """Two cells, bounds pinned (the grid's extension is tested on its own): a cheap tuned PPO per env."""
    return VerdictConfig(num_seeds=4, selection_seeds=2, tuned_lrs=(0.01, 0.001), tuned_clips=(0.2,), tuned_epochs=(2,),
                         tuned_anneal=(False,), tuned_lr_bounds=(0.001, 0.01), tuned_clip_bounds=(0.2, 0.2),
                         tuned_epochs_bounds=(2, 2), **overrides)


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.manual  # minutes of CI time for what a default-tier or CI check already covers in part: run by hand (pytest -m slow)
def test_a_multi_env_run_is_judged_on_each_env_alone_and_on_an_unseen_one(tmp_path, capsys):
    """Per env: the slice of the whole verdict's scores, against that env's own tuned cells; transfer: the baselines a
    run meta-trained on that env alone compares against (the store shares them), with that env's own references."""
    from metarl.meta.run import run_meta_train

    envs = ("CartPole-v1", "Acrobot-v1")
    config = MetaTrainConfig(
        ppo=tiny(), tasks=TaskDistribution(envs=envs, reference_seeds=2), outer=ESConfig(population_size=4), num_generations=1,
        eval_seeds=0, verdict=small_verdict(transfer_envs=("MountainCar-v0",)), reference_store=str(tmp_path / "store"),
        out=str(tmp_path / "runs"))
    run_meta_train(config, ["metarl", "meta-train"])
    printed = capsys.readouterr().out
    run_dir = tmp_path / "runs" / config.run_name
    result = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert list(result["per_env"]) == list(envs)
    for e, env in enumerate(envs):
        part = result["per_env"][env]
        assert part["envs"] == [env] and part["candidate_scores"] == [result["candidate_scores"][e]]
        assert part["references"]["ppo"] == [result["references"]["ppo"][e]]
        for name in ("ppo", "tuned_ppo"):
            assert part["against"][name]["baseline_scores"] == [result["against"][name]["baseline_scores"][e]]
            assert part["against"][name]["family_size"] == 2
        tuned = result["against"]["tuned_ppo"]["config"]
        assert part["against"]["tuned_ppo"]["config"] == (tuned if "lr" in tuned else verdict.tuned_label({env: tuned[env]}))
        assert f"on {env} alone" in printed
        # Tuned PPO's cells are each env's own search, the one a run on that env alone reads from the store.
        alone = verdict.transfer_config(config, env)
        spec = [metarl_envs.make(env)]
        own = verdict.tuned_ppo(alone, spec, verdict.references_from_store(alone, spec, verdict.Store(config.reference_store)),
                                verdict.Store(config.reference_store))
        assert part["against"]["tuned_ppo"]["config"] == verdict.tuned_label(own["best"])
        assert part["against"]["tuned_ppo"]["grid"]["rounds"] == own["rounds"]
    transfer = result["transfer"]["MountainCar-v0"]
    assert transfer["envs"] == ["MountainCar-v0"] and transfer["seen_in_meta_training"] is False
    alone = verdict.transfer_config(config, "MountainCar-v0")
    measured = verdict.measure_baselines(alone)  # what a run on MountainCar-v0 alone compares against: all stored already
    for name in ("ppo", "tuned_ppo"):
        np.testing.assert_array_equal(np.asarray(transfer["against"][name]["baseline_scores"]), measured[name])
    references = json.loads(next((tmp_path / "store").glob("reference-MountainCar-v0-*.json")).read_text())["values"]
    assert transfer["references"]["ppo"] == [references["MountainCar-v0"]["ppo"]]
    assert "on MountainCar-v0 never seen in meta-training" in printed
    recomputed, mismatches = verdict.reprint(result)
    assert mismatches == []
    tampered = json.loads(json.dumps(result))
    tampered["per_env"]["Acrobot-v1"]["against"]["ppo"]["verdict"] = "tampered"
    tampered["transfer"]["MountainCar-v0"]["against"]["tuned_ppo"]["difference"]["iqm"] += 1.0
    assert sorted(verdict.reprint(tampered)[1]) == ["per_env.Acrobot-v1.ppo.verdict", "transfer.MountainCar-v0.tuned_ppo.difference"]


def test_family_members_are_the_hand_designed_entries_of_what_a_run_discovers():
    from metarl.config import CurriculumConfig, ShapingConfig

    plain = MetaTrainConfig()
    assert verdict.family_members(plain) == {}
    assert verdict.family_members(dataclasses.replace(plain, curriculum=CurriculumConfig(name="sec"))) == {}  # nothing discovered
    both = dataclasses.replace(plain, curriculum=CurriculumConfig(name="learned"), shaping=ShapingConfig(name="blend", heuristic="pd_good"))
    members = verdict.family_members(both)
    assert list(members) == ["curriculum_hardest", "curriculum_sec", "curriculum_plr", "curriculum_learnability",
                             "curriculum_learnability_weighted", "shaping_naive", "shaping_potential"]
    assert members["curriculum_plr"][1] == CurriculumConfig(name="plr")
    assert members["shaping_potential"][1] == ShapingConfig(name="potential", heuristic="pd_good")
    assert set(curricula_names()) - set(verdict.curricula.HAND_DESIGNED) == {"learned"}  # a new sampler must say which it is


def curricula_names():
    from metarl import curricula

    return curricula.names()


@pytest.mark.slow  # 10-20 s: two tiny trainings
@pytest.mark.heavy
def test_a_curriculum_member_reaches_the_baselines_learner(tmp_path):
    """PPO's scores with a hand-designed curriculum member are measured with that sampler (they differ from the
    uniform baseline's on the same seeds) and stored under their own key."""
    from metarl.config import CurriculumConfig

    config = MetaTrainConfig(ppo=tiny(num_steps=24), curriculum=CurriculumConfig(name="learned"),
                             tasks=TaskDistribution(envs=("CartPole-levels",), fitness="auc", normalize=False))
    specs = [metarl_envs.make("CartPole-levels")]
    store = verdict.Store(str(tmp_path))
    uniform = verdict.ppo_scores(config, specs, [3], verdict.VALIDATION_STREAM, 4, store=store)
    hardest = verdict.ppo_scores(config, specs, [3], verdict.VALIDATION_STREAM, 4, store=store, member=CurriculumConfig(name="hardest"))
    assert uniform.shape == hardest.shape == (1, 1, 4) and not np.array_equal(uniform, hardest)
    keys = [json.loads(p.read_text())["key"]["baseline_curriculum"] for p in tmp_path.glob("ppo_scores-*.json")]
    assert sorted(keys, key=str) == sorted(["uniform", {"name": "hardest", "kwargs": {}}], key=str)


@pytest.mark.slow  # 20-70 s: a meta-training run and four baselines
@pytest.mark.heavy
def test_a_discovered_shaping_is_judged_against_every_hand_designed_shaping(tmp_path, capsys):
    """A run that discovers a shaping faces PPO with none (the 'ppo' baseline), naive and potential shaping of its
    heuristic, on the same judging seeds, Holm over the three; the shaped baselines are stored apart from PPO's own."""
    from metarl.config import ShapingConfig
    from metarl.meta.run import run_meta_train

    config = MetaTrainConfig(
        objective="ppo", shaping=ShapingConfig(name="learned", heuristic="pd_bad", kwargs='{"hidden": 4, "init_aux_weight": 0.0}'),
        ppo=tiny(), tasks=TaskDistribution(reference_seeds=2), outer=ESConfig(population_size=4), num_generations=1, eval_seeds=0,
        verdict=VerdictConfig(num_seeds=4, tuned=False), reference_store=str(tmp_path / "store"), out=str(tmp_path / "runs"))
    run_meta_train(config, ["metarl", "meta-train"])
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "runs" / config.run_name / "summary.json").read_text())["verdict"]
    assert list(result["against"]) == ["ppo", "shaping_naive", "shaping_potential"]
    assert all(entry["family_size"] == 3 for entry in result["against"].values())
    assert result["against"]["shaping_naive"]["shaping"] == {"name": "naive", "heuristic": "pd_bad", "kwargs": "{}", "file": None}
    scores = {name: np.asarray(entry["baseline_scores"]) for name, entry in result["against"].items()}
    assert not np.array_equal(scores["shaping_naive"], scores["ppo"])  # the heuristic reached the baseline's learner
    shaped = [json.loads(p.read_text())["key"] for p in (tmp_path / "store").glob("ppo_scores-*.json")]
    assert sorted(key.get("baseline_shaping", {}).get("name", "none") for key in shaped) == ["naive", "none", "potential"]
    assert "ppo + learned shaping (pd_bad)" in printed and "against PPO, PPO + naive shaping (pd_bad), PPO + potential" in printed
    assert "PPO + naive shaping (pd_bad)" in printed and verdict.reprint(result)[1] == []
    from metarl.app.plots import shaping_report  # the report reads a learned shaping (not a blend's weights)

    report = json.loads(shaping_report(tmp_path / "runs" / config.run_name / "learned" / "shaping_learned.msgpack").read_text())
    assert [row["progress"] for row in report["over_progress"]] == [0.0, 0.25, 0.5, 0.75, 1.0] and "discount" not in report


@pytest.mark.heavy
def test_meta_train_ends_with_a_stored_verdict_against_ppo_and_tuned_ppo(tmp_path, capsys):
    from metarl.meta.run import run_meta_train

    config = MetaTrainConfig(
        ppo=tiny(), tasks=TaskDistribution(reference_seeds=2), outer=ESConfig(population_size=4), num_generations=1, eval_seeds=0,
        verdict=VerdictConfig(num_seeds=4, selection_seeds=2, tuned_lrs=(0.01, 0.001), tuned_clips=(0.2,), tuned_epochs=(2,),
                              tuned_anneal=(False,), tuned_lr_bounds=(0.001, 0.03), tuned_clip_bounds=(0.2, 0.3),
                              tuned_epochs_bounds=(2, 2)),
        reference_store=str(tmp_path / "store"), out=str(tmp_path / "runs"),
    )
    run_meta_train(config, ["metarl", "meta-train"])
    printed = capsys.readouterr().out
    run_dir = tmp_path / "runs" / config.run_name
    summary = json.loads((run_dir / "summary.json").read_text())
    result = summary["verdict"]
    assert set(result["against"]) == {"ppo", "tuned_ppo"} and result["stream"] == "test"
    # Paired on the test stream: the candidate's seeds are the stream's, and so are both baselines' (their stored
    # measurements are keyed by that stream and hold exactly the scores the verdict compared).
    test_keys = np.asarray(verdict.stream_keys(verdict.TEST_STREAM, 4))
    np.testing.assert_array_equal(np.asarray(result["seed_keys"], np.uint32), test_keys)
    stored = {p.name.split("-")[0]: [] for p in (tmp_path / "store").glob("*.json")}
    for path in (tmp_path / "store").glob("*.json"):
        stored[path.name.split("-")[0]].append(json.loads(path.read_text()))
    judged = [s for s in stored["ppo_scores"] if s["key"]["stream"] == verdict.TEST_STREAM]
    assert len(judged) == len(stored["ppo_scores"]) == 2 and all(s["key"]["num_seeds"] == 4 for s in judged)
    for name in ("ppo", "tuned_ppo"):
        assert any(s["values"]["scores"] == result["against"][name]["baseline_scores"] for s in judged), name
    # ... and apart from every key meta-training drew.
    trained = meta_training_keys(config, config.num_generations)
    assert not (trained[:, None] == test_keys[None]).all(-1).any()
    # Tuned PPO: the chosen cell is the best of the final (extended, bounded) table, picked on the selection stream.
    (tuned,) = stored["tuned_ppo"]
    assert tuned["key"]["stream"] == verdict.SELECTION_STREAM and tuned["key"]["numerics"] == verdict.NUMERICS_VERSION
    column = "iqm CartPole-v1 N=3"
    best_row = max(tuned["values"]["table"], key=lambda row: row[column])
    assert result["against"]["tuned_ppo"]["config"] == {k: best_row[k] for k in verdict.AXES}
    assert tuned["values"]["grid"]["lr"] == [0.001, 0.01, 0.03] and tuned["values"]["grid"]["clip_eps"] in ([0.2], [0.2, 0.3])
    assert all("measured_on" in s and "measured_by" in s for kind in stored.values() for s in kind)
    for entry in result["against"].values():
        assert entry["verdict"] == verdict.verdict_word(entry["difference"]["ci"], entry["margin"])
        assert entry["margin"] == config.verdict.equivalence_margin and entry["family_size"] == 2
        assert np.asarray(entry["baseline_scores"]).shape == (1, 1, 4)
    assert verdict.reprint(result)[1] == []  # the stored verdict is what its stored scores say
    # The trace over the run's history, on the verdict's own seeds, ends where the verdict is (same scores, same baselines).
    traced = verdict.trace_history(config, run_dir, 4, stream="test")
    assert [row["generation"] for row in traced["generations"]] == [1]
    assert traced["generations"][-1]["learned_iqm"] == pytest.approx(result["against"]["ppo"]["candidate"]["iqm"], rel=1e-6)
    for name in ("ppo", "tuned_ppo"):
        assert traced["baseline_iqm"][name] == pytest.approx(result["against"][name]["baseline"]["iqm"], rel=1e-6)
    above = traced["generations"][-1]["learned_iqm"] > traced["baseline_iqm"]["tuned_ppo"]
    assert traced["first_generation_above_tuned_ppo"] == (1 if above else None)
    assert "test seeds" in printed and "tuned PPO" in printed and "P(learned > baseline)" in printed
    assert sorted(stored) == ["ppo_scores", "reference", "tuned_ppo"]
    # A rerun of the finished command keeps the stored verdict and measures nothing again.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}
    run_meta_train(config, ["metarl", "meta-train"], verbose=False)
    assert json.loads((run_dir / "summary.json").read_text())["verdict"] == result
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}
    # A rerun that asks for another judging stream judges again (instead of reprinting the stored verdict), and a
    # validation-stream verdict measures its baselines on the validation seeds (a design choice's stream).
    validation = dataclasses.replace(config, verdict=dataclasses.replace(config.verdict, stream="validation"))
    run_meta_train(validation, ["metarl", "meta-train"], verbose=False)
    rejudged = json.loads((run_dir / "summary.json").read_text())
    assert rejudged["verdict"]["stream"] == "validation"
    # ... and keeps the verdict it replaced (one entry: the reprinting rerun above added none), which
    # `metarl verdict` recomputes from its own scores beside the new one.
    assert rejudged["earlier_verdicts"] == [result]
    from metarl.app.reprint import reprint_path

    text, mismatches = reprint_path(run_dir)
    assert mismatches == [] and "earlier verdict 1, on the test stream" in text and text.count("tuned PPO") >= 2
    streams = sorted(json.loads(p.read_text())["key"]["stream"] for p in (tmp_path / "store").glob("ppo_scores-*.json"))
    assert streams.count(verdict.VALIDATION_STREAM) == 2 and streams.count(verdict.TEST_STREAM) == 2


@pytest.mark.heavy
def test_eval_compares_objectives_on_the_named_stream(tmp_path, monkeypatch):
    from metarl.app import evaluation
    from metarl.app.evaluation import EvalConfig, run_eval

    drawn = []
    original = verdict.stream_keys
    for module in (verdict, evaluation):  # each module that draws keys
        monkeypatch.setattr(module, "stream_keys", lambda stream, n: drawn.append(stream) or original(stream, n))
    config = EvalConfig(objectives=("ppo", "dpo"), envs=("CartPole-v1",), lifetimes=(3,), num_seeds=4, ppo=tiny(),
                        verdict_against="ppo", heldout="validation", out=str(tmp_path))
    run_dir = run_eval(config, ["metarl", "eval"], verbose=False)
    assert set(drawn) == {verdict.VALIDATION_STREAM}
    rows = json.loads((run_dir / "verdict.json").read_text())
    assert [(r["objective"], r["baseline_objective"], r["lifetime"], r["stream"]) for r in rows] == [("dpo", "ppo", 3, "validation")]
    assert rows[0]["verdict"] == verdict.verdict_word(rows[0]["difference"]["ci"], rows[0]["margin"])
    scores = np.load(run_dir / "eval.npz")["scores"]
    assert rows[0]["margin"] == pytest.approx(0.05 * abs(float(iqm(scores[0, 0, 0]))))
    assert rows[0]["verdict_holm"] in verdict.VERDICTS and rows[0]["family_size"] == 1
    assert "| dpo |" in (run_dir / "summary.md").read_text()
    assert reprint_path(run_dir)[1] == []
    with pytest.raises(ConfigError, match="verdict_against"):
        EvalConfig(objectives=("ppo", "dpo"), verdict_against="lpo", heldout="test").validate()
    with pytest.raises(ConfigError, match="heldout"):  # a verdict names its stream
        EvalConfig(objectives=("ppo", "dpo"), verdict_against="ppo").validate()


def test_verdict_table_against_the_best_hand_designed_picks_the_baseline_per_env_and_lifetime():
    """With a mask of hand-designed variants, each learned variant is compared, per env and lifetime, against the
    hand-designed one with the highest IQM there; hand-designed variants are never candidates."""
    from metarl.app.evaluation import verdict_table

    rng = np.random.default_rng(0)
    scores = rng.normal(0.0, 0.1, size=(3, 1, 2, 16))  # (variant, env, lifetime, seed): none, naive, learned
    scores[0, 0, 0] += 10.0  # 'none' is the best hand-designed at the first lifetime ...
    scores[1, 0, 1] += 10.0  # ... 'naive' at the second
    scores[2] += 10.0
    rows = verdict_table(scores, ["none", "naive", "learned"], (True, True, False), ["CartPole-v1"], [8, 16], stream="validation")
    assert [(r["objective"], r["baseline_objective"], r["lifetime"]) for r in rows] == [("learned", "none", 8), ("learned", "naive", 16)]
    assert all(r["family_size"] == 2 for r in rows)
    np.testing.assert_allclose(rows[1]["baseline"]["iqm"], iqm(scores[1, 0, 1]))
    everyone = verdict_table(scores, ["none", "naive", "learned"], 0, ["CartPole-v1"], [8, 16])  # an index: all against 'none'
    assert [r["objective"] for r in everyone] == ["naive", "naive", "learned", "learned"]


def success_scores(successes: int, seed: int, num_seeds: int = 128) -> np.ndarray:
    """A success-like score: 1 on ``successes`` of the seeds (a held-out goal reached), 0 on the rest."""
    scores = np.zeros(num_seeds)
    scores[np.random.default_rng(seed).choice(num_seeds, successes, replace=False)] = 1.0
    return scores


def test_the_mean_statistic_sees_a_success_rate_that_the_iqm_cannot():
    """Fewer than a quarter of the seeds succeed on either side: the IQM is 0 on both whatever the rates, so an IQM
    verdict cannot tell 30 of 128 from 2 of 128. The mean can; the result names its statistic, keeps the IQM beside
    it, and Holm's words take their sign from the mean."""
    candidate, baseline = success_scores(30, 0), success_scores(2, 1)
    by_iqm = verdict.paired_comparison(candidate, baseline)
    assert by_iqm["verdict"] == "inconclusive" and by_iqm["difference"]["iqm"] == 0.0 and "statistic" not in by_iqm
    by_mean = verdict.paired_comparison(candidate, baseline, statistic="mean")
    assert by_mean["statistic"] == "mean" and by_mean["verdict"] == "better" and by_mean["difference"]["iqm"] == 0.0
    np.testing.assert_allclose(by_mean["difference"]["value"], 28 / 128)
    np.testing.assert_allclose([by_mean["candidate"]["value"], by_mean["baseline"]["value"]], [30 / 128, 2 / 128])
    assert 0.0 < by_mean["difference"]["ci"][0] < 28 / 128 < by_mean["difference"]["ci"][1]
    assert verdict.holm_verdicts([by_mean]) == ["better"]
    assert verdict.holm_verdicts([verdict.paired_comparison(baseline, candidate, statistic="mean")]) == ["worse"]
    with pytest.raises(ValueError, match="statistic"):
        verdict.paired_comparison(candidate, baseline, statistic="median")


def test_verdict_table_ranks_and_judges_by_its_statistic_and_reprints_with_it(tmp_path):
    """'none' has the higher IQM and 'naive' the higher mean (three tenths of its seeds succeed): best_hand_designed
    follows the statistic it is given, the table says which, and `metarl verdict` recomputes the stored table only with
    the statistic its config names."""
    from metarl.app.evaluation import verdict_markdown, verdict_table

    scores = np.stack([np.full(128, 0.2), success_scores(38, 2), success_scores(60, 3)])[:, None, None]  # (variant, env, N, seed)
    labels, hand = ["none", "naive", "learned"], (True, True, False)
    by_iqm = verdict_table(scores, labels, hand, ["Maze-pocket"], [400], stream="validation")
    by_mean = verdict_table(scores, labels, hand, ["Maze-pocket"], [400], stream="validation", statistic="mean")
    assert by_iqm[0]["baseline_objective"] == "none" and by_mean[0]["baseline_objective"] == "naive"
    np.testing.assert_allclose(by_mean[0]["margin"], 0.05 * 38 / 128)  # the margin is relative to the baseline's mean
    assert "| mean [95% CI] |" in verdict_markdown(by_mean) and "| IQM [95% CI] |" in verdict_markdown(by_iqm)
    folder = tmp_path / "eval"
    folder.mkdir()
    np.savez(folder / "eval.npz", scores=scores, objectives=np.array(labels), envs=np.array(["Maze-pocket"]),
             lifetimes=np.array([400]), hand_designed=np.array(hand))
    (folder / "verdict.json").write_text(json.dumps(by_mean))
    config = {"verdict_against": "best_hand_designed", "heldout": "validation", "equivalence_margin": 0.05}
    (folder / "config.json").write_text(json.dumps({"config": {**config, "statistic": "mean"}}))
    assert reprint_path(folder)[1] == []
    (folder / "config.json").write_text(json.dumps({"config": config}))  # an IQM table would not give the stored one
    assert reprint_path(folder)[1] != []


def test_the_statistics_a_config_accepts_are_the_ones_stats_computes():
    from metarl.config import STATISTIC_NAMES
    from metarl.stats import STATISTIC_LABELS, STATISTICS

    assert STATISTIC_NAMES == tuple(STATISTICS) == tuple(STATISTIC_LABELS)


def test_eval_names_the_statistic_field_when_it_is_not_one_it_knows():
    from metarl.app.evaluation import EvalConfig

    with pytest.raises(ConfigError, match="statistic.*iqm, mean"):
        EvalConfig(objectives=("ppo", "dpo"), verdict_against="ppo", heldout="validation", statistic="median").validate()


@pytest.mark.slow  # 8-19 s: the default tier is at its budget
@pytest.mark.heavy
def test_eval_judges_a_learned_shaping_against_the_best_hand_designed_shaping(tmp_path):
    """Shapings are variants a verdict can name: a learned shaping at its zero start (heuristic weight 0) trains
    seed for seed as 'none', and best_hand_designed compares it with the better of none and naive, recomputably."""
    from metarl import components
    from metarl.app.evaluation import EvalConfig, run_eval
    from metarl.config import ShapingConfig

    shaping = ShapingConfig(name="learned", heuristic="pd_bad", kwargs='{"init_aux_weight": 0.0, "hidden": 4}')
    built = components.build_shaping(shaping, metarl_envs.make("CartPole-v1"), 0.99, jax.random.PRNGKey(1))
    path = components.save(tmp_path / "run" / "learned" / "shaping_learned.msgpack", "shaping", shaping, built[2], {})
    config = EvalConfig(objectives=("ppo",), shapings=("none", "naive", str(path)), heuristic="pd_bad", envs=("CartPole-v1",),
                        lifetimes=(2,), num_seeds=4, ppo=tiny(), verdict_against="best_hand_designed", heldout="validation",
                        out=str(tmp_path), name="eval")
    assert config.validate().labels() == ("ppo", "ppo + naive", "ppo + shaping_learned (run)")
    run_dir = run_eval(config, ["metarl", "eval"], verbose=False)
    data = np.load(run_dir / "eval.npz")
    np.testing.assert_array_equal(data["scores"][2], data["scores"][0])
    assert list(data["hand_designed"]) == [True, True, False]
    rows = json.loads((run_dir / "verdict.json").read_text())
    best = "ppo" if iqm(data["scores"][0, 0, 0]) >= iqm(data["scores"][1, 0, 0]) else "ppo + naive"
    assert [(r["objective"], r["baseline_objective"]) for r in rows] == [("ppo + shaping_learned (run)", best)]
    assert reprint_path(run_dir)[1] == []
    for against in ("ppo + potential", "best_hand_designed"):  # not a variant here; no learned variant to judge
        with pytest.raises(ConfigError, match="verdict_against"):
            dataclasses.replace(config, shapings=("none", "naive"), verdict_against=against).validate()
    assert dataclasses.replace(config, verdict_against="ppo + naive").validate().baseline() == 1


@pytest.mark.slow  # an end-to-end check of 26-37 s: CI's slow step runs it
@pytest.mark.heavy
def test_eval_tunes_ppo_per_env_and_lifetime_and_pairs_it_with_every_objective(tmp_path):
    """--tuned-ppo: one search per env and lifetime on the selection stream, its cell trained on the eval's own judging
    seeds. A one-cell grid at PPO's own settings gives PPO's scores seed for seed (the same seeds, the same training),
    and a second eval reads the searches and the scores from the store instead of training again."""
    from metarl.app.evaluation import EvalConfig, run_eval
    from metarl.config import TuningConfig

    ppo = tiny(lr=0.01, anneal_lr=False)
    own_cell = TuningConfig(selection_seeds=2, lrs=(0.01,), clips=(0.2,), epochs=(ppo.update_epochs,), anneal=(False,), extend=False)
    config = EvalConfig(objectives=("ppo",), envs=("CartPole-v1",), lifetimes=(1, 2), num_seeds=4, ppo=ppo, score="auc",
                        heldout="validation", tuned_ppo=True, tuning=own_cell, verdict_against="tuned_ppo",
                        reference_store=str(tmp_path / "store"), out=str(tmp_path), name="first")
    run_dir = run_eval(config, ["metarl", "eval"], verbose=False)
    data = np.load(run_dir / "eval.npz")
    assert list(data["objectives"]) == ["ppo", "tuned_ppo"]
    np.testing.assert_allclose(data["scores"][1], data["scores"][0], rtol=1e-5)
    rows = json.loads((run_dir / "verdict.json").read_text())
    assert [(r["objective"], r["baseline_objective"], r["lifetime"]) for r in rows] == [("ppo", "tuned_ppo", 1), ("ppo", "tuned_ppo", 2)]
    cells = json.loads((run_dir / "tuned_ppo.json").read_text())["cells"]
    assert cells == {"CartPole-v1": {n: {"lr": 0.01, "clip_eps": 0.2, "update_epochs": ppo.update_epochs, "anneal_lr": False}
                                     for n in ("1", "2")}}
    assert "Tuned PPO's cells" in (run_dir / "summary.md").read_text()
    searches = [json.loads(p.read_text())["key"] for p in (tmp_path / "store").glob("tuned_ppo-*.json")]
    assert sorted(key["lifetimes"] for key in searches) == [[1], [2]]  # each lifetime searched alone
    assert {key["stream"] for key in searches} == {verdict.SELECTION_STREAM}
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}
    again = run_eval(dataclasses.replace(config, name="again"), ["metarl", "eval"], verbose=False)
    assert stamps == {p: p.stat().st_mtime_ns for p in (tmp_path / "store").glob("*.json")}  # read, nothing measured
    np.testing.assert_array_equal(np.load(again / "eval.npz")["scores"][1], data["scores"][1])
    with pytest.raises(ConfigError, match="heldout"):
        dataclasses.replace(config, heldout="none", verdict_against="").validate()
    with pytest.raises(ConfigError, match="tuning.lrs"):
        dataclasses.replace(config, tuning=TuningConfig(lrs=())).validate()


BENCHMARK_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
STORED_VERDICTS = sorted(p.parent for p in BENCHMARK_RESULTS.glob("discovery-*/*/summary.json"))


@pytest.mark.parametrize("run_dir", STORED_VERDICTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_committed_discovery_verdict_reprints_from_its_stored_scores(run_dir):
    text, mismatches = reprint_path(run_dir)
    assert mismatches == []
    stored = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert stored["stream"] == "test" and "tuned PPO" in text


DISCOVERY_REPORTS = sorted((Path(__file__).resolve().parent.parent / "benchmarks" / "results").glob("discovery-*.json"))


@pytest.mark.parametrize("path", DISCOVERY_REPORTS, ids=lambda p: p.stem)
def test_every_discovery_benchmark_json_agrees_with_its_run_folders(path):
    """Each benchmark report's verdicts (whole, per env, transfer) and success counts are those of its kept run folders."""
    report = json.loads(path.read_text())
    runs = sorted(path.with_suffix("").glob("*/summary.json"))
    assert len(runs) == len(report["runs"]) >= 3
    for entry, run in zip(report["runs"], runs, strict=True):
        stored = json.loads(run.read_text())["verdict"]
        assert run.parent.name == f"discovery_s{entry['seed']}"
        parts = [(entry, stored)] + [(entry[kind][env], stored[kind][env])
                                     for kind in ("per_env", "transfer") for env in entry.get(kind, {})]
        for flat, verdict_part in parts:
            for name in ("ppo", "tuned_ppo"):
                against = verdict_part["against"][name]
                assert flat[name]["verdict"] == against["verdict"] and flat[name]["learned_iqm"] == against["candidate"]["iqm"]
                assert flat[name]["baseline_iqm"] == against["baseline"]["iqm"]
    summary = report["summary"]
    for name in ("ppo", "tuned_ppo"):
        key = "better_than_same_settings_ppo" if name == "ppo" else "better_than_tuned_ppo"
        better = sum(e[name]["verdict"] == "better" for e in report["runs"])
        assert summary[key]["better"] == better and summary[key]["rate_wilson95"] == verdict.wilson_interval(better, len(runs))
    for kind in ("per_env", "transfer"):
        for env, counts in summary.get(kind, {}).items():
            for name, count in counts.items():
                assert count["better"] == sum(e[kind][env][name]["verdict"] == "better" for e in report["runs"])


def test_the_discovery_benchmark_reads_a_stored_command_as_the_shell_wrote_it():
    """A run's stored command quotes an --objective-kwargs JSON object with spaces; the benchmark's trace and its
    --rebuild parse it back into the same config (split on spaces, the JSON fell apart and tyro refused it)."""
    import importlib.util
    import shlex

    from metarl.app.meta_train import parse_meta_train_config

    spec = importlib.util.spec_from_file_location("discovery_benchmark", BENCHMARK_RESULTS.parent / "discovery.py")
    discovery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(discovery)
    flags = ["--objective", "lpo", "--objective-kwargs", '{"learned_step": true, "step_gain": 10.0}', "--seed", "2"]
    parsed = discovery.meta_train_flags(shlex.join(["metarl", "meta-train", *flags]))
    assert parsed == flags
    config = parse_meta_train_config(parsed)
    assert config.objective_kwargs_dict() == {"learned_step": True, "step_gain": 10.0} and config.seed == 2
    with pytest.raises(ValueError, match="meta-train"):
        discovery.meta_train_flags("metarl eval --objectives ppo")


def test_the_verdict_command_reprints_flags_a_tampered_file_and_rewrites_it(tmp_path, capsys):
    import shutil

    from metarl.app import cli

    source = STORED_VERDICTS[0]
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    assert cli.main(["metarl", "verdict", str(run_dir)]) == 0
    assert "BETTER" in capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["verdict"]["against"]["ppo"]["difference"]["iqm"] += 0.5  # a headline that its scores do not give
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert cli.main(["metarl", "verdict", str(run_dir)]) == 1
    assert "ppo.difference" in capsys.readouterr().err
    assert cli.main(["metarl", "verdict", "--rewrite", str(run_dir)]) == 0
    assert cli.main(["metarl", "verdict", str(run_dir)]) == 0
    assert cli.main(["metarl", "verdict", str(tmp_path / "nothing")]) == 2
    assert "neither a meta-train run" in capsys.readouterr().err
    assert cli.main(["metarl", "verdict"]) == 2 and cli.main(["metarl", "verdict", "--help"]) == 0


def test_a_meta_train_verdict_by_the_mean_reprints_by_the_mean_and_a_changed_statistic_is_judged_again():
    from metarl.config import VerdictConfig

    stored = json.loads((STORED_VERDICTS[0] / "summary.json").read_text())["verdict"]
    config = VerdictConfig(num_seeds=len(stored["seed_keys"]), stream=stored["stream"], transfer_envs=tuple(stored.get("transfer", {})))
    assert verdict.judged_as_asked(stored, config)
    assert not verdict.judged_as_asked(stored, dataclasses.replace(config, statistic="mean"))  # a sweep judges it again
    by_mean, mismatches = verdict.reprint({**stored, "statistic": "mean"})
    assert mismatches  # the same scores, another statistic: other CIs
    for row in by_mean["against"].values():
        assert row["statistic"] == "mean" and row["candidate"]["value"] == row["candidate"]["mean"]
        np.testing.assert_allclose(row["difference"]["value"], row["candidate"]["mean"] - row["baseline"]["mean"])
        assert row["candidate"]["ci"][0] <= row["candidate"]["mean"] <= row["candidate"]["ci"][1]
    assert verdict.reprint(by_mean)[1] == []
    assert " mean " in verdict.describe(by_mean, "learned") and " IQM " in verdict.describe(stored, "learned")
    with pytest.raises(ConfigError, match="verdict.statistic"):
        VerdictConfig(statistic="median").validate()


STORED_STUDY_VERDICTS = sorted({p.parent for p in (Path(__file__).resolve().parent.parent / "results").glob("*/*/verdict.json")}
                               | {p.parent for p in (Path(__file__).resolve().parent.parent / "results").glob("*/*/summary.json")
                                  if "verdict" in json.loads(p.read_text())})


@pytest.mark.parametrize("run_dir", STORED_STUDY_VERDICTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_stored_study_verdict_reprints_from_its_stored_scores(run_dir):
    assert reprint_path(run_dir)[1] == []


def test_eval_from_the_cli_names_its_stream_before_anything_runs(tmp_path, capsys, monkeypatch):
    from metarl.app import cli, evaluation

    ran = []
    monkeypatch.setattr(evaluation, "_evaluate_and_write", lambda config, run_dir, verbose, loaded: ran.append(config) or run_dir)
    common = ["metarl", "eval", "--objectives", "ppo", "dpo", "--lifetimes", "3", "--num-seeds", "2", "--out", str(tmp_path)]
    assert cli.main([*common, "--verdict-against", "ppo"]) == 2
    error = capsys.readouterr().err
    assert "heldout" in error and "--heldout validation" in error and "--heldout test" in error
    assert not list(tmp_path.iterdir())  # refused before the run folder was made
    with pytest.raises(SystemExit) as refused:  # tyro refuses a name that is not a judging stream
        cli.main([*common, "--verdict-against", "ppo", "--heldout", "selection"])
    assert refused.value.code == 2 and "validation" in capsys.readouterr().err
    assert cli.main([*common, "--verdict-against", "ppo", "--heldout", "test", "--name", "t"]) == 0
    assert cli.main([*common, "--heldout", "validation", "--name", "v"]) == 0
    assert [(c.heldout, c.verdict_against) for c in ran] == [("test", "ppo"), ("validation", "")]


def test_an_interrupted_grid_search_resumes_with_the_cells_it_measured():
    def score(cell):
        return -np.log(cell["lr"] / 0.03) ** 2 - abs(np.log2(cell["update_epochs"] / 4))

    straight, calls = search(score, AXES)
    kept = []

    class Stop(Exception):
        pass

    def stop_after_first_round(cells):
        kept.append(cells)
        raise Stop

    bounds = {"lr": (1e-5, 0.1), "clip_eps": (0.05, 0.6), "update_epochs": (1, 16)}
    with pytest.raises(Stop):
        verdict.search_grid(lambda cells: np.asarray([[score(c)] for c in cells]), AXES, bounds, after_round=stop_after_first_round)
    assert len(kept[0]) == 36
    again = []
    resumed = verdict.search_grid(lambda cells: again.append(len(cells)) or np.asarray([[score(c)] for c in cells]), AXES, bounds,
                                  measured_before=kept[0])
    assert sum(again) == sum(calls) - 36  # only the cells the first search had not measured
    assert resumed["table"] == straight["table"] and resumed["best_per_group"] == straight["best_per_group"]


def test_the_readme_quotes_the_verdict_of_the_stored_default_run():
    """The README's verdict block is what `metarl verdict` prints for the stored run 0 of the discovery benchmark
    (the README's first command with its defaults), line for line."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    text, mismatches = reprint_path(BENCHMARK_RESULTS / "discovery-cpu" / "discovery_s0")
    assert mismatches == []
    printed = text.splitlines()[1:]  # after the folder's name
    assert "\n".join(printed) in readme
    config = json.loads((BENCHMARK_RESULTS / "discovery-cpu" / "discovery_s0" / "config.json").read_text())
    defaults = json.loads(json.dumps(dataclasses.asdict(VerdictConfig())))
    stored = config["config"]["verdict"]  # a field added since the run is at its default there
    assert config["config"]["seed"] == 0 and set(stored) <= set(defaults) and {**defaults, **stored} == defaults
