"""Which half of a learned LPO with a learned step size wins: its drift or its step-size schedule?

    python experiments/step_ablation.py results/minatar_cpu/lpo_step10_g48_s0 [RUN ...]

For each meta-training run folder (an LPO learned with ``objective_kwargs.learned_step``), writes two learned files
beside its own, in ``<run>/ablation/``:

- ``schedule_only.msgpack``: PPO's clipped objective (LPO with ``ppo_init``, the run's clip, no offset and a zero
  learned term: PPO's drift exactly) trained under the run's learned step-size schedule;
- ``drift_only.msgpack``: the run's learned drift at the recipe's step size (log_step set to 0).

Evaluated beside the run's own file and PPO at the same inner settings (a `metarl eval` stage in the run's sweep, on
validation seeds), the three say how much of the gain each half carries. Nothing is trained here; the files are
derived from the run's learned file alone, and the file's metadata names the source.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

from metarl import objectives


def ablations(learned_path: Path) -> dict[str, tuple[dict, dict]]:
    """``{name: (objective_kwargs, meta_params)}`` of the two halves of an LPO file with a learned step size."""
    objective, params, kwargs = objectives.load(learned_path)
    if objective.name != "lpo" or not kwargs.get("learned_step"):
        raise SystemExit(f"{learned_path}: an LPO learned with objective_kwargs.learned_step is needed "
                         f"(got {objective.name} with {kwargs})")
    schedule_kwargs = {**kwargs, "ppo_init": True, "offset": 0.0}
    schedule_kwargs.setdefault("clip_eps", 0.2)
    zero_drift = jax.tree.map(jnp.zeros_like, {k: v for k, v in params.items() if k != "log_step"})
    return {
        "schedule_only": (schedule_kwargs, {**zero_drift, "log_step": jnp.asarray(params["log_step"])}),
        "drift_only": (dict(kwargs), {**params, "log_step": jnp.zeros_like(jnp.asarray(params["log_step"]))}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="meta-training run folders (each with learned/lpo.msgpack)")
    args = parser.parse_args()
    for run in map(Path, args.runs):
        source = run / "learned" / "lpo.msgpack"
        for name, (kwargs, params) in ablations(source).items():
            path = objectives.save(run / "ablation" / f"{name}.msgpack", "lpo", kwargs, params,
                                   {"ablation_of": str(source), "ablation": name})
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
