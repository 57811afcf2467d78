import dataclasses
import inspect
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny

from metarl.checks import validate
from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.distributed import population_mesh
from metarl.errors import ConfigError
from metarl.meta import evosax_adapter as es_module
from metarl.meta import fitness as fit
from metarl.meta.es_loop import make_es_outer_loop
from metarl.meta.evosax_adapter import make_es
from metarl.meta.run import build
from metarl.meta.tasks import References, make_member_evaluator, make_population_evaluator, sample_member_tasks

REFS = References(jnp.zeros(1), jnp.ones(1))


def config(**es_overrides) -> MetaTrainConfig:
    return MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4, **es_overrides),
                           verdict=VerdictConfig(num_seeds=0))


def sum_fitness(meta_params, num_updates, key, references, hparams=None):
    """A stand-in inner loop: fitness = sum of the parameters (higher is better)."""
    value = sum(jnp.sum(x) for x in jax.tree.leaves(meta_params))
    return value, value[None]


def run_generations(loop, state, n, key=0):
    step = jax.jit(lambda state, key: loop.step(state, key, REFS))
    for g in range(n):
        state, metrics = step(state, jax.random.fold_in(jax.random.PRNGKey(key), g))
    return state, metrics


def test_centered_and_pairwise_rank_on_hand_made_fitness():
    f = jnp.array([3.0, -1.0, 10.0, 2.0])
    np.testing.assert_allclose(fit.centered_rank(f), [1 / 6, -0.5, 0.5, -1 / 6], atol=1e-6)
    # pairs (0, 2) and (1, 3): 3 < 10, -1 < 2
    np.testing.assert_allclose(fit.pairwise_rank(f), [-0.5, -0.5, 0.5, 0.5])
    np.testing.assert_allclose(fit.pairwise_rank(jnp.array([1.0, 1.0])), [0.0, 0.0])
    z = fit.z_score(f)
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-4


def test_non_finite_fitness_is_ranked_worst_and_counted():
    clean, count = fit.sanitize(jnp.array([1.0, jnp.nan, -2.0, jnp.inf]))
    assert int(count) == 2
    utility = fit.centered_rank(clean)
    assert float(utility[1]) == float(utility[3]) == float(utility.min()) and float(utility[0]) == float(utility.max())
    all_bad, count = fit.sanitize(jnp.array([jnp.nan, jnp.nan]))
    assert int(count) == 2 and bool(jnp.all(jnp.isfinite(all_bad)))


@pytest.mark.parametrize("algorithm,antithetic", [("Open_ES", True), ("SNES", False), ("CMA_ES", False), ("PGPE", False)])
def test_fitness_sign_higher_return_moves_the_mean_towards_it(algorithm, antithetic):
    cfg = config(algorithm=algorithm, antithetic=antithetic, sigma=0.1, lr=0.05)
    solution = {"w": jnp.zeros(3)}
    loop = make_es_outer_loop(cfg, sum_fitness, solution)
    state, metrics = run_generations(loop, loop.init(jax.random.PRNGKey(0), solution), 10)
    assert float(jnp.sum(loop.params(state)["w"])) > 0.1
    assert int(state.generation) == 10


def test_antithetic_pairs_share_their_task():
    cfg = dataclasses.replace(config(), tasks=TaskDistribution(lifetimes=(1, 2, 3), lifetime_sampling="choice"),
                              outer=ESConfig(population_size=8))
    tasks = sample_member_tasks(jax.random.PRNGKey(0), cfg, 8, True)
    np.testing.assert_array_equal(tasks.num_updates[:4], tasks.num_updates[4:])
    np.testing.assert_array_equal(tasks.keys[:4], tasks.keys[4:])
    assert len({tuple(np.asarray(k)) for k in tasks.keys[:4]}) == 4  # different pairs, different seeds


def test_log_uniform_lifetimes_stay_in_range():
    cfg = dataclasses.replace(config(), tasks=TaskDistribution(lifetimes=(2, 3), lifetime_sampling="log_uniform"),
                              outer=ESConfig(population_size=64))
    n = sample_member_tasks(jax.random.PRNGKey(1), cfg, 64, True).num_updates
    assert int(n.min()) >= 2 and int(n.max()) <= 3 and len(set(np.asarray(n).tolist())) == 2


