"""metarl: discover parts of RL algorithms (objectives, curricula, shaping) with JAX."""

__version__ = "0.1.0"
