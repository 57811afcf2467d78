"""What reading the stored runs and learned files of older metarl versions needs, in one leaf module: defaults
that changed after they were stored (imported by the config, for run identities, and by the objective registry,
for old learned files). A test loads every committed run folder (tests/test_sweep.py)."""

from __future__ import annotations

# {objective: {factory argument: (the value older runs and files had, the default now)}}
OBJECTIVE_DEFAULT_CHANGES = {
    # the exact mirror-learning parameterization became the default; then the context features (n/N, log N)
    # were centered and scaled to the base features' range
    "lpo": {"mirror": (False, True)},  # (scaled_context changes nothing without progress: not recorded for lpo)
    "ta_lpo": {"mirror": (False, True), "scaled_context": (False, True)},
}

# Fields added after runs were stored, with the value that reproduces what those runs did: a run whose
# field has that value keeps the identity (checkpoint hash) it had before the field existed. (Identities name
# the outer loop's settings by the loop, "es" / "metagrad", as runs were hashed before `outer` became one field.)
LEGACY_IDENTITY = {"es.adam_b1": 0.9, "es.sigma_floor": 0.0, "es.lr_floor": 0.0, "tasks.reference_seeds": 4,
                   "metagrad.max_nonfinite_generations": 3, "init_from": None,
                   "tasks.lifetime_strata": 1, "tasks.seed_statistic": "mean"}
