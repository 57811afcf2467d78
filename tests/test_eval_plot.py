import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny

from metarl import objectives
from metarl.app.cli import main
from metarl.app.evaluation import EvalConfig, load_eval, run_eval
from metarl.app.plots import plot_all
from metarl.stats import bootstrap_ci, iqm

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_iqm_on_hand_computed_values():
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(2.5)
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)
    # five values: quartile weights 0, 0.75, 1, 0.75, 0 -> the outlier is trimmed
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0, 100.0])) == pytest.approx(3.0)


def test_bootstrap_ci_brackets_the_iqm_and_narrows_with_more_seeds():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=8), rng.normal(size=200)
    for values in (small, large):
        low, high = bootstrap_ci(values)
        assert low <= iqm(values) <= high
    assert np.subtract(*bootstrap_ci(large)[::-1]) < np.subtract(*bootstrap_ci(small)[::-1])


@pytest.mark.heavy
@pytest.mark.slow  # 16 s: CI's slow step (the default tier keeps eval's stream check), so the README's test command stays within 8 min
def test_eval_grid_writes_scores_and_summary(tmp_path):
    learned = objectives.make("ta_lpo", hidden=8)
    path = objectives.save(tmp_path / "learned" / "ta_lpo", "ta_lpo", {"hidden": 8}, learned.init(jax.random.PRNGKey(0)))
    config = EvalConfig(objectives=("ppo", str(path)), envs=("CartPole-v1",), lifetimes=(1, 3), num_seeds=2, ppo=tiny(),
                        out=str(tmp_path), name="grid")
    run_dir = run_eval(config, ["metarl", "eval"], verbose=False)
    data = load_eval(run_dir / "eval.npz")
    assert data["scores"].shape == (2, 1, 2, 2)
    assert list(data["objectives"]) == ["ppo", "ta_lpo"]
    summary = (run_dir / "summary.md").read_text()
    assert "| CartPole-v1 | 3 | ta_lpo |" in summary
    assert plot_all(tmp_path)[0].name == "eval.png"


def test_eval_refuses_a_missing_learned_file_before_compiling(tmp_path, capsys):
    assert main(["metarl", "eval", "--objectives", "ppo", "nowhere.msgpack", "--out", str(tmp_path)]) == 2
    assert "learned file 'nowhere.msgpack' does not exist" in capsys.readouterr().err


def test_eval_checks_the_curricula_and_shapings_it_names(tmp_path, capsys):
    """The names are looked up in the registries (metarl.checks), as for train and meta-train."""
    assert main(["metarl", "eval", "--objectives", "ppo", "--envs", "Maze-levels", "--curricula", "hardestt", "--out", str(tmp_path)]) == 2
    assert "unknown curriculum 'hardestt'" in capsys.readouterr().err
    assert main(["metarl", "eval", "--objectives", "ppo", "--envs", "CartPole-v1", "--curricula", "uniform", "--out", str(tmp_path)]) == 2
    assert "has no level space" in capsys.readouterr().err


def test_meta_train_bad_input_is_refused_before_compiling(tmp_path, capsys):
    assert main(["metarl", "meta-train", "--outer.population-size", "5", "--out", str(tmp_path)]) == 2
    assert "outer.population_size: must be even" in capsys.readouterr().err
    assert main(["metarl", "meta-train", "--objective", "ppo", "--out", str(tmp_path)]) == 2
    assert "has no meta-parameters" in capsys.readouterr().err
    assert main(["metarl", "meta-train", "--objective-kwargs", '{"no_such_kw": 1}', "--out", str(tmp_path)]) == 2
    assert "objective 'lpo' takes no argument 'no_such_kw'; its arguments: hidden," in capsys.readouterr().err
    missing = str(tmp_path / "none.msgpack")
    assert main(["metarl", "meta-train", "--objective", "ta_lpo", "--init-from", missing, "--out", str(tmp_path)]) == 2
    assert "none.msgpack" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


STUDIES = sorted(p.name for p in RESULTS.iterdir() if p.is_dir() and any(p.rglob("config.json")))


def test_results_hold_studies_with_every_kind_of_figure():
    assert len(STUDIES) >= 10, "results/ holds no studies"
    names = {p.name for study in STUDIES for p in (RESULTS / study).rglob("*.png")}
    assert {"meta_training.png", "eval.png", "sweep.png"} <= names and any(n.startswith("drift_") for n in names)


@pytest.mark.heavy
@pytest.mark.slow  # 2-30 s a study (130 s in all on 2 cores), in CI's slow step; one test per study spreads them over the workers
@pytest.mark.parametrize("study", STUDIES)
def test_plot_regenerates_every_figure_of_a_study_from_its_committed_files_alone(tmp_path, study):
    """`metarl plot` on a copy of the study without its figures draws them again, and only figures the study commits."""
    shutil.copytree(RESULTS / study, tmp_path / study, ignore=shutil.ignore_patterns("*.png", "checkpoints"))
    written = plot_all(tmp_path)
    figures = {p.relative_to(tmp_path) for p in written if p.suffix == ".png"}
    assert figures, f"{study}: no figure drawn"
    assert figures <= {p.relative_to(RESULTS) for p in (RESULTS / study).rglob("*.png")}
    assert all(p.stat().st_size > 10_000 for p in written if p.suffix == ".png")  # figures, not the JSON shaping reports
    assert all(p.stat().st_size > 0 for p in written)


def test_learned_objectives_are_labelled_apart_by_run_and_study():
    from metarl.app.evaluation import objective_label

    entries = ["ppo", "a/run_s0/learned/lpo.msgpack", "b/run_s0/learned/lpo.msgpack", "a/run_s1/learned/lpo.msgpack",
               "a/run_s0/learned/ta_lpo.msgpack"]
    labels = [objective_label(e, entries) for e in entries]
    assert labels == ["ppo", "lpo (a/run_s0)", "lpo (b/run_s0)", "lpo (run_s1)", "ta_lpo"]
    assert len(set(labels)) == len(labels)


def test_an_eval_refused_for_a_bad_learned_file_leaves_no_run_folder(tmp_path, capsys):
    broken = tmp_path / "broken.msgpack"
    broken.write_bytes(b"not a learned file")
    out = tmp_path / "out"
    assert main(["metarl", "eval", "--objectives", "ppo", str(broken), "--out", str(out)]) == 2
    assert "broken.msgpack: not a metarl learned file" in capsys.readouterr().err
    assert not out.exists()  # no config.json, no lock: the next correct eval is not refused
