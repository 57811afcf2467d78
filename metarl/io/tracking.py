"""Optional experiment tracking: the one module that imports wandb or tensorboardX.

A run's own files (``config.json``, ``metrics.jsonl``) stay the source of truth; a tracker only mirrors
the rows logged to it, and only their finite scalar numbers (lists, strings, NaN and inf are skipped).

- ``none``: a no-op tracker; imports nothing.
- ``wandb``: imported when a tracker is opened. The mode is ``$WANDB_MODE`` if set, else ``online``
  when ``$WANDB_API_KEY`` is set, else ``offline``; files go under the run folder (``<run>/wandb``,
  upload an offline run later with ``wandb sync``). If ``wandb.init`` fails (no network, bad key), the
  tracker falls back to offline mode.
- ``tensorboard``: a tensorboardX ``SummaryWriter`` on ``<run>/tensorboard``, with the config as text.

:func:`check` is meant for config validation: it refuses an unknown tracker or a missing package with a
:class:`ConfigError` before anything runs. After that, tracking never stops a run: a tracker that fails
to open, log or close prints a warning on stderr and goes quiet.
"""

from __future__ import annotations

import importlib.util
import json
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from metarl.errors import ConfigError

TRACKERS = ("none", "wandb", "tensorboard")
# The module each tracker imports; it is also the name to pip install.
_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboardX"}


def _warn(message: str) -> None:
    print(f"metarl: tracking: {message}", file=sys.stderr)


def _installed(module: str) -> bool:
    if module in sys.modules:  # already imported (or blocked with None); find_spec fails on a module without __spec__
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def check(kind: str) -> None:
    """Raise :class:`ConfigError` unless ``kind`` is a known tracker whose package can be imported."""
    if kind not in TRACKERS:
        raise ConfigError(f"track: unknown tracker {kind!r}; choose one of {', '.join(TRACKERS)}")
    package = _PACKAGES.get(kind)
    if package is not None and not _installed(package):
        raise ConfigError(f"track: tracker {kind!r} needs the {package} package, which is not installed; "
                          f"run `pip install {package}`, or choose --track none")


def scalars(row: Mapping[str, Any]) -> dict[str, int | float]:
    """The finite real numbers of ``row`` (Python or NumPy ints and floats) as Python numbers; bools are left out."""
    out: dict[str, int | float] = {}
    for key, value in row.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue  # numpy registers its integer and float types as numbers.Real; np.bool_ is not
        if isinstance(value, numbers.Integral):
            out[str(key)] = int(value)
        elif math.isfinite(value := float(value)):
            out[str(key)] = value
    return out


class Tracker:
    """Mirrors metric rows to a tracking service. This base class is the no-op ``none`` tracker."""

    kind = "none"

    def __init__(self) -> None:
        self._active = True

    def log(self, step: int, row: Mapping[str, Any]) -> None:
        """Send the finite scalar numbers of ``row`` at ``step``; everything else is skipped."""
        values = scalars(row)
        if values and self._active:
            self._guard("log", self._write, int(step), values)

    def close(self) -> None:
        if self._active:
            self._active = False
            self._guard("close", self._finish)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, step: int, values: dict[str, int | float]) -> None:
        pass

    def _finish(self) -> None:
        pass

    def _guard(self, what: str, action: Callable[..., None], *args: Any) -> None:
        try:
            action(*args)
        except Exception as error:  # a tracking failure must not end the run
            self._active = False
            _warn(f"{self.kind} {what} failed ({type(error).__name__}: {error}); tracking stops, the run goes on")


class _WandbTracker(Tracker):
    kind = "wandb"

    def __init__(self, run: Any) -> None:
        super().__init__()
        self._run = run

    def _write(self, step: int, values: dict[str, int | float]) -> None:
        self._run.log(values, step=step)

    def _finish(self) -> None:
        self._run.finish()


class _TensorboardTracker(Tracker):
    kind = "tensorboard"

    def __init__(self, writer: Any) -> None:
        super().__init__()
        self._writer = writer

    def _write(self, step: int, values: dict[str, int | float]) -> None:
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)

    def _finish(self) -> None:
        self._writer.flush()
        self._writer.close()


def wandb_mode() -> str:
    """``$WANDB_MODE`` if set, else ``online`` with an API key in the environment, else ``offline``."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def _reinit(version: str) -> bool | str:
    """wandb 0.19.10 renamed ``reinit=True`` to ``"finish_previous"`` and warns about the old spelling."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return True if match and tuple(map(int, match.groups())) < (0, 19, 10) else "finish_previous"


def _open_wandb(run_dir: Path, config: dict[str, Any], name: str, group: str | None) -> Tracker:
    import wandb

    kwargs = dict(project=os.environ.get("WANDB_PROJECT", "metarl"), name=name, group=group, config=config,
                  dir=str(run_dir), reinit=_reinit(getattr(wandb, "__version__", "")))
    mode = wandb_mode()
    try:
        return _WandbTracker(wandb.init(mode=mode, **kwargs))
    except Exception as error:
        if mode == "offline":
            raise
        _warn(f"wandb.init(mode={mode!r}) failed ({type(error).__name__}: {error}); falling back to mode='offline' "
              f"(upload later with `wandb sync {run_dir / 'wandb'}`)")
    return _WandbTracker(wandb.init(mode="offline", **kwargs))


def _open_tensorboard(run_dir: Path, config: dict[str, Any]) -> Tracker:
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(logdir=str(run_dir / "tensorboard"))
    writer.add_text("config", json.dumps(config, indent=2, sort_keys=True, default=str))
    return _TensorboardTracker(writer)


def open_tracker(kind: str, run_dir: Path, config: dict[str, Any], name: str, group: str | None = None) -> Tracker:
    """A tracker of ``kind`` for the run in ``run_dir``; use it as a context manager or call ``close``.

    Raises :class:`ConfigError` as :func:`check` does. A tracker that fails to open is replaced by the
    no-op tracker, with a warning on stderr.
    """
    check(kind)
    if kind == "none":
        return Tracker()
    run_dir = Path(run_dir)
    try:
        if kind == "wandb":
            return _open_wandb(run_dir, config, name, group)
        return _open_tensorboard(run_dir, config)
    except Exception as error:
        _warn(f"could not open the {kind} tracker ({type(error).__name__}: {error}); the run goes on without it")
        return Tracker()