def test_a_nan_member_is_ranked_worst_and_the_mean_stays_finite():
    def nan_for_first(meta_params, num_updates, key, references, hparams=None):
        value, per_env = sum_fitness(meta_params, num_updates, key, references)
        bad = meta_params["w"][0] > 0  # about half the members
        return jnp.where(bad, jnp.nan, value), per_env

    cfg = config(sigma=0.1)
    solution = {"w": jnp.zeros(3)}
    loop = make_es_outer_loop(cfg, nan_for_first, solution)
    state, metrics = run_generations(loop, loop.init(jax.random.PRNGKey(0), solution), 3)
    assert int(metrics["nonfinite_members"]) > 0
    assert bool(jnp.all(jnp.isfinite(loop.params(state)["w"])))
    assert float(loop.params(state)["w"][0]) < 0  # pushed away from the NaN region


def test_all_non_finite_generations_keep_the_mean_and_count_a_streak():
    cfg = config()
    solution = {"w": jnp.ones(3)}
    loop = make_es_outer_loop(cfg, lambda p, n, k, r, h=None: (jnp.float32(jnp.nan), jnp.full((1,), jnp.nan)), solution)
    state, metrics = run_generations(loop, loop.init(jax.random.PRNGKey(0), solution), 2)
    assert int(state.nonfinite_streak) == 2
    np.testing.assert_array_equal(loop.params(state)["w"], jnp.ones(3))


@pytest.mark.heavy
def test_one_real_es_generation_on_a_tiny_budget():
    cfg = MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4))
    problem, loop = build(cfg)
    meta_params = problem.meta_params
    state, metrics = jax.jit(loop.step)(loop.init(jax.random.PRNGKey(0), meta_params), jax.random.PRNGKey(1), REFS)
    assert int(state.generation) == 1 and int(metrics["nonfinite_members"]) == 0
    assert np.isfinite(float(metrics["fitness_mean"])) and float(metrics["fitness_max"]) >= float(metrics["fitness_min"])
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), loop.params(state), meta_params)
    assert max(jax.tree.leaves(moved)) > 0


@pytest.mark.slow  # 15-21 s: in CI's slow step, so the README's test command stays within 8 min on 2 cores
@pytest.mark.heavy
def test_a_mesh_of_two_cpu_devices_gives_the_same_generation_as_one():
    assert jax.device_count() >= 2, "conftest forces 2 host devices"
    # Without antithetic pairs every member has its own task, so fitness values are not tied (tied
    # pairs give a ~0 ES gradient whose direction Adam would take from rounding noise).
    cfg = MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4, antithetic=False))
    problem, _ = build(cfg)
    objective, env_specs, meta_params = problem.objective, problem.env_specs, problem.meta_params
    evaluate_member = make_member_evaluator(cfg, objective, env_specs, cfg.tasks.seeds_per_member, problem.components)
    results = []
    for devices in (1, 2):
        mesh = population_mesh(4, devices)
        loop = make_es_outer_loop(cfg, evaluate_member, meta_params, mesh)
        population, _ = make_es(cfg.outer, meta_params).ask(jax.random.PRNGKey(3), loop.init(jax.random.PRNGKey(0), meta_params).es_state)
        member_fitness, _ = jax.jit(make_population_evaluator(evaluate_member, mesh))(
            population, sample_member_tasks(jax.random.PRNGKey(4), cfg, 4, False), REFS)
        state, metrics = jax.jit(loop.step)(loop.init(jax.random.PRNGKey(0), meta_params), jax.random.PRNGKey(1), REFS)
        results.append((member_fitness, loop.params(state), metrics))
    (f1, p1, m1), (f2, p2, m2) = results
    assert len(set(np.asarray(f1).tolist())) == 4
    np.testing.assert_array_equal(f1, f2)  # same inner runs, bit for bit
    np.testing.assert_allclose(float(m1["fitness_mean"]), float(m2["fitness_mean"]), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "es,message",
    [
        (ESConfig(population_size=5), "outer.population_size: must be even"),
        (ESConfig(algorithm="OpenES"), "outer.algorithm: unknown evosax algorithm 'OpenES'; known: .*Open_ES"),
        (ESConfig(sigma=0.0), "outer.sigma: must be > 0"),
        (ESConfig(lr=-1.0), "outer.lr: must be > 0"),
        (ESConfig(fitness_shaping="pairwise_rank", antithetic=False, algorithm="SNES"), "pairwise_rank needs outer.antithetic"),
        (ESConfig(sigma=0.03, sigma_floor=0.05), r"outer.sigma_floor: must be in \[0, outer.sigma = 0.03\]"),
        (ESConfig(lr_floor=-1e-3), r"outer.lr_floor: must be in \[0, outer.lr"),
    ],
)
def test_bad_es_config_is_refused_by_name(es, message):
    with pytest.raises(ConfigError, match=message):
        validate(MetaTrainConfig(ppo=tiny(), outer=es))


