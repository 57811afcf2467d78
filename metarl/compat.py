"""Defaults that changed after runs and learned files were stored, in one leaf module (imported by the
config, for run identities, and by the objective registry, for old learned files)."""

from __future__ import annotations

# {objective: {factory argument: (the value older runs and files had, the default now)}}
OBJECTIVE_DEFAULT_CHANGES = {
    # the exact mirror-learning parameterization became the default; then the context features (n/N, log N)
    # were centered and scaled to the base features' range
    "lpo": {"mirror": (False, True)},  # (scaled_context changes nothing without progress: not recorded for lpo)
    "ta_lpo": {"mirror": (False, True), "scaled_context": (False, True)},
}
