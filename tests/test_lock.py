"""One writer per run folder: a second process is refused at once and writes nothing; a killed holder's
lock never blocks the rerun."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest
from conftest import TINY

from metarl.app.cli import main
from metarl.app.train import run_train
from metarl.config import TrainConfig
from metarl.io.lock import LOCK_NAME, RunFolderBusy, hold

HOLDER = "import sys, time\nfrom metarl.io.lock import hold\nhold(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(300)\n"


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of tmp_path/run."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_process_is_refused_with_the_holder_and_writes_nothing(tmp_path, holder, capsys):
    with pytest.raises(RunFolderBusy, match=rf"in use by process {holder.pid} on host {socket.gethostname()}"):
        run_train(TrainConfig(ppo=TINY, out=str(tmp_path), name="run"), verbose=False)
    tiny = ["--ppo.num-envs", "4", "--ppo.num-steps", "16", "--ppo.total-timesteps", "192", "--outer.population-size", "4",
            "--verdict.num-seeds", "0", "--tasks.no-normalize"]
    assert main(["metarl", "meta-train", *tiny, "--out", str(tmp_path), "--name", "run"]) == 2
    assert f"in use by process {holder.pid}" in capsys.readouterr().err
    assert main(["metarl", "eval", "--objectives", "ppo", "dpo", "--out", str(tmp_path), "--name", "run"]) == 2
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]  # nothing written


def test_a_killed_holder_does_not_block_the_rerun(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    summary = run_train(TrainConfig(ppo=TINY, out=str(tmp_path), name="run"), verbose=False)
    assert (tmp_path / "run" / "summary.json").is_file() and summary["final_return_mean"] > 0
    lock = hold(tmp_path / "run")  # released at the end of the run
    lock.release()
