"""Analyses of discovered components (STARC distance of a shaping to the env reward)."""
