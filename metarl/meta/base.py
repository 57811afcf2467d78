"""The outer-loop interface, and what an outer loop is built from.

An outer loop is made by ``make(config, problem) -> OuterLoop`` (one module per loop, registered in
:mod:`metarl.meta.registry` with its config class). The driver (:mod:`metarl.meta.run`) uses nothing else: it
jits ``step``, reads :class:`OuterStatus` to derive keys and to stop a run that learns nothing, writes the
metrics rows and ``describe``'s progress text, checkpoints the state and exports ``params(state)``; so
checkpoints, resume, progress, results and the verdict are the same for every loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Problem(NamedTuple):
    """What every outer loop optimizes, built once per run before anything is written."""

    objective: Any  # metarl.objectives.Objective
    env_specs: list  # per env of the task distribution: metarl.envs.EnvSpec
    components: list  # per env: metarl.components.Components (curriculum, shaping, heuristic and their initial η)
    meta_params: Any  # η0: a MetaParams {objective, curriculum, shaping}, the solution's shape


class OuterStatus(NamedTuple):
    """What the driver reads from a loop's state."""

    generation: Any  # int32: outer steps done (the step key is folded from it, so a resumed run is bit-identical)
    nonfinite_streak: Any  # int32: consecutive steps that learned nothing because every signal was non-finite


class OuterLoop(NamedTuple):
    """``init(key, η0) -> state``; ``step(state, key, references, hparams=None) -> (state, metrics)`` (jitted by
    the driver; ``references``: the run's normalization, metarl.meta.tasks.References; ``hparams``: this
    loop's traced numbers, None for the config's; ``metrics``: scalars, one metrics-row column each, plus
    optionally ``env_scores`` (E,), written as ``score/<env>``); ``params(state) -> η``;
    ``status(state) -> OuterStatus``;
    ``describe(metrics row) -> (summary, warning)``: the progress text, e.g. ("fitness mean 0.8 max 1.1", "").

    ``hparams``: the numbers runs stepped together may differ in (the config fields its
    ``OuterConfig.batched_fields`` names), as a pytree of arrays; None: the loop's runs cannot be stepped
    together. ``mesh``: the device mesh the state lives on (None: the first local device)."""

    init: Callable[[Any, Any], Any]
    step: Callable[..., tuple[Any, dict[str, Any]]]
    params: Callable[[Any], Any]
    status: Callable[[Any], OuterStatus]
    describe: Callable[[dict[str, float]], tuple[str, str]]
    max_nonfinite: int = 3
    nonfinite_what: str = "every member's fitness was"
    unit: str = "gen"
    hparams: Any = None
    mesh: Any = None


def default_status(state) -> OuterStatus:
    """For a state with ``generation`` and ``nonfinite_streak`` fields."""
    return OuterStatus(state.generation, state.nonfinite_streak)
