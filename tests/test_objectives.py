import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl import objectives
from metarl.errors import ConfigError, RegistryError
from metarl.objectives import DriftInputs, TargetInputs
from metarl.objectives.dpo import dpo_drift
from metarl.types import LifetimeContext

ALL = objectives.names()
DRIFT = [name for name in ALL if objectives.make(name).drift is not None]
CONTEXTS = [LifetimeContext(0, 100), LifetimeContext(50, 100), LifetimeContext(99, 100), LifetimeContext(3, 10)]


def random_meta_params(objective, seed):
    params = objective.init(jax.random.PRNGKey(seed))
    # Random, not initial: perturb every leaf so zero-initialized layers (ppo_init) are exercised too.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1000), max(len(leaves), 1))
    return jax.tree.unflatten(treedef, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys[: len(leaves)], strict=True)])


def drift_inputs(n=256, seed=0, context=CONTEXTS[1]):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    old = jax.random.normal(k1, (n,))
    new = old + 0.3 * jax.random.normal(k2, (n,))
    return DriftInputs(new, old, jax.random.normal(k3, (n,)) * 2, context)


def test_registry_lists_the_built_in_family():
    assert {"ppo", "dpo", "lpo", "ta_lpo"} <= set(ALL)


def target_inputs(objective, n=256, seed=0, context=CONTEXTS[1]):
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(seed), 4)
    m = objective.head_size
    return TargetInputs(jax.random.normal(k1, (n,)) - 1.0, jax.random.normal(k2, (n, m)), jax.random.normal(k3, (n,)),
                        jax.nn.softmax(jax.random.normal(k4, (n, m))), context)


# What each agent kind feeds its objective's loss (a new agent kind adds its builder here).
LOSS_INPUTS = {"actor_critic": lambda objective: drift_inputs(), "predictor": target_inputs}


@pytest.mark.parametrize("name", ALL)
def test_every_objective_builds_and_gives_finite_loss_and_grads(name):
    objective = objectives.make(name)
    meta_params = objective.init(jax.random.PRNGKey(0))
    inputs = LOSS_INPUTS[objective.agent](objective)
    loss, aux = jax.jit(objective.loss)(meta_params, inputs)
    assert jnp.isfinite(loss) and all(jnp.isfinite(v) for v in aux.values())
    grad = jax.grad(lambda lp: objective.loss(meta_params, inputs._replace(log_prob=lp))[0])(inputs.log_prob)
    assert jnp.all(jnp.isfinite(grad)) and float(jnp.abs(grad).sum()) > 0


def test_ppo_objective_equals_direct_clip_loss():
    inputs = drift_inputs(seed=3)
    ratio = jnp.exp(inputs.log_prob - inputs.old_log_prob)
    clipped = jnp.clip(ratio, 0.8, 1.2)
    direct = -jnp.mean(jnp.minimum(ratio * inputs.advantages, clipped * inputs.advantages))
    loss, _ = objectives.make("ppo", clip_eps=0.2).loss({}, inputs)
    np.testing.assert_allclose(loss, direct, rtol=1e-6, atol=1e-7)
    # and the gradients w.r.t. the new log-probs agree too
    g_obj = jax.grad(lambda lp: objectives.make("ppo").loss({}, inputs._replace(log_prob=lp))[0])(inputs.log_prob)
    g_dir = jax.grad(
        lambda lp: -jnp.mean(jnp.minimum(jnp.exp(lp - inputs.old_log_prob) * inputs.advantages,
                                         jnp.clip(jnp.exp(lp - inputs.old_log_prob), 0.8, 1.2) * inputs.advantages))
    )(inputs.log_prob)
    np.testing.assert_allclose(g_obj, g_dir, rtol=1e-5, atol=1e-7)


def without_offset(name, **kwargs):
    """The objective with ``offset=0`` where its factory has one: LPO's default offset (1e-4) makes D exactly 0
    wherever g̃ < 1e-4, i.e. on a band around r = 1, so checks of D there would pass for any g̃. D with the
    offset is at most D without it, so flatness at offset 0 implies flatness at any offset."""
    accepts_offset = "offset" in inspect.signature(objectives.REGISTRY.get(name)).parameters
    return objectives.make(name, **kwargs, **({"offset": 0.0} if accepts_offset else {}))


def slopes_near_one(objective, params, context, step):
    """max over A of |∂D/∂r| at r = 1 ± step: O(step) for a drift flat at r = 1, O(1) for a drift with a kink
    there. (At r = 1 itself ``jax.grad`` reads relu's derivative at 0, which is 0 whatever the slope of g̃.)"""
    advantages = jnp.linspace(-3.0, 3.0, 31)
    grad = jax.vmap(jax.grad(lambda r, a: objective.drift(params, r, a, context)), in_axes=(None, 0))
    return float(jnp.maximum(jnp.abs(grad(1.0 + step, advantages)), jnp.abs(grad(1.0 - step, advantages))).max())