@pytest.mark.parametrize("algorithm", es_module.algorithm_names())
def test_every_offered_algorithm_runs_a_generation(algorithm):
    """Every name `metarl list` offers builds, asks, tells and exports a finite mean (none ends in a TypeError)."""
    outer = ESConfig(algorithm=algorithm, population_size=8, antithetic=es_module.supports_antithetic(algorithm)).validate()
    strategy = make_es(outer, {"w": jnp.zeros(3)})
    state = strategy.init(jax.random.PRNGKey(0), {"w": jnp.zeros(3)})
    population, state = strategy.ask(jax.random.PRNGKey(1), state)
    fitness = jnp.stack([jnp.sum(member) for member in population["w"]])
    state = strategy.tell(jax.random.PRNGKey(2), population, -fitness, state)
    assert bool(jnp.all(jnp.isfinite(strategy.mean(state)["w"])))


SCHEDULED = [name for name in es_module.algorithm_names()
             if {"std_schedule", "optimizer"} & set(es_module._init_parameters(name))]


@pytest.mark.parametrize("algorithm", SCHEDULED)
@pytest.mark.parametrize("decay,floor", [(1.0, 0.0), (0.5, 0.02)])  # constant (no end value); decaying onto the floor
def test_every_scheduled_algorithm_gets_the_decayed_floored_sigma_and_lr(monkeypatch, algorithm, decay, floor):
    """The adapter hands every evosax algorithm that takes a σ schedule or an optimizer start · decay^g, floored."""
    captured = {}
    original = es_module.EVOSAX_ALGORITHMS[algorithm]

    class Spy(original):  # a subclass keeps the signature the adapter inspects
        def __init__(self, *args, **kwargs):
            captured.update(kwargs)
            super().__init__(*args, **kwargs)

    Spy.__init__.__signature__ = inspect.signature(original.__init__)
    monkeypatch.setitem(es_module.EVOSAX_ALGORITHMS, algorithm, Spy)
    sigma, lr = 0.04, 0.03
    outer = ESConfig(algorithm=algorithm, antithetic=es_module.supports_antithetic(algorithm), sigma=sigma, sigma_decay=decay,
                     sigma_floor=floor, lr=lr, lr_decay=decay, lr_floor=floor)
    make_es(outer.validate(), {"w": jnp.zeros(4)})
    generations = np.arange(12)
    assert captured.keys() & {"std_schedule", "optimizer"}, "the adapter passed neither a σ schedule nor an optimizer"
    if "std_schedule" in captured:
        got = np.asarray([captured["std_schedule"](g) for g in generations])
        np.testing.assert_allclose(got, np.maximum(sigma * decay ** generations, floor), rtol=1e-5)
    if "optimizer" in captured:  # on a constant unit gradient Adam's (bias-corrected) and SGD's step g is -lr_g
        optimizer = captured["optimizer"]
        state, steps = optimizer.init(jnp.zeros(1)), []
        for _ in generations:
            update, state = optimizer.update(jnp.ones(1), state)
            steps.append(-float(update[0]))
        np.testing.assert_allclose(steps, np.maximum(lr * decay ** generations, floor), rtol=1e-4)


