"""The README's custom-objective example is run exactly as written, in a fresh process."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(marker: str) -> str:
    match = re.search(rf"<!-- example: {marker} -->\s*```python\n(.*?)```", README.read_text(), re.S)
    assert match, f"README has no example marked {marker!r}"
    return match.group(1)


@pytest.mark.heavy
def test_readme_custom_objective_example_runs(tmp_path):
    code = readme_example("custom-objective")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    final_return = float(result.stdout.strip().splitlines()[-1])
    assert final_return > 0
    assert (tmp_path / "runs" / "CartPole-v1_spo_s0" / "metrics.jsonl").is_file()


@pytest.mark.heavy
def test_cli_import_flag_registers_a_users_objective(tmp_path):
    plugin = tmp_path / "my_objectives.py"
    plugin.write_text(readme_example("custom-objective").split("summary =")[0])
    from metarl.app.cli import main

    code = main(["metarl", "train", "--import", str(plugin), "--objective", "spo", "--ppo.total-timesteps", "1024",
                 "--ppo.num-steps", "16", "--out", str(tmp_path / "cli")])
    assert code == 0
    assert (tmp_path / "cli" / "CartPole-v1_spo_s0" / "config.json").is_file()
    from metarl import objectives

    objectives.REGISTRY._factories.pop("spo")  # keep the process-wide registry as other tests expect it


def test_import_of_a_missing_plugin_is_a_clear_error(capsys):
    from metarl.app.cli import main

    assert main(["metarl", "train", "--import", "nowhere/missing.py"]) == 2
    assert "--import: file 'nowhere/missing.py' does not exist" in capsys.readouterr().err
