"""TA-LPO's context features, its warm start from a learned LPO and the temporal-variation number."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import objectives
from metarl.analysis.drift import ADVANTAGES, PROGRESS, RATIOS, drift_grid, schedule_profile, temporal_variation
from metarl.config import MetaTrainConfig, TaskDistribution
from metarl.errors import ConfigError
from metarl.objectives import DriftInputs, drift_objective
from metarl.objectives.lpo import context_values, embed_lpo
from metarl.objectives.registry import resolved_kwargs
from metarl.types import LifetimeContext

RANGE = [8, 512]
# every n/N the features span and lifetimes inside, at and outside the scaling range
CONTEXTS = [LifetimeContext(n, big_n) for big_n in (2, 8, 64, 512, 4096) for n in (0, big_n // 4, big_n // 2, big_n - 1, big_n)]
TA_KWARGS = [{}, {"log_horizon": True, "horizon_range": RANGE}]


def perturbed(params, seed, scale=1.0):
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(treedef, [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)])


def grid_inputs(context, seed=0, n=512):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    old = jax.random.normal(k1, (n,))
    return DriftInputs(old + 0.4 * jax.random.normal(k2, (n,)), old, 2.0 * jax.random.normal(k3, (n,)), context)


@pytest.mark.parametrize("ta_kwargs", TA_KWARGS, ids=["progress", "progress+log_horizon"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ta_lpo_with_zero_context_weights_is_the_lpo_member_bit_for_bit(ta_kwargs, seed):
    lpo = objectives.make("lpo", hidden=16)
    ta_lpo = objectives.make("ta_lpo", hidden=16, **ta_kwargs)
    lpo_params = perturbed(lpo.init(jax.random.PRNGKey(seed)), seed + 100)
    ta_params = embed_lpo(lpo_params, resolved_kwargs("lpo", {"hidden": 16}),
                        resolved_kwargs("ta_lpo", {"hidden": 16, **ta_kwargs}),
                        ta_lpo.init(jax.random.PRNGKey(seed)))
    for context in CONTEXTS:
        inputs = grid_inputs(context, seed)
        ratio = jnp.exp(inputs.log_prob - inputs.old_log_prob)
        np.testing.assert_array_equal(ta_lpo.drift(ta_params, ratio, inputs.advantages, context),
                                      lpo.drift(lpo_params, ratio, inputs.advantages, context))
        def loss_and_grad(objective, params, inputs=inputs):
            return jax.value_and_grad(lambda lp: objective.loss(params, inputs._replace(log_prob=lp)), has_aux=True)(inputs.log_prob)

        (ta_loss, _), ta_grad = loss_and_grad(ta_lpo, ta_params)
        (lpo_loss, _), lpo_grad = loss_and_grad(lpo, lpo_params)
        np.testing.assert_array_equal(ta_loss, lpo_loss)
        np.testing.assert_array_equal(ta_grad, lpo_grad)
    # and a context weight that is not zero changes the drift: the equality above is not vacuous
    moved = {**ta_params, "hidden": ta_params["hidden"].at[8:].set(0.5)}
    ratio = jnp.linspace(0.5, 1.5, 64)
    late = ta_lpo.drift(moved, ratio, jnp.ones_like(ratio), LifetimeContext(90, 100))
    assert not np.array_equal(late, lpo.drift(lpo_params, ratio, jnp.ones_like(ratio), LifetimeContext(90, 100)))


def test_scaled_context_spans_minus_one_to_one_over_the_lifetime_and_the_horizon_range():
    def values(n, big_n):
        return [float(v) for v in context_values(LifetimeContext(n, big_n), progress=True, log_horizon=True, horizon_range=RANGE)]

    np.testing.assert_allclose(values(0, 8), [-1.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(values(512, 512), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(values(32, 64), [0.0, 0.0], atol=1e-6)  # 64 = sqrt(8 * 512): the range's centre
    unscaled = context_values(LifetimeContext(32, 64), progress=True, log_horizon=True, scaled=False)
    np.testing.assert_allclose([float(v) for v in unscaled], [0.5, np.log(64.0)], rtol=1e-6)


@pytest.mark.parametrize("horizon_range, match", [(None, "horizon_range: log_horizon needs"), ([64, 8], "N_min < N_max"),
                                                  ([8, 8], "N_min < N_max"), ([0, 8], "positive integers"), ("8-512", "horizon_range")])
def test_log_horizon_needs_a_valid_horizon_range(horizon_range, match):
    kwargs = {} if horizon_range is None else {"horizon_range": horizon_range}
    with pytest.raises(ConfigError, match=match):
        objectives.make("ta_lpo", log_horizon=True, **kwargs)
    objectives.make("ta_lpo", log_horizon=True, scaled_context=False)  # the unscaled form needs none


def test_meta_train_scales_log_n_over_its_own_lifetimes_and_records_them():
    config = MetaTrainConfig(objective="ta_lpo", objective_kwargs='{"log_horizon": true}',
                             tasks=TaskDistribution(lifetimes=(16, 24, 64)))
    assert config.objective_kwargs_dict()["horizon_range"] == [16, 64]
    given = MetaTrainConfig(objective="ta_lpo", objective_kwargs='{"log_horizon": true, "horizon_range": [4, 400]}')
    assert given.objective_kwargs_dict()["horizon_range"] == [4, 400]
    assert "horizon_range" not in MetaTrainConfig(objective="ta_lpo").objective_kwargs_dict()


def test_old_ta_lpo_files_load_with_their_unscaled_meaning(tmp_path):
    objective = objectives.make("ta_lpo", hidden=8, scaled_context=False)
    params = perturbed(objective.init(jax.random.PRNGKey(0)), 1)
    path = objectives.save(tmp_path / "old.msgpack", "ta_lpo", {"hidden": 8, "scaled_context": False}, params)
    sidecar = path.with_suffix(".json")
    import json

    stored = json.loads(sidecar.read_text())
    stored["kwargs"].pop("scaled_context")  # as a file written before the argument existed
    sidecar.write_text(json.dumps(stored))
    loaded, loaded_params, kwargs = objectives.load(path)
    assert kwargs["scaled_context"] is False
    ratio = jnp.linspace(0.5, 1.5, 32)
    context = LifetimeContext(30, 40)
    np.testing.assert_array_equal(loaded.drift(loaded_params, ratio, -ratio, context), objective.drift(params, ratio, -ratio, context))


def test_warm_start_from_a_learned_lpo_file_starts_at_its_drift(tmp_path):
    lpo = objectives.make("lpo", hidden=8)
    lpo_params = perturbed(lpo.init(jax.random.PRNGKey(3)), 4)
    path = objectives.save(tmp_path / "lpo.msgpack", "lpo", {"hidden": 8}, lpo_params)
    start = objectives.warm_start(path, "ta_lpo", {"hidden": 8})
    ta_lpo = objectives.make("ta_lpo", hidden=8)
    ratio = jnp.linspace(0.5, 1.5, 32)
    for context in CONTEXTS[::3]:
        np.testing.assert_array_equal(ta_lpo.drift(start, ratio, ratio - 1, context), lpo.drift(lpo_params, ratio, ratio - 1, context))
    np.testing.assert_array_equal(start["hidden"][8:], 0.0)
    # a file of the objective itself is its own start; other arguments or another objective are refused by name
    np.testing.assert_array_equal(objectives.warm_start(path, "lpo", {"hidden": 8})["out"], lpo_params["out"])
    with pytest.raises(ConfigError, match=r"init_from: .*hidden \(8 vs 16\)"):
        objectives.warm_start(path, "ta_lpo", {"hidden": 16})
    with pytest.raises(ConfigError, match="other arguments .*hidden"):
        objectives.warm_start(path, "lpo", {"hidden": 16})
    ta_file = objectives.save(tmp_path / "ta.msgpack", "ta_lpo", {"hidden": 8}, start)
    with pytest.raises(ConfigError, match="holds objective 'ta_lpo'"):
        objectives.warm_start(ta_file, "lpo", {"hidden": 8})


def test_meta_train_starts_its_search_at_the_warm_start(tmp_path):
    from metarl.meta.run import build_problem

    lpo = objectives.make("lpo", hidden=8)
    lpo_params = perturbed(lpo.init(jax.random.PRNGKey(5)), 6)
    path = objectives.save(tmp_path / "lpo.msgpack", "lpo", {"hidden": 8}, lpo_params)
    config = MetaTrainConfig(objective="ta_lpo", objective_kwargs='{"hidden": 8}', init_from=str(path))
    start = build_problem(config).meta_params.objective
    np.testing.assert_array_equal(start["hidden"][:8], lpo_params["hidden"])
    np.testing.assert_array_equal(start["out"], lpo_params["out"])
    assert config.identity()["init_from"] == str(path)
    assert "init_from" not in MetaTrainConfig(objective="ta_lpo").identity()  # runs from before keep their identity


def hand_made(drift):
    return drift_objective("hand_made", lambda params, r, a, context: drift(r, a, context.progress))


@pytest.mark.parametrize("drift, expected", [
    (lambda r, a, p: p * (r - 1.0) ** 2, 2.0),  # off at the start, on at the end: change = 2 x the mean
    (lambda r, a, p: (1.0 - p) * (r - 1.0) ** 2 * jnp.abs(a), 2.0),
    (lambda r, a, p: (r - 1.0) ** 2 * (1.0 + 0.0 * p), 0.0),  # ignores n/N
    (lambda r, a, p: (r - 1.0) ** 2 * (1.0 + p), 1.0 / 1.5),  # |2g - g| / mean((1 + p) g) = 1 / 1.5
    (lambda r, a, p: 0.0 * r, 0.0),  # no drift anywhere
])
def test_temporal_variation_of_hand_made_drifts(drift, expected):
    assert temporal_variation(hand_made(drift), {}) == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_schedule_profile_of_ppo_and_of_a_drift_that_tightens_and_rolls_back():
    """PPO: constant penalties, and its clip stops the ratio without pushing it back (no rollback). A quadratic penalty
    c·(n/N)·(r − 1)² is 0 at the start and grows; it rolls back exactly where the slope A − 2c·(n/N)·(r − 1) is
    against A (by more than 1 % of |A|)."""
    ppo = schedule_profile(objectives.make("ppo"), {})
    assert len(set(ppo["penalty_positive_advantage"])) == 1 and ppo["penalty_positive_advantage"][0] > 0
    assert ppo["rollback_share"] == [0.0] * len(PROGRESS)
    c = 4.0
    profile = schedule_profile(hand_made(lambda r, a, p: c * p * (r - 1.0) ** 2), {})
    assert profile["penalty_positive_advantage"][0] == 0.0
    assert np.all(np.diff(profile["penalty_positive_advantage"]) > 0)
    np.testing.assert_allclose(profile["penalty_positive_advantage"], profile["penalty_negative_advantage"], rtol=1e-6)
    r, a = np.meshgrid(RATIOS[1:-1], ADVANTAGES)
    for progress, share in zip(PROGRESS, profile["rollback_share"], strict=True):
        expected = (np.sign(a) * (a - 2.0 * c * progress * (r - 1.0)) < -0.01 * np.abs(a))[ADVANTAGES != 0].mean()
        assert share == pytest.approx(expected, abs=1e-9)
    assert profile["rollback_share"][0] == 0.0 and profile["rollback_share"][-1] > 0.3


def test_temporal_variation_of_the_family():
    assert temporal_variation(objectives.make("ppo"), {}) == 0.0
    lpo = objectives.make("lpo")
    assert temporal_variation(lpo, perturbed(lpo.init(jax.random.PRNGKey(0)), 1)) == 0.0
    ta_lpo = objectives.make("ta_lpo")
    assert temporal_variation(ta_lpo, perturbed(ta_lpo.init(jax.random.PRNGKey(0)), 1)) > 0.05
    assert drift_grid(ta_lpo, ta_lpo.init(jax.random.PRNGKey(0))).shape[0] == len(PROGRESS)


def test_ppo_with_a_clip_schedule_runs_from_its_start_to_its_end_clip():
    scheduled = objectives.make("ppo", clip_eps=0.3, clip_end=0.1)
    ratio, advantage = jnp.linspace(0.5, 1.5, 101), jnp.linspace(-2.0, 2.0, 101)
    for progress, clip in ((0, 0.3), (50, 0.2), (100, 0.1)):
        np.testing.assert_allclose(scheduled.drift({}, ratio, advantage, LifetimeContext(progress, 100)),
                                   objectives.make("ppo", clip_eps=clip).drift({}, ratio, advantage, LifetimeContext(0, 100)), atol=1e-6)
    assert temporal_variation(scheduled, {}) > 0.1
    with pytest.raises(ConfigError, match="clip_end: must be in"):
        objectives.make("ppo", clip_end=1.5)


def test_a_learned_ta_lpo_gets_its_schedule_figure_and_an_lpo_does_not(tmp_path):
    from metarl.app import plots

    for name in ("ta_lpo", "lpo"):
        objective = objectives.make(name, hidden=8)
        (tmp_path / name / "learned").mkdir(parents=True)
        path = objectives.save(tmp_path / name / "learned" / f"{name}.msgpack", name, {"hidden": 8},
                               perturbed(objective.init(jax.random.PRNGKey(0)), 1))
        written = plots.plot_learned(path)
        assert [p.name for p in written] == [f"drift_{name}.png"] + ([f"drift_schedule_{name}.png"] if name == "ta_lpo" else [])
        assert all(p.stat().st_size > 0 for p in written)


@pytest.mark.parametrize("lifetimes, total_timesteps, noted, extra", [((8, 32), None, True, []), ((2, 128), 65536, False, []),
                                                                   ((), None, False, []),
                                                                   ((8, 32), None, False, ["--tasks.lifetime-sampling", "log_uniform",
                                                                                           "--tasks.lifetime-strata", "2"])])
def test_meta_train_notes_a_scan_longer_than_every_lifetime_and_the_flag_that_trims_it(lifetimes, total_timesteps, noted, extra):
    """Lifetimes 8..32 at the default 64 updates scan twice the work they use: the run says so and names the flag; that
    flag's config scans exactly to the longest lifetime and is not noted again."""
    from metarl.app.meta_train import parse_meta_train_config
    from metarl.meta.run import unused_updates_note

    args = ["--tasks.lifetimes", *map(str, lifetimes)] if lifetimes else []
    args += ["--ppo.total-timesteps", str(total_timesteps)] if total_timesteps else []
    args += extra  # lifetime strata scan each stratum to its own longest lifetime: nothing to note
    note = unused_updates_note(parse_meta_train_config(args))
    assert (note is not None) == noted
    if noted:
        flag = note.split("--ppo.total-timesteps ")[1].split()[0]
        trimmed = parse_meta_train_config([*args, "--ppo.total-timesteps", flag])
        assert trimmed.ppo.num_updates == max(lifetimes) and unused_updates_note(trimmed) is None
        assert "2.0x" in note


