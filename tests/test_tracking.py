import importlib.util
import math
import re
import struct
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from metarl.errors import ConfigError
from metarl.io import tracking
from metarl.io.tracking import TRACKERS, check, open_tracker

ROOT = Path(__file__).resolve().parents[1]

# One row with every kind of value a metrics row can hold; only the finite numbers reach a tracker.
ROW = {
    "update": 3,
    "loss": 0.25,
    "f32": np.float32(0.5),
    "i64": np.int64(7),
    "nan": math.nan,
    "inf": -math.inf,
    "np_nan": np.float64("nan"),
    "per_seed": [1.0, 2.0],
    "env": "CartPole-v1",
    "done": True,
    "missing": None,
}
ROW_SCALARS = {"update": 3, "loss": 0.25, "f32": 0.5, "i64": 7}


@pytest.fixture(autouse=True)
def _clean_wandb_env(monkeypatch):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)


# --- check --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TRACKERS)
def test_trackers(kind, tmp_path, monkeypatch):
    """Every tracker name the config accepts is one `check` accepts and `open_tracker` opens as a tracker of
    that kind, which mirrors a row to its own service and to no other (the packages faked)."""
    import typing

    from metarl.config import Tracker

    assert set(typing.get_args(Tracker)) == set(TRACKERS)
    wandb = FakeWandb()
    writers: list[FakeWriter] = []
    tensorboard = types.ModuleType("tensorboardX")
    tensorboard.SummaryWriter = lambda logdir: writers.append(FakeWriter(logdir)) or writers[-1]
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setitem(sys.modules, "tensorboardX", tensorboard)
    check(kind)
    with open_tracker(kind, tmp_path, {}, "run") as tracker:
        assert tracker.kind == kind
        tracker.log(1, {"loss": 0.5})
    sent = {"wandb": [row for run in wandb.runs for row in run.logs],
            "tensorboard": [call[1:] for writer in writers for call in writer.calls if call[0] == "scalar"]}
    expected = {"wandb": [({"loss": 0.5}, 1)], "tensorboard": [("loss", 0.5, 1)]}
    assert sent == {name: expected[name] if name == kind else [] for name in sent}


@pytest.mark.parametrize("call", [lambda: check("mlflow"), lambda: open_tracker("mlflow", Path("."), {}, "run")])
def test_unknown_tracker_names_the_choices(call):
    with pytest.raises(ConfigError, match=re.escape("track: unknown tracker 'mlflow'; choose one of none, wandb, tensorboard")):
        call()


@pytest.mark.parametrize("kind,package", [("wandb", "wandb"), ("tensorboard", "tensorboardX")])
def test_missing_package_names_the_pip_command(monkeypatch, kind, package):
    find_spec = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, package, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == package else find_spec(name, *args))
    with pytest.raises(ConfigError, match=re.escape(f"pip install {package}")):
        check(kind)
    with pytest.raises(ConfigError, match=f"track: tracker '{kind}' needs the {package} package"):
        open_tracker(kind, Path("."), {}, "run")


