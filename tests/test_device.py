"""Device code paths that run without an accelerator: `metarl info`, device discovery and memory read from stub
devices, the memory-based population chunk with a fake free-memory figure, and benchmarks/device.py (its time
guard, and the whole script at smoke size)."""

import importlib.util
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl.app import info
from metarl.app.cli import compile_cache_dir, main
from metarl.config import ESConfig, MetaTrainConfig
from metarl.errors import ConfigError
from metarl.meta import memory
from metarl.meta.tasks import References

ROOT = Path(__file__).resolve().parents[1]


def load_device_benchmark():
    """benchmarks/device.py as a module (registered first: its dataclasses look their module up)."""
    if "device_benchmark" not in sys.modules:
        spec = importlib.util.spec_from_file_location("device_benchmark", ROOT / "benchmarks" / "device.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["device_benchmark"] = module
        spec.loader.exec_module(module)
    return sys.modules["device_benchmark"]


class StubDevice:
    """What metarl reads of a jax device; ``stats``: memory_stats()'s answer, or an exception to raise."""

    def __init__(self, stats, id=0, platform="gpu", kind="NVIDIA H200"):
        self.stats, self.id, self.platform, self.device_kind, self.process_index = stats, id, platform, kind, 0

    def memory_stats(self):
        if isinstance(self.stats, Exception):
            raise self.stats
        return self.stats


# --- metarl info ---------------------------------------------------------------------------------------------


def test_info_names_the_cpu_backend_every_device_and_every_version():
    described = info.describe(cache_dir="/cache/metarl")
    assert described["backend"] == "cpu"
    assert described["device_count"] == jax.device_count() == len(described["devices"])
    assert described["process_count"] == 1 and described["process_index"] == 0
    for device in described["devices"]:
        assert device["platform"] == "cpu"
        assert device["memory_source"] == "host" and device["memory_bytes"] > 0  # a CPU keeps no allocator statistics
    assert set(described["versions"]) == {"python", *info.PACKAGES}
    missing = [name for name, version in described["versions"].items() if not version]
    assert not missing, missing
    assert described["versions"]["jax"] == jax.__version__
    assert described["compile_cache_dir"] == "/cache/metarl"
    text = info.format_info(described)
    assert text.startswith("backend      cpu")
    for name, version in described["versions"].items():
        assert f"{name} {version}" in text


def test_metarl_info_command_prints_the_description(capsys):
    assert main(["metarl", "info", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["backend"] == "cpu" and printed["versions"]["jaxlib"]
    assert printed["compile_cache_dir"] == str(compile_cache_dir())  # the folder CLI runs use
    assert main(["metarl", "info"]) == 0
    assert "backend      cpu" in capsys.readouterr().out


def test_device_discovery_reads_an_accelerators_allocator_and_falls_back_to_host_memory():
    gpu = info.describe_device(StubDevice({"bytes_limit": 100 * 2**30, "bytes_in_use": 2**30}, id=3))
    assert gpu == {"id": 3, "platform": "gpu", "kind": "NVIDIA H200", "process_index": 0, "memory_bytes": 100 * 2**30,
                   "memory_in_use_bytes": 2**30, "memory_source": "device"}
    for stats in (None, {}, RuntimeError("no statistics on this backend")):
        entry = info.describe_device(StubDevice(stats, platform="cpu", kind="cpu"))
        assert entry["memory_source"] == "host" and entry["memory_bytes"] == info.host_memory_bytes() > 0
        assert entry["memory_in_use_bytes"] is None
    described = info.describe(devices=[StubDevice({"bytes_limit": 2**30}, id=i) for i in range(4)])
    assert described["device_count"] == 4 and [d["id"] for d in described["devices"]] == [0, 1, 2, 3]
    assert "device 3     gpu · NVIDIA H200 · 1.0 GiB, 0.0 GiB in use" in info.format_info(described)


# --- memory-based population chunk ---------------------------------------------------------------------------


def test_free_bytes_reads_a_devices_allocator_and_else_splits_the_host_memory():
    assert memory.free_bytes(StubDevice({"bytes_limit": 1000, "bytes_in_use": 300})) == 700
    assert memory.free_bytes(StubDevice({"bytes_limit": 1000})) == 1000
    host = memory.free_bytes(StubDevice({}))
    assert 0 < host <= info.host_memory_bytes() // jax.local_device_count()


def fake_member(meta_params, num_updates, key, references):
    """A member evaluation with a known working set: a (256, 256) float32 buffer per member."""
    buffer = jnp.outer(meta_params["w"], meta_params["w"]) + jax.random.normal(key, (256, 256))
    score = jnp.sum(jnp.tanh(buffer)) * num_updates + references.ppo[0]
    return score, score[None]


SOLUTION = {"w": np.zeros(256, np.float32)}
SPECS = [type("Spec", (), {"obs_shape": (4,)})()]


def chunk_with_free(monkeypatch, free: float, population: int = 16, devices: int = 1, given: int = 0) -> int:
    """population_chunk where the device reports ``free`` bytes (the budget=None path, a fake free-memory figure)."""
    monkeypatch.setattr(memory, "free_bytes", lambda device=None: int(free))
    config = MetaTrainConfig(outer=ESConfig(population_size=population), population_chunk=given)
    return memory.population_chunk(config, fake_member, SOLUTION, devices, SPECS)


def test_the_population_chunk_follows_the_free_memory_figure(monkeypatch):
    per_env = jax.ShapeDtypeStruct((1,), jnp.float32)
    per_member = memory.measured_member_bytes(fake_member, SOLUTION, 2, References(per_env, per_env))
    assert per_member >= 256 * 256 * 4  # the buffer is counted
    # A huge device: the cheap bound fits in a tenth of it, every member at once (0), nothing measured.
    assert chunk_with_free(monkeypatch, 1e15) == 0
    # Room for 4 members by XLA's figure: 4 at a time, fewer than the 16 members.
    assert chunk_with_free(monkeypatch, 4.5 * per_member / memory.MEASURED_FRACTION) == 4
    # The same room with the population over 8 devices: each holds 2 members, both fit.
    assert chunk_with_free(monkeypatch, 4.5 * per_member / memory.MEASURED_FRACTION, devices=8) == 0
    # Not one member fits: refused, naming the field that could help.
    with pytest.raises(ConfigError, match=r"population_chunk: one population member needs"):
        chunk_with_free(monkeypatch, 0.5 * per_member / memory.MEASURED_FRACTION)
    # A chunk the user gave wins over any estimate.
    assert chunk_with_free(monkeypatch, 0.5 * per_member, given=2) == 2


# --- benchmarks/device.py -------------------------------------------------------------------------------------


def test_the_time_guard_skips_a_case_whose_projection_does_not_fit():
    device = load_device_benchmark()
    now = [0.0]
    budget = device.Budget(100.0, clock=lambda: now[0])
    assert budget.skip_reason(99.0) is None
    now[0] = 30.0
    assert budget.skip_reason(69.0) is None
    assert budget.skip_reason(71.0) == "skipped: projected 71 s, 70 s of the budget left"
    assert device.project([], 64) == device.FIRST_CASE_GUESS  # nothing of the kind measured yet
    measured = [(1, {"compile_seconds": 10.0, "run_seconds": 0.5}), (64, {"compile_seconds": 20.0, "run_seconds": 2.0})]
    # From the largest smaller case: 1.5 x its compile + its run scaled by size, times the repeats of a short run.
    assert device.project(measured, 2, repeats=2) == pytest.approx(1.5 * 10 + 2 * 1.0)
    assert device.project(measured, 256, repeats=2) == pytest.approx(1.5 * 20 + 8.0)  # a run over 5 s is timed once
    generations = [(64, {"compile_seconds": 30.0, "build_seconds": 1.0, "seconds_per_generation": 10.0})]
    assert device.project(generations, 256, run_key="seconds_per_generation") == pytest.approx(45 + 1 + 40)


def test_a_budget_of_zero_skips_every_case_and_still_writes_the_report(tmp_path):
    device = load_device_benchmark()
    out = tmp_path / "zero.json"
    report = device.main(["--smoke", "--budget-seconds", "0", "--out", str(out)])
    assert json.loads(out.read_text()) == report
    assert len(report["skipped"]) == 3  # inner loop, reference PPO, one generation
    assert all(target["measured"] is None and target["met"] is None for target in report["targets"].values())


def positive_finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.slow
@pytest.mark.manual  # 25 s, run by hand before every device call (benchmarks/README.md), so CI stays within 15 min
@pytest.mark.heavy
def test_device_benchmark_smoke(tmp_path):
    """The whole script at smoke size on the CPU: every kind of case runs and the JSON holds what the GPU run reports."""
    device = load_device_benchmark()
    out = tmp_path / "x.json"
    device.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {"device", "versions", "backend", "settings", "inner_loop", "reference_ppo", "es_generation", "skipped",
            "elapsed_seconds", "targets"} <= set(report)
    assert report["smoke"] is True and report["skipped"] == [] and report["device"]["platform"] == "cpu"
    assert set(report["versions"]) == {"python", *info.PACKAGES}
    inner = report["inner_loop"]["Breakout-MinAtar"]["2"]
    assert positive_finite(inner["ratio_metarl_to_raw"])
    for measured in (inner["metarl_ppo"], inner["raw_stepping"]):
        assert positive_finite(measured["steps_per_second"]) and measured["compile_seconds"] >= 0
    reference = report["reference_ppo"]["2"]
    assert positive_finite(reference["ratio_metarl_to_reference"]) and positive_finite(reference["steps_per_second"])
    generation = report["es_generation"]["4"]
    assert positive_finite(generation["seconds_per_generation"]) and positive_finite(generation["env_steps_per_second"])
    assert generation["population_chunk"] == 0 and generation["devices"] == jax.device_count()
    assert generation["peak_bytes_in_use"] is None  # no allocator statistics on a CPU
    assert set(report["targets"]) == set(device.TARGETS)
    assert report["targets"]["metarl_to_reference_ppo"]["measured"] == reference["ratio_metarl_to_reference"]