def test_the_learned_step_size_schedule_and_its_warm_start():
    """exp(a + b·n/N), clipped to e^±5; a warm start carries log_step over, and a TA-LPO that does not match the
    LPO file's learned_step is refused naming the argument."""
    from metarl.objectives.lpo import MAX_LOG_STEP

    stepped = objectives.make("lpo", hidden=8, learned_step=True)
    for a, b in [(0.0, 0.0), (0.5, -2.0), (-1.0, 1.5), (4.0, 3.0)]:
        for n, big_n in [(0, 10), (5, 10), (10, 10)]:
            expected = np.exp(np.clip(a + b * n / big_n, -MAX_LOG_STEP, MAX_LOG_STEP))
            scale = stepped.step_scale({"log_step": jnp.array([a, b])}, LifetimeContext(n, big_n))
            assert float(scale) == pytest.approx(expected, rel=1e-6)
    assert objectives.make("lpo", hidden=8).step_scale is None and objectives.make("ppo").step_scale is None
    gained = objectives.make("lpo", hidden=8, learned_step=True, step_gain=10.0)  # k·(a + b·n/N), clipped after k
    assert float(gained.step_scale({"log_step": jnp.array([0.1, -0.2])}, LifetimeContext(5, 10))) == pytest.approx(1.0)
    assert float(gained.step_scale({"log_step": jnp.array([0.1, 0.0])}, LifetimeContext(5, 10))) == pytest.approx(np.e, rel=1e-6)
    clipped = gained.step_scale({"log_step": jnp.array([1.0, 0.0])}, LifetimeContext(5, 10))
    assert float(clipped) == pytest.approx(np.exp(MAX_LOG_STEP), rel=1e-6)
    for bad, message in [({"step_gain": 0.0, "learned_step": True}, "step_gain: must be a number > 0"),
                         ({"step_gain": 10.0}, "needs learned_step true")]:
        with pytest.raises(ConfigError, match=message):
            objectives.make("lpo", hidden=8, **bad)
    params = {**perturbed(objectives.make("lpo", hidden=8).init(jax.random.PRNGKey(0)), 1), "log_step": jnp.array([0.3, -1.0])}
    import tempfile
    from pathlib import Path

    path = objectives.save(Path(tempfile.mkdtemp()) / "lpo.msgpack", "lpo", {"hidden": 8, "learned_step": True}, params)
    from metarl.analysis.drift import describe_file

    assert describe_file(path)["step_scale"] == pytest.approx([np.exp(0.3 - p) for p in PROGRESS], rel=1e-6)
    start = objectives.warm_start(path, "ta_lpo", {"hidden": 8, "learned_step": True})
    np.testing.assert_array_equal(start["log_step"], params["log_step"])
    with pytest.raises(ConfigError, match="learned_step true"):
        objectives.warm_start(path, "ta_lpo", {"hidden": 8})
    with pytest.raises(ConfigError, match="step_gain"):
        objectives.warm_start(path, "ta_lpo", {"hidden": 8, "learned_step": True, "step_gain": 10.0})