def test_open_es_sigma_follows_the_floored_schedule_over_generations():
    loop = make_es_outer_loop(config(sigma=0.04, sigma_decay=0.5, sigma_floor=0.01), sum_fitness, {"w": jnp.zeros(3)})
    state = loop.init(jax.random.PRNGKey(0), {"w": jnp.zeros(3)})
    seen = []
    step = jax.jit(lambda state, key: loop.step(state, key, REFS))
    for g in range(6):
        seen.append(float(state.es_state.std))
        state, _ = step(state, jax.random.PRNGKey(g))
    # evosax sets generation g's σ from the schedule at g - 1 (its counter before the tell): 0.04, 0.04, 0.02, 0.01, ...
    np.testing.assert_allclose(seen, [0.04, 0.04, 0.02, 0.01, 0.01, 0.01], rtol=1e-6)


def test_antithetic_with_an_algorithm_that_cannot_is_refused():
    with pytest.raises(ConfigError, match="outer.antithetic: CMA_ES does not sample antithetic pairs"):
        make_es(ESConfig(algorithm="CMA_ES"), {"w": jnp.zeros(2)})


def test_population_not_divisible_by_devices_is_refused():
    with pytest.raises(ConfigError, match="not divisible by the device count 2"):
        population_mesh(3, 2)


def test_lifetimes_longer_than_the_config_are_refused():
    with pytest.raises(ConfigError, match="tasks.lifetimes: 99 exceeds"):
        MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(lifetimes=(2, 99))).validate()


def test_a_changed_objective_default_is_part_of_the_run_identity():
    """Runs stored before LPO's exact mirror parameterization keep their identity when the old value is given,
    and a run at the new default is not taken for one of them (its checkpoint would mean another objective)."""
    from metarl.config import objective_identity

    old_run = {"objective_kwargs": "{}"}  # what such a run stored
    assert objective_identity("lpo", '{"mirror": false}') == old_run
    assert objective_identity("lpo", "{}") == {"objective_kwargs": "{}", "objective_defaults": {"mirror": True}}
    assert objective_identity("lpo", '{"mirror": true}') == {"objective_kwargs": '{"mirror": true}'}
    assert objective_identity("ppo", '{"clip_eps": 0.3}') == {"objective_kwargs": '{"clip_eps": 0.3}'}
    pinned = MetaTrainConfig(objective_kwargs='{"hidden": 8, "mirror": false}').identity()
    assert pinned["objective_kwargs"] == '{"hidden": 8}' and "objective_defaults" not in pinned


def stratified_config(strata: int, population: int = 8, **overrides) -> MetaTrainConfig:
    """Lifetimes 1..8 log-uniform over a tiny PPO that scans 8 updates."""
    tasks = TaskDistribution(lifetimes=(1, 8), lifetime_sampling="log_uniform", lifetime_strata=strata, normalize=False)
    return MetaTrainConfig(ppo=tiny(total_timesteps=8 * tiny().batch_size), tasks=tasks, verdict=VerdictConfig(num_seeds=0),
                           outer=ESConfig(population_size=population, **overrides))


def test_lifetime_strata_keep_every_draw_in_its_stratum_and_the_population_log_uniform():
    from metarl.meta.tasks import strata_scan_lengths, stratum_members

    cfg = stratified_config(strata=2)
    assert strata_scan_lengths(cfg.tasks, cfg.ppo) == (3, 8)  # edges 1, sqrt(8) = 2.83, 8
    assert strata_scan_lengths(stratified_config(strata=1).tasks, cfg.ppo) == (8,)  # one stratum: the config's scan
    members = stratum_members(cfg.tasks, 8, antithetic=True)
    assert [m.tolist() for m in members] == [[0, 1, 4, 5], [2, 3, 6, 7]]  # a pair and its mirror share a stratum
    draws = np.stack([np.asarray(sample_member_tasks(jax.random.PRNGKey(i), cfg, 8, True).num_updates) for i in range(400)])
    np.testing.assert_array_equal(draws[:, :4], draws[:, 4:])  # mirrors share their task
    assert draws[:, members[0]].max() <= 3 and draws[:, members[1]].min() >= 3 and draws.max() == 8 and draws.min() == 1
    unstratified = np.stack([np.asarray(sample_member_tasks(jax.random.PRNGKey(i), stratified_config(1), 8, True).num_updates)
                             for i in range(400)])
    # the same log-uniform marginal: the share of each lifetime agrees with the unstratified draw's within sampling noise
    shares = [np.bincount(d.ravel(), minlength=9)[1:] / d.size for d in (draws, unstratified)]
    np.testing.assert_allclose(shares[0], shares[1], atol=0.03)