def assert_mirror_drift(objective, params, context):
    """D ≥ 0, D(1, ·) = 0, ∂D/∂r(1, ·) = 0, and flat at r = 1: the slope beside r = 1 shrinks with the distance
    (a tenth of the distance, at most a fifth of the slope)."""
    ratios = jnp.linspace(0.2, 3.0, 57)
    advantages = jnp.linspace(-3.0, 3.0, 31)
    r, a = jnp.meshgrid(ratios, advantages)
    assert float(objective.drift(params, r, a, context).min()) >= 0.0

    def drift_at(ratio, advantage):
        return objective.drift(params, ratio, advantage, context)

    np.testing.assert_array_equal(jax.vmap(drift_at, in_axes=(None, 0))(1.0, advantages), 0.0)
    np.testing.assert_array_equal(jax.vmap(jax.grad(drift_at), in_axes=(None, 0))(1.0, advantages), 0.0)
    coarse, fine = slopes_near_one(objective, params, context, 1e-2), slopes_near_one(objective, params, context, 1e-3)
    assert fine <= 0.2 * coarse + 1e-5, f"slope beside r = 1 does not vanish: {coarse:.3g} at 1 ± 1e-2, {fine:.3g} at 1 ± 1e-3"
    return coarse


# Seeds at which every n/N of CONTEXTS has g̃ > 0 beside r = 1 for some A (for seed 0, TA-LPO's g̃ is
# negative there at n/N = 0.5 and 0.99, so a kink would be invisible through the relu).
@pytest.mark.parametrize("name", DRIFT)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("context", CONTEXTS, ids=lambda c: f"n{c.update}of{c.num_updates}")
def test_drift_is_nonnegative_and_flat_at_ratio_one(name, seed, context):
    objective = without_offset(name)
    meta_params = random_meta_params(objective, seed)
    coarse = assert_mirror_drift(objective, meta_params, context)
    if jax.tree.leaves(meta_params):  # a learned drift: the slope check saw a drift that is not 0 beside r = 1
        assert coarse > 1e-3, coarse


MIRRORED = [name for name in DRIFT if "mirror" in inspect.signature(objectives.REGISTRY.get(name)).parameters]


@pytest.mark.parametrize("name", MIRRORED)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_flatness_check_fails_for_the_unmirrored_drift(name, seed):
    """The check above has teeth: with ``mirror=False`` the same random networks have a kink at r = 1."""
    objective = without_offset(name, mirror=False)
    with pytest.raises(AssertionError, match="slope beside r = 1 does not vanish"):
        assert_mirror_drift(objective, random_meta_params(objective, seed), CONTEXTS[1])


def es_member(objective, seed, sigma):
    """A member of an ES population around the objective's initial parameters, at the ES's σ."""
    params = objective.init(jax.random.PRNGKey(0))
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 2000), max(len(leaves), 1))
    noise = [sigma * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys[: len(leaves)], strict=True)]
    return jax.tree.unflatten(treedef, [x + n for x, n in zip(leaves, noise, strict=True)])


def one_sided_slopes(objective, params, context, step=1e-3):
    """D(1 ± h, A) / h over a range of A: the drift's one-sided slopes at r = 1 (0 for a drift flat there)."""
    advantages = jnp.linspace(-3.0, 3.0, 61)
    above = objective.drift(params, jnp.full_like(advantages, 1.0 + step), advantages, context)
    below = objective.drift(params, jnp.full_like(advantages, 1.0 - step), advantages, context)
    return jnp.maximum(above, below) / step


@pytest.mark.parametrize("name", DRIFT)
@pytest.mark.parametrize("sigma", [0.03, 1.0], ids=["es_sigma", "unit"])
def test_mirror_constraints_hold_for_every_member_of_an_es_population(name, sigma):
    """D(1, ·) = 0 and ∂D/∂r(1, ·) = 0 for every member, not only at the initial parameters: the one-sided
    slopes D(1 ± h)/h vanish as h → 0 (a tenth of h, at most a fifth of the slope: second order or flat, where a
    drift with a kink at r = 1 keeps its slope). 16 members at the default ES σ and at unit scale, every n/N.
    At offset 0 (see ``without_offset``): with the default offset, members at σ = 0.03 are mostly exactly 0 near
    r = 1 and the slope check would hold as 0 ≤ 0."""
    from metarl.config import ESConfig

    assert ESConfig().sigma <= 0.03
    objective = without_offset(name)
    coarse_slopes = []
    for seed in range(16):
        params = es_member(objective, seed, sigma)
        for context in CONTEXTS:
            at_one = objective.drift(params, jnp.ones(5), jnp.linspace(-2.0, 2.0, 5), context)
            np.testing.assert_array_equal(at_one, 0.0)
            coarse = float(one_sided_slopes(objective, params, context, 1e-2).max())
            fine = float(one_sided_slopes(objective, params, context, 1e-3).max())
            assert fine <= 0.2 * coarse + 1e-6, (name, seed, context, coarse, fine)
            coarse_slopes.append(coarse)
    if jax.tree.leaves(objective.init(jax.random.PRNGKey(0))):
        # The check has power: for most members a kink (fine ≈ coarse) would exceed the tolerance many times over.
        powered = sum(coarse > 1e-5 for coarse in coarse_slopes)
        assert powered >= len(coarse_slopes) // 2, (powered, len(coarse_slopes))


