"""The outer-loop interface: ``init(key, η0) -> state``, ``step(state, key) -> (state, metrics)``, ``params(state) -> η``.

ES (``metarl.meta.outer``) and, later, meta-gradients implement it; the driver (``metarl.meta.run``)
only uses these three functions, so checkpoints, resume, progress and results are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class OuterLoop(NamedTuple):
    init: Callable[[Any, Any], Any]
    step: Callable[[Any, Any], tuple[Any, dict[str, Any]]]
    params: Callable[[Any], Any]
