"""Learned components as small self-describing files.

``<name>.msgpack`` holds ``{format, family, name, kwargs, params, metadata}``: enough to rebuild the
component through its registry (``family`` names the registry, ``name`` the entry, ``kwargs`` the factory
arguments) and to check the parameters' shapes against a fresh ``init``. A ``.json`` sidecar repeats
everything but the arrays, for people and for `git diff`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from flax import serialization

from metarl.errors import LearnedFileError

FORMAT = "metarl.learned/1"


class LearnedComponent(NamedTuple):
    family: str
    name: str
    kwargs: dict[str, Any]
    params: Any
    metadata: dict[str, Any]


def _shapes(tree) -> Any:
    return jax.tree.map(lambda x: list(np.shape(x)), tree)


def save_learned(path: str | Path, component: LearnedComponent) -> Path:
    path = Path(path)
    if path.suffix != ".msgpack":
        path = path.with_suffix(".msgpack")
    path.parent.mkdir(parents=True, exist_ok=True)
    params = jax.tree.map(np.asarray, component.params)
    payload = {
        "format": FORMAT,
        "family": component.family,
        "name": component.name,
        "kwargs": json.dumps(component.kwargs, sort_keys=True),
        "metadata": json.dumps(component.metadata, sort_keys=True),
        "params": serialization.to_state_dict(params),
    }
    tmp = path.with_suffix(".msgpack.tmp")
    tmp.write_bytes(serialization.msgpack_serialize(payload))
    tmp.replace(path)
    sidecar = {k: v for k, v in component._asdict().items() if k != "params"}
    sidecar.update(format=FORMAT, param_shapes=_shapes(params))
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def load_learned(path: str | Path, family: str) -> LearnedComponent:
    """Read a learned file, checking its format and family."""
    path = Path(path)
    if not path.is_file():
        raise LearnedFileError(f"learned file {str(path)!r} does not exist")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # msgpack raises several types for corrupt data
        raise LearnedFileError(f"{path}: not a metarl learned file ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise LearnedFileError(f"{path}: expected format {FORMAT!r}, found {found!r}")
    if payload["family"] != family:
        raise LearnedFileError(f"{path}: expected a learned {family}, found a learned {payload['family']}")
    return LearnedComponent(
        family=payload["family"],
        name=payload["name"],
        kwargs=json.loads(payload["kwargs"]),
        params=payload["params"],
        metadata=json.loads(payload["metadata"]),
    )


def check_params_like(path: str | Path, params: Any, reference: Any) -> Any:
    """Return ``params`` restored into the structure of ``reference``; raise naming both shapes if they differ."""
    expected, found = _shapes(reference), _shapes(params)
    if jax.tree.structure(expected) != jax.tree.structure(found) or expected != found:
        raise LearnedFileError(f"{path}: parameter shapes differ from the objective's: expected {expected}, found {found}")
    return serialization.from_state_dict(reference, jax.tree.map(np.asarray, params))