def test_the_original_lpo_parameterization_has_one_sided_slopes_at_ratio_one():
    """Why ``mirror=True`` exists: with features first order in (r − 1), ES members of the original LPO carry a
    linear penalty on one side of r = 1 (the check above would fail for them)."""
    objective = objectives.make("lpo", mirror=False)
    kinked = []
    for seed in range(16):
        params = es_member(objective, seed, 0.03)
        coarse = float(one_sided_slopes(objective, params, CONTEXTS[0], 1e-2).max())
        fine = float(one_sided_slopes(objective, params, CONTEXTS[0], 1e-3).max())
        kinked.append(fine > 0.2 * coarse + 1e-6 and fine > 0.05)
    assert any(kinked)


def test_dpo_matches_its_closed_form_at_hand_computed_points():
    # A >= 0: (r-1)A - 2 tanh((r-1)A/2) at r=2, A=3: 3 - 2 tanh(1.5)
    assert float(dpo_drift(jnp.array(2.0), jnp.array(3.0), 2.0, 0.6)) == pytest.approx(3 - 2 * np.tanh(1.5), rel=1e-6)
    # A < 0: log(r)A - 0.6 tanh(log(r)A/0.6) at r=0.5, A=-2: x = 2 log 2
    x = 2 * np.log(2.0)
    assert float(dpo_drift(jnp.array(0.5), jnp.array(-2.0), 2.0, 0.6)) == pytest.approx(x - 0.6 * np.tanh(x / 0.6), rel=1e-6)


def test_ta_lpo_drift_depends_on_lifetime_progress_and_lpo_does_not():
    r, a = jnp.meshgrid(jnp.linspace(0.2, 3.0, 15), jnp.linspace(-3.0, 3.0, 15))
    for name, should_change in (("ta_lpo", True), ("lpo", False)):
        objective = objectives.make(name)
        params = random_meta_params(objective, 0)
        early = objective.drift(params, r, a, LifetimeContext(0, 100))
        late = objective.drift(params, r, a, LifetimeContext(90, 100))
        assert bool(jnp.any(jnp.abs(early - late) > 1e-6)) == should_change, name


def test_log_horizon_features_make_ta_lpo_depend_on_lifetime_length():
    objective = objectives.make("ta_lpo", log_horizon=True, horizon_range=[10, 1000])
    params = random_meta_params(objective, 0)
    assert params["hidden"].shape[0] == 24
    r, a = jnp.meshgrid(jnp.linspace(0.2, 3.0, 15), jnp.linspace(-3.0, 3.0, 15))
    short = objective.drift(params, r, a, LifetimeContext(5, 10))
    long = objective.drift(params, r, a, LifetimeContext(500, 1000))  # same n/N, other N
    assert bool(jnp.any(jnp.abs(short - long) > 1e-6))


def test_lpo_with_ppo_init_starts_at_ppo():
    objective = objectives.make("lpo", ppo_init=True)
    params = objective.init(jax.random.PRNGKey(0))
    inputs = drift_inputs(seed=5)
    lpo_loss, _ = objective.loss(params, inputs)
    ppo_loss, _ = objectives.make("ppo").loss({}, inputs)
    np.testing.assert_allclose(lpo_loss, ppo_loss, atol=2e-4)


def test_unknown_and_duplicate_names_list_the_known_ones():
    with pytest.raises(RegistryError, match="known objectives: dpo, lpg, lpo"):
        objectives.make("lpoo")
    with pytest.raises(RegistryError, match="already registered"):
        objectives.register("ppo", objectives.REGISTRY.get("ppo"))


def test_bad_objective_kwargs_name_the_field():
    with pytest.raises(ConfigError, match="clip_eps"):
        objectives.make("ppo", clip_eps=1.5)
    with pytest.raises(ConfigError, match="hidden"):
        objectives.make("lpo", hidden=0)


@pytest.mark.parametrize("name", ALL)
def test_an_argument_the_factory_does_not_take_is_named_with_the_ones_it_takes(name):
    with pytest.raises(RegistryError, match=rf"objective '{name}' takes no argument 'no_such_kw'; its arguments: "):
        objectives.make(name, no_such_kw=1)


def test_a_learned_file_of_an_unregistered_objective_names_the_import_flag(tmp_path):
    from metarl.errors import LearnedFileError
    from metarl.io.learned import LearnedComponent, save_learned

    params = objectives.make("lpo", hidden=4).init(jax.random.PRNGKey(0))
    # as a file written by an objective that a user's module registered
    path = save_learned(tmp_path / "mine.msgpack", LearnedComponent("objective", "my_plugin_objective", {}, params, {}))
    with pytest.raises(LearnedFileError, match=r"'my_plugin_objective' is not registered; .*add --import"):
        objectives.load(path)
