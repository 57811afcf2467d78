"""Curricula and shapings through the configs, the CLI and the outer loop: joint meta-parameters, early errors,
learned files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import member_evaluator, tiny

from metarl.checks import validate
from metarl.config import CurriculumConfig, ESConfig, MetaTrainConfig, ShapingConfig, TaskDistribution, TrainConfig
from metarl.errors import ConfigError, RegistryError
from metarl.meta.es_loop import make_es_outer_loop
from metarl.meta.run import build
from metarl.meta.tasks import References
from metarl.types import MetaParams


@pytest.mark.slow  # 15-21 s: in CI's slow step, so the README's test command stays within 8 min on 2 cores
@pytest.mark.heavy
def test_a_joint_objective_curriculum_shaping_pytree_runs_one_es_generation():
    cfg = MetaTrainConfig(
        # CartPole-levels: a held-out return that differs between members even after a few updates
        # (on mazes every tiny agent scores 0, and tied antithetic pairs give an exactly-zero ES step).
        objective="lpo", ppo=tiny(num_steps=24),
        tasks=TaskDistribution(envs=("CartPole-levels",), fitness="heldout_return", normalize=False, seeds_per_member=1),
        curriculum=CurriculumConfig(name="learned"), shaping=ShapingConfig(name="blend", heuristic="pd_good"),
        outer=ESConfig(population_size=4),
    ).validate()
    built = build(cfg)
    from metarl import components

    meta_params = components.joint(built.objective.init(jax.random.PRNGKey(0)), built.components[0])
    assert all(jax.tree.leaves(part) for part in meta_params)  # three non-empty parts
    evaluate_member = member_evaluator(cfg, built)
    loop = make_es_outer_loop(cfg, evaluate_member, meta_params, built.loop.mesh)
    state, metrics = jax.jit(loop.step)(loop.init(jax.random.PRNGKey(0), meta_params), jax.random.PRNGKey(1),
                                        References(jnp.zeros(1), jnp.ones(1)))
    assert int(state.generation) == 1 and np.isfinite(float(metrics["fitness_mean"]))
    assert isinstance(loop.params(state), MetaParams)
    # Each part reaches the inner runs through the ES evaluator: members that differ only in their curriculum
    # or only in their shaping train different agents. (One ES step of a tiny budget can be exactly zero: a
    # perturbation of 0.05 may not flip a single sampled action, and tied antithetic pairs cancel.)
    w1 = jnp.zeros_like(meta_params.curriculum["w1"]).at[0].set(3.0)  # prefer difficult levels, strongly
    w2 = jnp.full_like(meta_params.curriculum["w2"], 3.0)
    curriculum_changed = meta_params._replace(curriculum={**meta_params.curriculum, "w1": w1, "w2": w2})
    shaping_changed = meta_params._replace(shaping={**meta_params.shaping, "b2": jnp.float32(-20.0)})
    members = jax.tree.map(lambda *xs: jnp.stack(xs), meta_params, curriculum_changed, shaping_changed)
    fitness, _ = jax.jit(jax.vmap(evaluate_member, in_axes=(0, None, None, None)))(
        members, jnp.int32(3), jax.random.PRNGKey(2), References(jnp.zeros(1), jnp.ones(1)))
    fitness = np.asarray(fitness)
    assert fitness[1] != fitness[0] and fitness[2] != fitness[0]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (lambda: TrainConfig(env="CartPole-v1", curriculum=CurriculumConfig(name="sec")), "curriculum.name"),
        # a registry error names the family and the unknown name (the field is curriculum.name)
        (lambda: TrainConfig(env="Maze-levels", curriculum=CurriculumConfig(name="secc")), "unknown curriculum 'secc'"),
        (lambda: TrainConfig(env="CartPole-v1", shaping=ShapingConfig(name="naive", heuristic="center")), "shaping.heuristic"),
        (lambda: TrainConfig(env="Maze-open", shaping=ShapingConfig(name="naive")), "shaping.heuristic"),
        (lambda: TrainConfig(env="Maze-open", shaping=ShapingConfig(name="naive", heuristic="center", kwargs="[1]")), "shaping.kwargs"),
        (lambda: MetaTrainConfig(objective="ppo", tasks=TaskDistribution(envs=("Maze-levels",)),
                                 curriculum=CurriculumConfig(name="learned")), "tasks.fitness"),
        (lambda: MetaTrainConfig(objective="ppo", tasks=TaskDistribution(envs=("CartPole-v1",), fitness="heldout_return")),
         "tasks.fitness"),
        (lambda: MetaTrainConfig(objective="ppo", tasks=TaskDistribution(envs=("Maze-open",)),
                                 shaping=ShapingConfig(name="naive", heuristic="center")), "objective"),
    ],
)
def test_bad_plugin_settings_fail_early_naming_the_field(config, field):
    """The message starts with the whole dotted field (``curriculum.name: ...``), not only its section."""
    with pytest.raises((ConfigError, RegistryError)) as error:
        validate(config())
    assert str(error.value).startswith(field if isinstance(error.value, RegistryError) else f"{field}: "), str(error.value)


def test_bad_plugin_kwargs_name_the_field(tmp_path, capsys):
    from metarl.app.cli import main

    code = main(["metarl", "train", "--env", "Maze-levels", "--curriculum.name", "sec", "--curriculum.kwargs", '{"temperature": -1}',
                 "--out", str(tmp_path)])
    assert code == 2 and not any(tmp_path.iterdir())  # a usage error, before anything is written
    assert "curriculum.kwargs: sec temperature must be > 0, got -1" in capsys.readouterr().err


@pytest.mark.heavy
@pytest.mark.slow  # the longest end-to-end checks (36-100 s each on 2 cores) run in CI's slow step
def test_meta_train_writes_learned_files_that_train_and_eval_read(tmp_path, capsys):
    from metarl.app.cli import main

    base = ["--ppo.num-envs", "4", "--ppo.num-steps", "24", "--ppo.total-timesteps", str(4 * 24 * 3), "--ppo.update-epochs", "1",
            "--ppo.num-minibatches", "1", "--ppo.hidden-sizes", "16"]
    assert main(["metarl", "meta-train", "--objective", "ppo", "--curriculum.name", "learned", "--shaping.name", "blend",
                 "--shaping.heuristic", "goal_distance", "--tasks.envs", "Maze-levels", "--tasks.fitness", "heldout_return",
                 "--tasks.no-normalize", "--tasks.seeds-per-member", "1", "--outer.population-size", "2", "--num-generations", "1",
                 "--eval-seeds", "0", "--verdict.num-seeds", "0", "--out", str(tmp_path), "--name", "joint", *base]) == 0
    learned = tmp_path / "joint" / "learned"
    assert {p.name for p in learned.glob("*.msgpack")} == {"ppo.msgpack", "curriculum_learned.msgpack", "shaping_blend.msgpack"}
    assert main(["metarl", "train", "--env", "Maze-levels", "--curriculum.file", str(learned / "curriculum_learned.msgpack"),
                 "--shaping.file", str(learned / "shaping_blend.msgpack"), "--out", str(tmp_path), "--name", "reuse", *base]) == 0
    assert "held-out levels" in capsys.readouterr().out
    assert main(["metarl", "eval", "--objectives", "ppo", "--curricula", "uniform", str(learned / "curriculum_learned.msgpack"),
                 "--envs", "Maze-levels", "--lifetimes", "2", "3", "--num-seeds", "2", "--score", "heldout_success",
                 "--out", str(tmp_path), "--name", "eval", *base[:4]]) == 0
    data = np.load(tmp_path / "eval" / "eval.npz")
    assert list(data["objectives"]) == ["ppo + uniform", "ppo + curriculum_learned (joint)"]
    assert data["category_fraction"].shape[:3] == (2, 1, 2)
