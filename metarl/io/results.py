"""Run folders: ``config.json`` (config + the exact command), ``metrics.jsonl`` (one row per step)."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import shlex
import shutil
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from metarl.errors import ConfigError, StorageError
from metarl.io.lock import hold, is_lock_file

_PACKAGES = ("metarl", "jax", "jaxlib", "flax", "optax", "chex", "evosax", "gymnax", "orbax-checkpoint")


# What the storage refuses: full, over quota, read-only, a file too large, an I/O error. Not a missing file or a
# refused connection (an OSError too, but no write the disk failed).
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO)


def disk_error(error: BaseException) -> OSError | None:
    """The storage failure behind ``error`` (itself or in its cause / context chain): an OSError with one of
    :data:`STORAGE_ERRNOS`, or one rebuilt from a storage library's message that only quotes it (tensorstore reports a
    full disk as a ValueError naming ENOSPC). None for anything else."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and not isinstance(error, StorageError) and error.errno in STORAGE_ERRNOS:
            return error
        text = str(error)
        for code in STORAGE_ERRNOS:
            if os.strerror(code) in text:
                return OSError(code, os.strerror(code))
        error = error.__cause__ or error.__context__
    return None


@contextlib.contextmanager
def writing(folder: str | Path, intact: str = "what was written before is intact") -> Iterator[None]:
    """Writes into ``folder``: a failure of the disk (full, over quota, read-only, :data:`STORAGE_ERRNOS`, also from
    inside a storage library) becomes one :class:`StorageError` naming the folder, the reason and what is intact, instead of a
    library's traceback. Anything else passes through."""
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        cause = disk_error(error)
        if cause is None:
            raise
        reason = cause.strerror or str(cause)
        raise StorageError(f"could not write to {folder}: {reason}; {intact}. Free space (or fix the folder) and run the "
                           "same command again to resume") from error


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def prepare_run_dir(parent: str | Path, name: str, *, force: bool = False):
    """Lock ``parent/name`` for this process (:mod:`metarl.io.lock`), then refuse to overwrite an earlier
    run's files unless ``force``. Returns ``(run_dir, lock)``; the caller releases the lock when done."""
    run_dir = Path(parent) / name
    lock = hold(run_dir)  # before anything in the folder is read or written
    try:
        if run_files(run_dir):
            if not force:
                raise ConfigError(
                    f"out: run folder {str(run_dir)!r} already holds an earlier run; pass --force to overwrite it, "
                    f"or --name to choose another folder"
                )
            clear_run_dir(run_dir)
    except BaseException:
        lock.release()
        raise
    return run_dir, lock


def run_files(run_dir: Path) -> list[Path]:
    """What a run folder holds besides its lock file."""
    return [p for p in run_dir.iterdir() if not is_lock_file(p)] if run_dir.is_dir() else []


def clear_run_dir(run_dir: Path) -> None:
    """Delete a run folder's contents, keeping the lock file this process holds."""
    for path in run_files(run_dir):
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def write_config(run_dir: Path, config: dict[str, Any], command: list[str] | None = None, *, kind: str,
                 **extra: Any) -> Path:
    """``config.json``: the run's kind (train, meta-train, eval), the command as typed (`metarl <args>`),
    the full config, package versions, and any ``extra`` top-level fields."""
    command = sys.argv if command is None else command
    payload = {
        "kind": kind,
        "command": shlex.join(["metarl", *command[1:]]),
        "config": config,
        "versions": package_versions(),
        **extra,
    }
    path = run_dir / "config.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; null reads back as "no value"
    return value


def write_metrics(run_dir: Path, rows: Iterable[dict[str, Any]], *, append: bool = False) -> Path:
    path = run_dir / "metrics.jsonl"
    with path.open("a" if append else "w") as handle:
        for row in rows:
            handle.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
    return path


def read_index(path: str | Path) -> list[dict[str, str]]:
    """A sweep's index.csv (metarl.app.sweep writes it, metarl.app.plots reads it)."""
    with Path(path).open() as handle:
        return list(csv.DictReader(handle))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    with (Path(run_dir) / "metrics.jsonl").open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
