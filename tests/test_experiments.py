"""The tables a study's script writes into results/ regenerate from the stored run folders alone."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (ROOT / "results" / "ta_headroom" / "headroom.json").is_file(), reason="study not stored")
def test_the_time_awareness_headroom_table_regenerates_from_its_runs(tmp_path):
    script = load_script("ta_headroom")
    root = ROOT / "results" / "ta_headroom"
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