def test_stratified_evaluation_gives_each_member_the_fitness_of_the_full_scan():
    """Each stratum scans only to its own longest lifetime; the updates it skips were masked anyway, so every member's
    fitness equals the one-scan evaluation's (up to the length of the score's reduction), in population order."""
    from metarl.meta.tasks import make_stratified_evaluator, strata_scan_lengths, stratum_members, with_scan_length

    cfg = stratified_config(strata=2, antithetic=False, population=4)
    problem, _ = build(cfg)
    evaluate = lambda c: make_member_evaluator(c, problem.objective, problem.env_specs, 1, problem.components)  # noqa: E731
    scans = strata_scan_lengths(cfg.tasks, cfg.ppo)
    stratified = make_stratified_evaluator([make_population_evaluator(evaluate(with_scan_length(cfg, s)), None) for s in scans],
                                           stratum_members(cfg.tasks, 4, antithetic=False))
    one_scan = make_population_evaluator(evaluate(cfg), None)
    population, _ = make_es(cfg.outer, problem.meta_params).ask(jax.random.PRNGKey(3), make_es(cfg.outer, problem.meta_params).init(
        jax.random.PRNGKey(0), problem.meta_params))
    tasks = sample_member_tasks(jax.random.PRNGKey(5), cfg, 4, False)
    assert scans == (3, 8) and int(tasks.num_updates[:2].max()) <= 3  # the first stratum's runs scan 3 updates, not 8
    (f_strata, e_strata), (f_one, e_one) = jax.jit(stratified)(population, tasks, REFS), jax.jit(one_scan)(population, tasks, REFS)
    assert len(set(np.asarray(f_one).tolist())) == 4
    np.testing.assert_allclose(f_strata, f_one, rtol=1e-5)
    np.testing.assert_allclose(e_strata, e_one, rtol=1e-5)


@pytest.mark.slow  # 10 s, a whole ES generation compiled: CI's slow step keeps the README's command within 8 min
def test_meta_train_with_lifetime_strata_steps_its_es_loop(tmp_path):
    from metarl.meta.run import run_meta_train

    cfg = dataclasses.replace(stratified_config(strata=2, population=4), num_generations=1, eval_seeds=0, out=str(tmp_path))
    summary = run_meta_train(cfg, verbose=False)
    rows = [json.loads(line) for line in (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["fitness_mean"]) and rows[0]["nonfinite_members"] == 0


@pytest.mark.parametrize("overrides, match", [
    ({"lifetime_sampling": "choice"}, "needs tasks.lifetime_sampling log_uniform"),
    ({"lifetimes": (8,)}, "needs a range of lifetimes to split"),
    ({"lifetime_strata": 3}, "3 strata must divide the 4 antithetic pairs"),
    ({"lifetime_strata": 0}, "tasks.lifetime_strata"),
])
def test_lifetime_strata_refuse_what_they_cannot_split(overrides, match):
    cfg = stratified_config(strata=2)
    with pytest.raises(ConfigError, match=match):
        dataclasses.replace(cfg, tasks=dataclasses.replace(cfg.tasks, **overrides)).validate()


def test_lifetime_strata_are_for_es_only():
    from metarl.app.meta_train import parse_meta_train_config

    with pytest.raises(ConfigError, match="strata split an ES population; outer:metagrad has none"):
        parse_meta_train_config(["--tasks.lifetimes", "2", "8", "--tasks.lifetime-sampling", "log_uniform",
                                 "--tasks.lifetime-strata", "2", "outer:metagrad"]).validate()
