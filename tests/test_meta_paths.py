"""Meta-training paths no other test runs: meta-gradients in a sweep and with a verdict, LPG-style target
objectives discovered by ES, and the last_k_mean fitness against a hand computation on a tiny run."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from metarl import objectives
from metarl.config import STATISTIC_NAMES, ESConfig, MetaTrainConfig, PPOConfig, TaskDistribution, VerdictConfig
from metarl.errors import ConfigError
from metarl.meta.run import build_problem, run_meta_train
from metarl.meta.tasks import References
from metarl.stats import STATISTICS

LEARNED_TARGET = [name for name in objectives.names()
                  if objectives.make(name).targets is not None and jax.tree.leaves(objectives.make(name).init(jax.random.PRNGKey(0)))]

# A meta-gradient run of 2 steps, stored with a verdict on 2 seeds against PPO and a one-cell tuned PPO.
METAGRAD_SWEEP = """
command = "meta-train"
name = "metagrad_s{seed}"
[base]
objective = "ta_lpo"
objective_kwargs = '{"offset": 0.0}'
outer = { name = "metagrad", num_agents = 2, truncation = 2 }
num_generations = 2
chunk_size = 1
eval_seeds = 0
reference_store = ""
ppo = { num_envs = 4, num_steps = 8, total_timesteps = 96, update_epochs = 2, num_minibatches = 2, hidden_sizes = [8] }
tasks = { normalize = false }
[base.verdict]
num_seeds = 2
selection_seeds = 2
tuned_lrs = [0.01]
tuned_clips = [0.2]
tuned_epochs = [2]
tuned_anneal = [false]
tuned_extend = false
"""


@pytest.mark.slow  # an end-to-end check of 26-37 s: CI's slow step runs it
@pytest.mark.heavy
def test_meta_gradients_run_in_a_sweep_and_end_with_a_verdict(tmp_path):
    from metarl.app.sweep import run_sweep
    from metarl.io.results import read_index

    path = tmp_path / "metagrad.toml"
    path.write_text(METAGRAD_SWEEP)
    out = tmp_path / "results"
    sweep = run_sweep(path, out=str(out), plot=False, verbose=False)
    assert [run.config.outer.name for run in sweep.runs] == ["metagrad"]
    assert [(r["run"], r["status"]) for r in read_index(out / "index.csv")] == [("metagrad_s0", "complete")]
    run_dir = out / "metagrad_s0"
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored["config"]["outer"] == {"name": "metagrad", **stored["config"]["outer"]} and stored["identity"]["outer"] == "metagrad"
    assert stored["config"]["outer"]["truncation"] == 2
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [0, 1] and all(np.isfinite(r["meta_loss"]) for r in rows)
    verdict = json.loads((run_dir / "summary.json").read_text())["verdict"]
    assert set(verdict["against"]) == {"ppo", "tuned_ppo"}
    candidate = np.asarray(verdict["candidate_scores"])
    assert candidate.shape[0] == 1 and candidate.shape[-1] == 2 and np.isfinite(candidate).all()  # 1 env, 2 seeds
    for name, comparison in verdict["against"].items():
        assert np.asarray(comparison["baseline_scores"]).shape == candidate.shape, name
        assert isinstance(comparison["verdict"], str), name
    assert (run_dir / "learned" / "ta_lpo.msgpack").is_file()


@pytest.mark.heavy
@pytest.mark.parametrize("name", LEARNED_TARGET)
def test_target_objectives_are_meta_trained_by_es(name, tmp_path):
    """LPG and TA-LPG (a learned backward net emitting the agent's targets) discovered by ES on the LPG grid
    worlds: one generation of 4 members, exported as a learned file that train and eval can load. Without antithetic
    pairs every member has its own task, so the fitness values are not tied (a pair's tie moves nothing)."""
    # 6 updates of 20 steps: every grid-world episode (at most 100 steps) ends within the lifetime; a member whose
    # runs finish no episode has no return to score (NaN), and is counted non-finite like a diverged one.
    ppo = PPOConfig(num_envs=4, num_steps=20, total_timesteps=4 * 20 * 6, update_epochs=1, num_minibatches=1, hidden_sizes=(8,))
    config = MetaTrainConfig(objective=name, ppo=ppo, tasks=TaskDistribution(envs=("GridWorld-train",), normalize=False),
                             outer=ESConfig(population_size=4, antithetic=False), num_generations=1, chunk_size=1,
                             eval_seeds=0, verdict=VerdictConfig(num_seeds=0), reference_store="", out=str(tmp_path), name=name)
    summary = run_meta_train(config, verbose=False)
    row = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
    assert row["nonfinite_members"] == 0 and np.isfinite(row["fitness_mean"]) and np.isfinite(row["score/GridWorld-train"])
    loaded, params, kwargs = objectives.load(summary["learned_file"])
    assert loaded.name == name and loaded.targets is not None
    initial = build_problem(config).meta_params.objective
    pairs = list(zip(jax.tree.leaves(initial), jax.tree.leaves(params), strict=True))
    assert all(np.isfinite(b).all() for _, b in pairs)
    assert any(not np.array_equal(a, b) for a, b in pairs), "ES did not move the meta-parameters"


def test_last_k_mean_fitness_is_the_mean_of_the_last_k_returns_of_the_lifetime():
    """A member's last_k_mean fitness (lifetime N = 5 of a 6-update scan, k = 3, 2 seeds) equals the mean over
    its seeds of the mean return at updates N-k .. N-1 of the same runs, computed here by hand."""
    from metarl.inner import level_task, make_train
    from metarl.meta.tasks import make_member_evaluator

    lifetime, k, seeds = 5, 3, 2
    config = MetaTrainConfig(ppo=tiny(total_timesteps=4 * 16 * 6), outer=ESConfig(population_size=2), verdict=VerdictConfig(num_seeds=0),
                             tasks=TaskDistribution(normalize=False, fitness="last_k_mean", last_k=k, seeds_per_member=seeds))
    problem = build_problem(config)
    spec = problem.env_specs[0]
    evaluate = make_member_evaluator(config, problem.objective, problem.env_specs, seeds, problem.components)
    train = make_train(config.ppo, spec, problem.objective)
    references = References(jnp.zeros(1), jnp.ones(1))

    def fitness_and_returns(meta_params, key):
        fitness, raw = evaluate(meta_params, jnp.int32(lifetime), key, references)
        seed_keys = jax.random.split(jax.random.fold_in(key, 0), seeds)  # the evaluator's keys for env 0
        output = jax.vmap(lambda s: train(meta_params, level_task(spec, lifetime, s), s))(seed_keys)
        return fitness, raw, output.metrics["episode_return"]

    fitness, raw, returns = jax.jit(fitness_and_returns)(problem.meta_params, jax.random.PRNGKey(3))
    returns = np.asarray(returns, np.float64)
    assert returns.shape == (seeds, 6) and np.isnan(returns[:, lifetime:]).all()  # past N: masked
    by_hand = np.mean([np.nanmean(returns[s, lifetime - k:lifetime]) for s in range(seeds)])
    np.testing.assert_allclose(float(fitness), by_hand, rtol=1e-6)
    np.testing.assert_allclose(float(raw[0]), by_hand, rtol=1e-6)
    # the window matters: neither the final return nor the whole-lifetime mean gives this number
    assert not np.isclose(by_hand, np.mean(returns[:, lifetime - 1]))
    assert not np.isclose(by_hand, np.mean([np.nanmean(returns[s, :lifetime]) for s in range(seeds)]))


@pytest.mark.parametrize("statistic", STATISTIC_NAMES)
def test_seed_statistic_aggregates_a_members_seeds_as_the_verdict_would(statistic):
    """A member's fitness with ``tasks.seed_statistic`` equals that statistic (metarl.stats, what the verdict
    compares) of its 4 seeds' AUCs computed by hand from the same runs; the IQM is not their mean."""
    from metarl.inner import level_task, make_train
    from metarl.meta.tasks import make_member_evaluator

    lifetime, seeds = 6, 4
    config = MetaTrainConfig(ppo=tiny(total_timesteps=4 * 16 * 6), outer=ESConfig(population_size=2), verdict=VerdictConfig(num_seeds=0),
                             tasks=TaskDistribution(normalize=False, seeds_per_member=seeds, seed_statistic=statistic)).validate()
    problem = build_problem(config)
    spec = problem.env_specs[0]
    evaluate = make_member_evaluator(config, problem.objective, problem.env_specs, seeds, problem.components)
    train = make_train(config.ppo, spec, problem.objective)

    def fitness_and_returns(meta_params, key):
        fitness, _ = evaluate(meta_params, jnp.int32(lifetime), key, References(jnp.zeros(1), jnp.ones(1)))
        seed_keys = jax.random.split(jax.random.fold_in(key, 0), seeds)
        output = jax.vmap(lambda s: train(meta_params, level_task(spec, lifetime, s), s))(seed_keys)
        return fitness, output.metrics["episode_return"]

    fitness, returns = jax.jit(fitness_and_returns)(problem.meta_params, jax.random.PRNGKey(5))
    per_seed = np.nanmean(np.asarray(returns, np.float64), axis=1)
    assert len(set(per_seed.round(4))) == seeds  # distinct seeds, so trimming can matter
    np.testing.assert_allclose(float(fitness), STATISTICS[statistic](per_seed), rtol=1e-5)
    if statistic == "iqm":
        assert not np.isclose(float(fitness), per_seed.mean(), rtol=1e-5)


def test_seed_statistic_iqm_needs_four_seeds():
    with pytest.raises(ConfigError, match=r"tasks\.seed_statistic.*seeds_per_member >= 4, got 2"):
        TaskDistribution(seed_statistic="iqm").validate(tiny())
    with pytest.raises(ConfigError, match=r"tasks\.seed_statistic: must be one of iqm, mean"):
        TaskDistribution(seed_statistic="median").validate(tiny())
