"""The one module that imports orbax: checkpoints of the full outer-loop state, checked on restore.

Each step holds the state's arrays (orbax ``StandardSave``) and a JSON record with the SHA-256 of those
arrays and the hash of the run's config. Orbax does not notice flipped bits in array data, so
:meth:`Checkpoints.restore_latest` recomputes the hash and falls back to the previous checkpoint when it
differs; a checkpoint of another config is refused with the differing fields named. An interrupted save
leaves a temporary folder that orbax ignores, so the previous checkpoint is used.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from metarl.errors import ConfigError


def tree_sha256(tree: Any) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in tree order."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        array = np.asarray(leaf)
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def config_hash(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def differing_fields(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two nested config dicts."""
    names = []
    for key in sorted(set(stored) | set(current)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += differing_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key} (checkpoint: {a!r}, now: {b!r})")
    return names


def check_same_config(stored: dict[str, Any], current: dict[str, Any], where: str) -> None:
    if config_hash(stored) != config_hash(current):
        fields = differing_fields(stored, current)
        raise ConfigError(
            f"{where} was written by a different config; differing fields: {'; '.join(fields)}. "
            f"Pass --force to start fresh, or --name to write a new run folder."
        )


class Checkpoints:
    """Checkpoints of one run, in ``directory``, keeping the newest ``keep``."""

    def __init__(self, directory: str | Path, identity: dict[str, Any], keep: int = 3):
        self.directory = Path(directory).resolve()
        self.identity = identity
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocp.checkpoint_managers.LatestN(n=keep),
            enable_async_checkpointing=False,
            create=True,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, step: int, state: Any, extra: dict[str, Any] | None = None) -> None:
        state = jax.tree.map(np.asarray, state)
        record = {"sha256": tree_sha256(state), "config_hash": config_hash(self.identity), "config": self.identity,
                  "step": step, **(extra or {})}
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(record)))
        self.manager.wait_until_finished()

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def restore_latest(self, template: Any) -> tuple[int, Any, dict[str, Any]] | None:
        """Newest checkpoint whose arrays match their stored hash, or None if there is none."""
        template = jax.tree.map(np.asarray, template)
        for step in reversed(self.steps()):
            try:
                restored = self.manager.restore(
                    step, args=ocp.args.Composite(state=ocp.args.StandardRestore(template), record=ocp.args.JsonRestore())
                )
            except Exception as error:  # an unreadable checkpoint: say so and use the previous one
                print(f"checkpoint {step}: unreadable ({type(error).__name__}: {error}); using the previous one", file=sys.stderr)
                continue
            record = restored["record"]
            check_same_config(record["config"], self.identity, f"checkpoint {step} in {self.directory}")
            if tree_sha256(restored["state"]) != record["sha256"]:
                print(f"checkpoint {step}: arrays do not match their stored SHA-256 (corrupt); using the previous one",
                      file=sys.stderr)
                continue
            return step, restored["state"], record
        return None

    def close(self) -> None:
        self.manager.close()
