"""Progress of a meta-training run, told truthfully: a live bar in a terminal, plain lines elsewhere.

In a terminal (``stream.isatty()``) every generation redraws one line per run in place: generation k/K,
the time left at the current pace, the last generation's mean and best fitness, and the latest
mean-parameters fitness. Elsewhere (CI, a file, a pipe) nothing is redrawn: one line per chunk, as the
metrics rows are written. In both, the compilation of the generation step is reported on a line of its
own and kept out of the seconds per generation.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None, live: bool | None = None, label: str = "", unit: str = "gen"):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.total, self.label, self.unit = total, label, unit
        self.started = time.perf_counter()
        self._drawn = False

    def compiled(self, seconds: float, what: str = "generation step") -> None:
        self._line(f"{self.label}compiled the {what} in {seconds:.1f} s (first generation included; not in s/gen)")

    def generation(self, generation: int, seconds_per_generation: float, summary: str, mean_params: float | None) -> None:
        """After each generation; draws only in a terminal. ``summary``: the outer loop's text for the last
        generation's metrics (``OuterLoop.describe``), e.g. "fitness mean 0.812 max 1.104"."""
        if not self.live:
            return
        left = (self.total - generation) * seconds_per_generation
        width = 20
        done = int(width * generation / max(self.total, 1))
        evaluated = f" · mean-params {mean_params:.3f}" if mean_params is not None else ""
        text = (f"{self.label}[{'#' * done}{'.' * (width - done)}] {self.unit} {generation}/{self.total} · ETA {_duration(left)}"
                f" · {summary}{evaluated}")
        self.stream.write("\r\x1b[2K" + text)
        self.stream.flush()
        self._drawn = True

    def chunk(self, line: str) -> None:
        """At each chunk end: the plain progress line (kept above the bar in a terminal)."""
        self._line(line)

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def _line(self, text: str) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[2K")
            self._drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
