"""Pure single-stream RL building blocks (time-major arrays; callers vmap)."""