def test_blocked_package_counts_as_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` refuses
    with pytest.raises(ConfigError, match="pip install wandb"):
        check("wandb")


def test_check_imports_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "wandb", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())  # "installed", yet not importable
    check("wandb")
    check("none")
    assert "wandb" not in sys.modules


# --- none ---------------------------------------------------------------------------------------


def test_none_tracker_imports_neither_package(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from metarl.io.tracking import open_tracker
        with open_tracker("none", Path({str(tmp_path)!r}), {{"lr": 0.1}}, "run") as tracker:
            tracker.log(0, {{"loss": 1.0}})
        tracker.close()
        imported = sorted({{"wandb", "tensorboardX"}} & set(sys.modules))
        assert not imported, imported
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_only_the_tracking_module_imports_tracker_packages():
    pattern = re.compile(r"^\s*(import|from)\s+(wandb|tensorboardX|tensorboard)\b", re.MULTILINE)
    importers = [path.relative_to(ROOT).as_posix() for path in (ROOT / "metarl").rglob("*.py") if pattern.search(path.read_text())]
    assert importers == ["metarl/io/tracking.py"]


# --- wandb --------------------------------------------------------------------------------------


class FakeRun:
    def __init__(self, fail_log: bool = False):
        self.logs: list[tuple[dict, int]] = []
        self.finished = 0
        self.fail_log = fail_log

    def log(self, row, step):
        if self.fail_log:
            raise ConnectionError("upload failed")
        self.logs.append((row, step))

    def finish(self):
        self.finished += 1


class FakeWandb(types.ModuleType):
    """Records `init` calls; `init` raises for the modes in ``fail_modes``."""

    def __init__(self, fail_modes=(), fail_log=False):
        super().__init__("wandb")
        self.inits: list[dict] = []
        self.runs: list[FakeRun] = []
        self.fail_modes = set(fail_modes)
        self.fail_log = fail_log

    def init(self, **kwargs):
        self.inits.append(kwargs)
        if kwargs["mode"] in self.fail_modes:
            raise ConnectionError("no network")
        self.runs.append(FakeRun(self.fail_log))
        return self.runs[-1]


@pytest.fixture
def fake_wandb(monkeypatch):
    module = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def test_wandb_offline_without_api_key_and_only_finite_scalars(tmp_path, fake_wandb):
    with open_tracker("wandb", tmp_path, {"lr": 0.1}, "cartpole_dpo", group="sweep") as tracker:
        tracker.log(5, ROW)
        tracker.log(6, {"per_seed": [1.0], "nan": math.nan})  # nothing left to send: no call
    assert fake_wandb.inits == [dict(project="metarl", name="cartpole_dpo", group="sweep", config={"lr": 0.1}, dir=str(tmp_path),
                                     mode="offline", reinit="finish_previous")]
    (run,) = fake_wandb.runs
    assert run.logs == [(ROW_SCALARS, 5)]
    assert all(type(value) in (int, float) for value in run.logs[0][0].values())
    assert run.finished == 1
    tracker.close()  # a second close does nothing
    tracker.log(7, {"loss": 1.0})  # nor does a log after close
    assert run.finished == 1 and len(run.logs) == 1


@pytest.mark.parametrize(
    "env,mode",
    [({}, "offline"), ({"WANDB_API_KEY": "k"}, "online"), ({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k"}, "disabled"),
     ({"WANDB_MODE": "offline", "WANDB_API_KEY": "k"}, "offline"), ({"WANDB_MODE": "online"}, "online")],
)
def test_wandb_mode(tmp_path, fake_wandb, monkeypatch, env, mode):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    open_tracker("wandb", tmp_path, {}, "run").close()
    assert fake_wandb.inits[0]["mode"] == mode


@pytest.mark.parametrize("version,reinit", [("0.31.0", "finish_previous"), ("0.19.10", "finish_previous"), ("0.19.9", True),
                                            ("0.16.6", True), ("", "finish_previous")])
def test_wandb_reinit_spelling_follows_the_version(version, reinit):
    assert tracking._reinit(version) == reinit


def test_wandb_project_from_env(tmp_path, fake_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_PROJECT", "elsewhere")
    open_tracker("wandb", tmp_path, {}, "run").close()
    assert fake_wandb.inits[0]["project"] == "elsewhere"


def test_wandb_init_failure_falls_back_to_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "k")
    module = FakeWandb(fail_modes={"online"})
    monkeypatch.setitem(sys.modules, "wandb", module)
    with open_tracker("wandb", tmp_path, {}, "run") as tracker:
        tracker.log(0, {"loss": 1.0})
    assert [init["mode"] for init in module.inits] == ["online", "offline"]
    assert module.runs[0].logs == [({"loss": 1.0}, 0)] and module.runs[0].finished == 1
    assert "falling back to mode='offline'" in capsys.readouterr().err


def test_wandb_that_cannot_start_at_all_leaves_the_run_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_API_KEY", "k")
    module = FakeWandb(fail_modes={"online", "offline"})
    monkeypatch.setitem(sys.modules, "wandb", module)
    with open_tracker("wandb", tmp_path, {}, "run") as tracker:
        tracker.log(0, {"loss": 1.0})
    assert type(tracker) is tracking.Tracker
    assert "could not open the wandb tracker" in capsys.readouterr().err


def test_a_failing_log_warns_once_and_stops_tracking(tmp_path, monkeypatch, capsys):
    module = FakeWandb(fail_log=True)
    monkeypatch.setitem(sys.modules, "wandb", module)
    with open_tracker("wandb", tmp_path, {}, "run") as tracker:
        tracker.log(0, {"loss": 1.0})
        tracker.log(1, {"loss": 0.5})
    assert capsys.readouterr().err.count("wandb log failed") == 1
    assert module.runs[0].finished == 0  # a broken tracker is not touched again


# --- tensorboard --------------------------------------------------------------------------------


def read_events(path: Path) -> list:
    """The events of a TFRecord event file (length, masked CRC, data, masked CRC per record)."""
    from tensorboardX.proto.event_pb2 import Event

    events, data, offset = [], path.read_bytes(), 0
    while offset < len(data):
        (length,) = struct.unpack_from("<Q", data, offset)
        offset += 12
        events.append(Event.FromString(data[offset:offset + length]))
        offset += length + 4
    return events


@pytest.mark.skipif(importlib.util.find_spec("tensorboardX") is None, reason="tensorboardX is not installed")
def test_tensorboard_writes_scalars_and_config(tmp_path):
    with open_tracker("tensorboard", tmp_path, {"lr": 0.1, "env": "CartPole-v1"}, "run") as tracker:
        tracker.log(0, ROW)
        tracker.log(1, {"loss": 0.125, "nan": math.nan})
    (events_file,) = (tmp_path / "tensorboard").iterdir()
    assert events_file.name.startswith("events.out.tfevents.") and events_file.stat().st_size > 0
    scalars: dict[str, list[tuple[int, float]]] = {}
    texts = {}
    for event in read_events(events_file):
        for value in event.summary.value:
            if value.HasField("tensor"):
                texts[value.tag] = value.tensor.string_val[0].decode()
            else:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert scalars == {"update": [(0, 3.0)], "loss": [(0, 0.25), (1, 0.125)], "f32": [(0, 0.5)], "i64": [(0, 7.0)]}
    assert any('"lr": 0.1' in text for text in texts.values()), texts


class FakeWriter:
    def __init__(self, logdir):
        self.logdir = logdir
        self.calls: list[tuple] = []

    def add_scalar(self, tag, value, step):
        self.calls.append(("scalar", tag, value, step))

    def add_text(self, tag, text):
        self.calls.append(("text", tag, text))

    def flush(self):
        self.calls.append(("flush",))

    def close(self):
        self.calls.append(("close",))


def test_tensorboard_calls_with_a_fake_module(tmp_path, monkeypatch):
    writers: list[FakeWriter] = []
    module = types.ModuleType("tensorboardX")
    module.SummaryWriter = lambda logdir: writers.append(FakeWriter(logdir)) or writers[-1]
    monkeypatch.setitem(sys.modules, "tensorboardX", module)
    with open_tracker("tensorboard", tmp_path, {"lr": 0.1}, "run") as tracker:
        tracker.log(2, ROW)
    (writer,) = writers
    assert writer.logdir == str(tmp_path / "tensorboard")
    assert writer.calls[0] == ("text", "config", '{\n  "lr": 0.1\n}')
    assert writer.calls[1:] == [("scalar", key, value, 2) for key, value in ROW_SCALARS.items()] + [("flush",), ("close",)]


@pytest.mark.heavy
def test_train_and_meta_train_mirror_their_rows_to_tensorboard(tmp_path):
    """--track tensorboard: the run folder gets an event file beside metrics.jsonl (which stays the record)."""
    pytest.importorskip("tensorboardX")
    from conftest import TINY

    from metarl.app.train import run_train
    from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, TrainConfig, VerdictConfig
    from metarl.meta.run import run_meta_train

    summary = run_train(TrainConfig(ppo=TINY, out=str(tmp_path), track="tensorboard"), verbose=False)
    meta = run_meta_train(MetaTrainConfig(ppo=TINY, tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4),
                                          num_generations=1, eval_seeds=0, out=str(tmp_path), track="tensorboard",
                                          verdict=VerdictConfig(num_seeds=0)), verbose=False)
    for run_dir in (Path(summary["run_dir"]), Path(meta["run_dir"])):
        events = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0 and (run_dir / "metrics.jsonl").is_file()
