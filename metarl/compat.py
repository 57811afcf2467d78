"""Defaults that changed after runs and learned files were stored, in one leaf module (imported by the
config, for run identities, and by the objective registry, for old learned files)."""

from __future__ import annotations

# {objective: {factory argument: (the value older runs and files had, the default now)}}
OBJECTIVE_DEFAULT_CHANGES = {
    "lpo": {"mirror": (False, True)},  # the exact mirror-learning parameterization became the default
    "ta_lpo": {"mirror": (False, True)},
}
