"""Progress output: a live bar in a terminal, plain lines elsewhere, compile time on its own line."""

from __future__ import annotations

import io
import re

import pytest
from conftest import tiny

from metarl.app.progress import Progress
from metarl.config import ESConfig, MetaTrainConfig, TaskDistribution, VerdictConfig


def test_live_mode_redraws_one_line_and_keeps_chunk_lines_above_it():
    stream = io.StringIO()
    progress = Progress(10, stream=stream, live=True)
    progress.compiled(4.2)
    progress.generation(3, 2.0, "fitness mean 0.500 max 0.900", None)
    progress.generation(4, 2.0, "fitness mean 0.600 max 1.100", 0.7)
    progress.chunk("gen    5/10 · a chunk line")
    progress.close()
    text = stream.getvalue()
    assert text.startswith("compiled the generation step in 4.2 s")
    bars = re.findall(r"\r\x1b\[2K(\[[#.]{20}\] gen \d+/10 · ETA [^\r\n]*)", text)
    assert bars[0].startswith("[######..............] gen 3/10 · ETA 0:14 · fitness mean 0.500 max 0.900")
    assert bars[1].endswith("mean-params 0.700")
    assert "\r\x1b[2Kgen    5/10 · a chunk line\n" in text  # the bar is cleared before a line is written


def test_plain_mode_writes_lines_only():
    stream = io.StringIO()
    progress = Progress(10, stream=stream, live=False)
    progress.compiled(1.0)
    progress.generation(1, 1.0, "fitness mean 0.500 max 0.900", None)
    progress.chunk("a line")
    progress.close()
    assert stream.getvalue() == "compiled the generation step in 1.0 s (first generation included; not in s/gen)\na line\n"


@pytest.mark.heavy
def test_meta_train_reports_compilation_apart_from_seconds_per_generation(tmp_path, capsys):
    from metarl.meta.run import run_meta_train

    config = MetaTrainConfig(ppo=tiny(), tasks=TaskDistribution(normalize=False), outer=ESConfig(population_size=4), num_generations=3,
                             chunk_size=1, eval_seeds=0, verdict=VerdictConfig(num_seeds=0), out=str(tmp_path))
    run_meta_train(config, ["metarl", "meta-train"])
    lines = capsys.readouterr().out.splitlines()  # captured output is not a terminal: plain lines
    assert sum("compiled the generation step" in line for line in lines) == 1
    chunk_lines = [line for line in lines if line.startswith("gen ")]
    assert len(chunk_lines) == 3 and "— s/gen (compiling)" in chunk_lines[0]
    assert all(re.search(r"\d+\.\d\d s/gen", line) for line in chunk_lines[1:])
    assert not any("\r" in line for line in lines)
