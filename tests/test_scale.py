"""Populations bigger than memory: chunked evaluation, and the chunk chosen from a memory estimate."""

import jax
import numpy as np
import pytest
from conftest import member_evaluator, tiny

from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig
from metarl.distributed import population_mesh
from metarl.errors import ConfigError
from metarl.meta import memory
from metarl.meta.evosax_adapter import make_es
from metarl.meta.run import build
from metarl.meta.tasks import References, make_population_evaluator, sample_member_tasks

REFS = References(np.zeros(1, np.float32), np.ones(1, np.float32))


def small_config(**overrides) -> MetaTrainConfig:
    return MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4, antithetic=False),
                           verdict=VerdictConfig(num_seeds=0), **overrides)


@pytest.mark.parametrize("devices", [1, 2])
@pytest.mark.heavy
def test_chunked_and_unchunked_evaluation_agree(devices):
    cfg = small_config()
    built = build(cfg)
    meta_params = built.objective.init(jax.random.PRNGKey(0))
    es = make_es(cfg.outer, meta_params)
    population, _ = es.ask(jax.random.PRNGKey(3), es.init(jax.random.PRNGKey(0), meta_params))
    tasks = sample_member_tasks(jax.random.PRNGKey(4), cfg, 4, False)
    mesh = population_mesh(4, devices)
    results = {chunk: jax.jit(make_population_evaluator(member_evaluator(cfg, built), mesh, chunk))(population, tasks, REFS)
               for chunk in (0, 1)}
    whole, chunked = results[0], results[1]
    assert len(set(np.asarray(whole[0]).tolist())) == 4  # four different members, not one value repeated
    np.testing.assert_array_equal(whole[0], chunked[0])  # the same runs, bit for bit
    np.testing.assert_array_equal(whole[1], chunked[1])


def test_choose_chunk_from_bytes():
    assert memory.choose_chunk(8, member_bytes=100.0, budget=1000.0) == 0  # all 8 fit: no chunking
    assert memory.choose_chunk(16, member_bytes=100.0, budget=1000.0) == 10
    assert memory.choose_chunk(16, member_bytes=float("nan"), budget=1000.0) == 0  # no analysis: run as before
    with pytest.raises(ConfigError, match="population_chunk: one population member needs"):
        memory.choose_chunk(16, member_bytes=2000.0, budget=1000.0)


@pytest.mark.heavy
def test_the_memory_estimate_chunks_only_when_the_share_does_not_fit():
    cfg = small_config()
    built = build(cfg)
    solution, evaluate_member = built.problem.meta_params, member_evaluator(cfg, built)
    assert memory.population_chunk(cfg, evaluate_member, solution, 2, built.env_specs) == 0  # tiny runs fit
    per_member = memory.measured_member_bytes(evaluate_member, solution, 2, REFS)
    assert per_member > 0
    rough = memory.rough_member_bytes(cfg, [4], 100)
    assert rough > per_member / 4  # the cheap bound is not far below XLA's own figure
    # A device with room for ~1.5 members by XLA's analysis evaluates them one at a time.
    budget = 1.5 * per_member / memory.MEASURED_FRACTION
    assert memory.population_chunk(cfg, evaluate_member, solution, 1, built.env_specs, budget=budget) == 1
    given = small_config(population_chunk=3)
    assert memory.population_chunk(given, evaluate_member, solution, 1, built.env_specs, budget=budget) == 3


def test_a_negative_chunk_is_refused():
    with pytest.raises(ConfigError, match="population_chunk: must be >= 0"):
        small_config(population_chunk=-1).validate()


@pytest.mark.heavy
def test_the_generation_step_compiles_once_per_run(tmp_path, caplog):
    """The first state is placed where the step leaves its output; otherwise generation 2 compiles again."""
    import logging

    from metarl.meta.run import run_meta_train

    cfg = small_config(num_generations=3, chunk_size=1, eval_seeds=0, out=str(tmp_path))
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            run_meta_train(cfg, verbose=False)
    finally:
        jax.config.update("jax_log_compiles", False)
    steps = [r for r in caplog.records if "Compiling jit(<lambda>)" in r.getMessage()]
    assert len(steps) == 1, [r.getMessage()[:200] for r in steps]
