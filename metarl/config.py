"""Frozen, validated configuration.

Everything that fixes array shapes (numbers of envs, steps, updates, network sizes) lives here and is
static under ``jit``. Everything one may vmap, differentiate or evolve (meta-parameters, the task, the
key) is an argument of ``train`` instead. ``validate()`` raises :class:`ConfigError` naming the field and
the allowed values, and is called before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from metarl.compat import LEGACY_IDENTITY, OBJECTIVE_DEFAULT_CHANGES
from metarl.errors import ConfigError

# Flags win; then metarl's variables; then jax's own (what `jax.distributed.initialize` reads itself).
_ENV = {
    "coordinator": ("METARL_COORDINATOR", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("METARL_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("METARL_PROCESS_ID", "JAX_PROCESS_ID"),
}


@dataclass(frozen=True)
class DistributedConfig:
    """Several processes (hosts) running one meta-training run. Every process runs the same command; each
    evaluates its share of the population, process 0 writes logs and results, all take part in checkpoints."""

    coordinator: str | None = None
    """host:port of process 0 (env: METARL_COORDINATOR or JAX_COORDINATOR_ADDRESS); 'auto': let jax detect a
    cluster (SLURM, Open MPI, ...). Unset: one process."""
    num_processes: int = 0
    """Number of processes (env: METARL_NUM_PROCESSES or JAX_NUM_PROCESSES)."""
    process_id: int = -1
    """This process's id, 0 .. num_processes - 1 (env: METARL_PROCESS_ID or JAX_PROCESS_ID)."""
    heartbeat_timeout: int = 30
    """Seconds without a peer's heartbeat after which the other processes stop (non-zero exit) instead of waiting."""

    def resolved(self) -> DistributedConfig:
        """Unset fields filled from the environment."""
        values = {}
        for name, variables in _ENV.items():
            value = getattr(self, name)
            if value in (None, 0, -1):
                found = next((os.environ[v] for v in variables if os.environ.get(v)), None)
                if found is not None:
                    try:
                        value = found if name == "coordinator" else int(found)
                    except ValueError:
                        raise ConfigError(f"distributed.{name}: environment variable has {found!r}, not an integer") from None
            values[name] = value
        return DistributedConfig(**values, heartbeat_timeout=self.heartbeat_timeout)

    @property
    def active(self) -> bool:
        return self.coordinator is not None

    def validate(self) -> DistributedConfig:
        config = self.resolved()
        if not config.active:
            return config
        if config.coordinator != "auto":
            host, _, port = config.coordinator.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"distributed.coordinator: must be host:port (or 'auto'), got {config.coordinator!r}")
            if config.num_processes < 1:
                raise ConfigError("distributed.num_processes: must be >= 1 with a coordinator "
                                  f"(flag or METARL_NUM_PROCESSES), got {config.num_processes}")
            if not 0 <= config.process_id < config.num_processes:
                raise ConfigError(f"distributed.process_id: must be in 0..{config.num_processes - 1}, got {config.process_id}")
        if config.heartbeat_timeout < 1:
            raise ConfigError(f"distributed.heartbeat_timeout: must be >= 1 second, got {config.heartbeat_timeout}")
        return config


NetworkKind = Literal["auto", "mlp", "cnn"]
Activation = Literal["tanh", "relu"]


def _require(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{field_name}: {message}")


def _positive_int(value: Any, field_name: str) -> None:
    _require(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        field_name,
        f"must be a positive integer, got {value!r}",
    )


def _finite(value: Any, field_name: str) -> None:
    _require(
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
        field_name,
        f"must be a finite number, got {value!r}",
    )


@dataclass(frozen=True)
class PPOConfig:
    """The inner agent: a PPO-style actor-critic whose policy loss comes from the objective."""

    num_envs: int = 4
    """Parallel environments per agent."""
    num_steps: int = 128
    """Rollout length per environment per update."""
    total_timesteps: int = 500_000
    """Environment steps per lifetime; the number of updates N is total_timesteps // (num_envs * num_steps)."""
    update_epochs: int = 4
    """Passes over each rollout batch."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide num_envs * num_steps."""
    gamma: float = 0.99
    """Discount factor, in (0, 1]."""
    gae_lambda: float = 0.95
    """GAE lambda, in [0, 1]."""
    lr: float = 2.5e-4
    """Adam learning rate (> 0)."""
    anneal_lr: bool = True
    """Linearly anneal the learning rate to 0 over the lifetime N."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (> 0)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (>= 0)."""
    vf_coef: float = 0.5
    """Value-loss coefficient (>= 0)."""
    value_clip_eps: float = 0.2
    """PPO-style value clipping range; 0 disables it."""
    normalize_advantages: bool = True
    """Normalize advantages per minibatch (LPO's features assume it)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (not for logged returns)."""
    network: NetworkKind = "auto"
    """Torso: 'mlp', 'cnn' (MinAtar-style conv), or 'auto' (cnn for image observations, else mlp)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the MLP (and of the head after the conv torso, first entry)."""
    activation: Activation = "tanh"
    """Hidden activation."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def num_updates(self) -> int:
        """Lifetime N: the number of agent updates."""
        return self.total_timesteps // self.batch_size

    def validate(self) -> PPOConfig:
        for name in ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches"):
            _positive_int(getattr(self, name), f"ppo.{name}")
        _require(
            self.batch_size % self.num_minibatches == 0,
            "ppo.num_minibatches",
            f"must divide num_envs * num_steps = {self.num_envs} * {self.num_steps} = {self.batch_size}, "
            f"got {self.num_minibatches}",
        )
        _require(
            self.total_timesteps >= self.batch_size,
            "ppo.total_timesteps",
            f"must be at least num_envs * num_steps = {self.batch_size} (one update), got {self.total_timesteps}",
        )
        for name in ("gamma", "gae_lambda", "lr", "max_grad_norm", "ent_coef", "vf_coef", "value_clip_eps", "reward_scale"):
            _finite(getattr(self, name), f"ppo.{name}")
        _require(0.0 < self.gamma <= 1.0, "ppo.gamma", f"must be in (0, 1], got {self.gamma}")
        _require(0.0 <= self.gae_lambda <= 1.0, "ppo.gae_lambda", f"must be in [0, 1], got {self.gae_lambda}")
        _require(self.lr > 0, "ppo.lr", f"must be > 0, got {self.lr}")
        _require(self.max_grad_norm > 0, "ppo.max_grad_norm", f"must be > 0, got {self.max_grad_norm}")
        for name in ("ent_coef", "vf_coef", "value_clip_eps"):
            _require(getattr(self, name) >= 0, f"ppo.{name}", f"must be >= 0, got {getattr(self, name)}")
        _require(self.reward_scale > 0, "ppo.reward_scale", f"must be > 0, got {self.reward_scale}")
        _require(
            self.network in ("auto", "mlp", "cnn"),
            "ppo.network",
            f"must be one of 'auto', 'mlp', 'cnn', got {self.network!r}",
        )
        _require(self.activation in ("tanh", "relu"), "ppo.activation", f"must be 'tanh' or 'relu', got {self.activation!r}")
        _require(
            len(self.hidden_sizes) > 0 and all(isinstance(h, int) and h > 0 for h in self.hidden_sizes),
            "ppo.hidden_sizes",
            f"must be a non-empty tuple of positive integers, got {self.hidden_sizes!r}",
        )
        return self


def _json_object(text: str, field_name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{field_name}: must be a JSON object, got {text!r} ({error})") from None
    _require(isinstance(value, dict), field_name, f"must be a JSON object, got {text!r}")
    return value


class _PluginConfig:
    """What curriculum and shaping configs share: a registry name ("none": off), JSON kwargs, a learned file."""

    family = ""

    @property
    def active(self) -> bool:
        return self.name != "none" or self.file is not None

    def kwargs_dict(self) -> dict[str, Any]:
        return _json_object(self.kwargs, f"{self.family}.kwargs")

    def _check_file(self) -> bool:
        """Validate the kwargs and the learned file; True when a file is given (it fixes everything else)."""
        self.kwargs_dict()
        if self.file is not None:
            _require(Path(self.file).is_file(), f"{self.family}.file", f"learned file {self.file!r} does not exist")
        return self.file is not None


@dataclass(frozen=True)
class CurriculumConfig(_PluginConfig):
    """Which levels each update trains on (envs with a level space: Maze-levels, CartPole-levels)."""

    family = "curriculum"

    name: str = "none"
    """none (the task's own level), uniform, hardest, sec, plr, learnability, learned (see `metarl list`)."""
    kwargs: str = "{}"
    """JSON object of the sampler's arguments, e.g. '{"temperature": 0.2}' (sec) or '{"progress": false}' (learned)."""
    file: str | None = None
    """A learned-curriculum file (.msgpack) written by meta-train; sets name, kwargs and its meta-parameters."""

    def validate(self) -> CurriculumConfig:
        """The kwargs and the learned file; the name is looked up by :func:`metarl.checks.validate`."""
        self._check_file()
        return self


@dataclass(frozen=True)
class ShapingConfig(_PluginConfig):
    """The reward the agent learns from: the env reward blended with a heuristic's auxiliary reward."""

    family = "shaping"

    name: str = "none"
    """none, naive, potential, blend (BARFI-style), learned (see `metarl list`)."""
    heuristic: str = "none"
    """Auxiliary reward: none, goal_distance, center (mazes), pd_good, pd_bad (CartPole)."""
    kwargs: str = "{}"
    """JSON object of the shaping's arguments, e.g. '{"weight": 0.5}' (naive) or '{"progress": false}' (learned)."""
    file: str | None = None
    """A learned-shaping file (.msgpack) written by meta-train; sets name, heuristic, kwargs and its meta-parameters."""

    def validate(self) -> ShapingConfig:
        """The kwargs and the learned file; names are looked up by :func:`metarl.checks.validate`."""
        self._check_file()
        return self


Tracker = Literal["none", "wandb", "tensorboard"]


@dataclass(frozen=True)
class TrainConfig:
    """One `metarl train` run: an agent trained with one objective on one env, over several seeds."""

    env: str = "CartPole-v1"
    """Environment id (see `metarl.envs.names()`)."""
    objective: str = "ppo"
    """Objective name (see `metarl.objectives.names()`); ignored when objective_file is given."""
    objective_kwargs: str = "{}"
    """JSON object of keyword arguments for the objective factory, e.g. '{"clip_eps": 0.1}'."""
    objective_file: str | None = None
    """A learned-objective file (.msgpack) written by metarl; sets the objective and its meta-parameters."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """Inner-agent settings."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Level sampler (envs with a level space)."""
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    """Reward shaping with a heuristic."""
    seed: int = 0
    """Base seed; seed i of num_seeds uses fold_in(PRNGKey(seed), i)."""
    num_seeds: int = 1
    """Independent agents trained together (vmapped; sharded over devices when more than one: must divide by their count)."""
    host_devices: int = 0
    """CPU only: XLA host devices to split the CPU into (0: one per core). Ignored on GPU."""
    track: Tracker = "none"
    """Mirror the metrics to an experiment tracker: none, wandb (offline unless WANDB_API_KEY or WANDB_MODE say otherwise),
    tensorboard (<run>/tensorboard). The run folder's files stay the record."""
    out: str = "results/train"
    """Parent folder of the run folder."""
    name: str | None = None
    """Run folder name (default: <env>_<objective>_s<seed>)."""
    force: bool = False
    """Overwrite an existing run folder."""

    def objective_kwargs_dict(self) -> dict[str, Any]:
        return _json_object(self.objective_kwargs, "objective_kwargs")

    @property
    def run_name(self) -> str:
        return self.name or f"{self.env}_{self.objective}_s{self.seed}"

    def validate(self) -> TrainConfig:
        self.ppo.validate()
        self.objective_kwargs_dict()
        self.curriculum.validate()
        self.shaping.validate()
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", f"must be a non-negative integer, got {self.seed!r}")
        _positive_int(self.num_seeds, "num_seeds")
        return self


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass; an outer loop's settings carry its ``name``."""
    values = dataclasses.asdict(config)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, OuterConfig):
            values[f.name] = {"name": value.name, **values[f.name]}
        elif dataclasses.is_dataclass(value):
            values[f.name] = to_dict(value)
    return values


FitnessShaping = Literal["centered_rank", "z_score", "pairwise_rank"]
FitnessScore = Literal["final_return", "last_k_mean", "auc", "heldout_return", "heldout_success"]
FITNESS_SCORES = ("final_return", "last_k_mean", "auc", "heldout_return", "heldout_success")
Statistic = Literal["iqm", "mean"]  # what a verdict compares over seeds: metarl.stats.STATISTICS (a test keeps them one list)
STATISTIC_NAMES: tuple[str, ...] = get_args(Statistic)
HELDOUT_SCORES = ("heldout_return", "heldout_success")


@dataclass(frozen=True)
class OuterConfig:
    """Base of every outer loop's settings. ``name`` is the loop's registry name (metarl.meta.registry); a run's
    ``outer`` field holds one of these, and its stored config names the loop. Subclasses are frozen
    dataclasses whose fields all have defaults, with a ``validate()`` that returns self."""

    name: ClassVar[str] = ""
    batched_fields: ClassVar[tuple[str, ...]] = ()
    """Fields (dotted, from the run's config) in which runs may differ and still be stepped together, one
    vmapped step for all: the numbers the loop takes as traced ``OuterLoop.hparams``."""

    def validate(self) -> OuterConfig:
        return self


@dataclass(frozen=True)
class ESConfig(OuterConfig):
    """The evolution-strategies outer loop (evosax 0.3)."""

    name: ClassVar[str] = "es"
    batched_fields: ClassVar[tuple[str, ...]] = ("outer.sigma", "outer.lr", "ppo.lr", "ppo.ent_coef")

    algorithm: str = "Open_ES"
    """evosax algorithm by name (Open_ES, SNES, CMA_ES, PGPE, ... see `metarl list`)."""
    population_size: int = 16
    """Members per generation; even with antithetic sampling, and divisible by the device count."""
    sigma: float = 0.03
    """Initial search standard deviation (> 0)."""
    sigma_decay: float = 1.0
    """Per-generation multiplicative decay of sigma (Open_ES), in (0, 1]."""
    sigma_floor: float = 0.0
    """Lowest value sigma decays to (0: no floor; the anchors' LPO and DPO use 0.01), in [0, sigma]."""
    lr: float = 0.03
    """Meta learning rate of the ES optimizer (> 0; Open_ES, PGPE, SNES, ...)."""
    lr_decay: float = 1.0
    """Per-generation multiplicative decay of the meta learning rate, in (0, 1]."""
    lr_floor: float = 0.0
    """Lowest value the meta learning rate decays to (0: no floor; the anchors' LPO and DPO use 1e-3), in [0, lr]."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """optax optimizer for algorithms that take one."""
    adam_b1: float = 0.9
    """Adam's first-moment decay β1 for the ES optimizer, in [0, 1) (the anchors' ES used 0.99)."""
    fitness_shaping: FitnessShaping = "centered_rank"
    """centered_rank, z_score, or pairwise_rank (antithetic pairs: winner +0.5, loser -0.5)."""
    antithetic: bool = True
    """Antithetic sampling; both members of a pair also get the same task (env lifetime and seeds)."""
    max_nonfinite_generations: int = 3
    """Stop after this many consecutive generations in which every member's fitness is non-finite."""

    def validate(self) -> ESConfig:
        _positive_int(self.population_size, "outer.population_size")
        if self.antithetic or self.fitness_shaping == "pairwise_rank":
            _require(
                self.population_size % 2 == 0,
                "outer.population_size",
                f"must be even with antithetic sampling / pairwise ranks (member i pairs with i + P/2), got {self.population_size}",
            )
        _require(
            not (self.fitness_shaping == "pairwise_rank" and not self.antithetic),
            "outer.fitness_shaping",
            "pairwise_rank needs outer.antithetic=True (it compares the two members of an antithetic pair)",
        )
        for name in ("sigma", "lr", "sigma_decay", "lr_decay"):
            _finite(getattr(self, name), f"outer.{name}")
            _require(getattr(self, name) > 0, f"outer.{name}", f"must be > 0, got {getattr(self, name)}")
        for name in ("sigma_decay", "lr_decay"):
            _require(getattr(self, name) <= 1, f"outer.{name}", f"must be in (0, 1], got {getattr(self, name)}")
        for name, start in (("sigma_floor", "sigma"), ("lr_floor", "lr")):
            floor = getattr(self, name)
            _finite(floor, f"outer.{name}")
            _require(0 <= floor <= getattr(self, start), f"outer.{name}",
                     f"must be in [0, outer.{start} = {getattr(self, start)}], got {floor}")
        _require(self.optimizer in ("adam", "sgd"), "outer.optimizer", f"must be 'adam' or 'sgd', got {self.optimizer!r}")
        _finite(self.adam_b1, "outer.adam_b1")
        _require(0.0 <= self.adam_b1 < 1.0, "outer.adam_b1", f"must be in [0, 1), got {self.adam_b1}")
        _require(
            self.fitness_shaping in ("centered_rank", "z_score", "pairwise_rank"),
            "outer.fitness_shaping",
            f"must be one of centered_rank, z_score, pairwise_rank; got {self.fitness_shaping!r}",
        )
        _positive_int(self.max_nonfinite_generations, "outer.max_nonfinite_generations")
        return self


@dataclass(frozen=True)
class MetaGradConfig(OuterConfig):
    """The meta-gradient outer loop: truncated backpropagation through K inner updates."""

    name: ClassVar[str] = "metagrad"

    num_agents: int = 8
    """Inner agents per env, each at its own point of its own lifetime; reset with a new task when it ends."""
    truncation: int = 5
    """K: inner updates differentiated through per outer step (the paper's baseline uses 5)."""
    lr: float = 1e-3
    """Meta learning rate (> 0)."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """optax meta-optimizer."""
    max_grad_norm: float = 1.0
    """Global-norm clip of the meta-gradient (> 0)."""
    max_nonfinite_generations: int = 3
    """Stop after this many consecutive steps whose meta-gradient is non-finite (each is skipped)."""

    def validate(self) -> MetaGradConfig:
        _positive_int(self.max_nonfinite_generations, "outer.max_nonfinite_generations")
        _positive_int(self.num_agents, "outer.num_agents")
        _positive_int(self.truncation, "outer.truncation")
        for name in ("lr", "max_grad_norm"):
            _finite(getattr(self, name), f"outer.{name}")
            _require(getattr(self, name) > 0, f"outer.{name}", f"must be > 0, got {getattr(self, name)}")
        _require(self.optimizer in ("adam", "sgd"), "outer.optimizer", f"must be 'adam' or 'sgd', got {self.optimizer!r}")
        return self


@dataclass(frozen=True)
class VerdictConfig:
    """The verdict at the end of meta-training (metarl.app.verdict): the discovered meta-parameters against PPO at
    the same inner settings and against tuned PPO, on seeds meta-training never used."""

    num_seeds: int = 32
    """Judging seeds, paired between the discovery and each baseline (0: no verdict)."""
    stream: Literal["validation", "test"] = "test"
    """Where the judging seeds come from: test for a final verdict (no design choice may look at it), validation
    for a design choice (recipe, ES settings, headroom, stopping a study early)."""
    equivalence_margin: float = 0.05
    """The difference the verdict calls negligible, in the score's units (normalized: 1 = PPO's reference gain):
    'equivalent' when the CI of the difference lies inside ±margin, 'inconclusive' when it is neither inside nor
    away from 0 (0: never 'equivalent')."""
    statistic: Statistic = "iqm"
    """The aggregate over the judging seeds that the verdict compares: iqm (the field's default) or mean, for a
    success-like score (heldout_return on a maze: a seed reaches the goal or does not) on which fewer than a quarter of
    the seeds succeed, where the IQM is 0 on both sides whatever the success rates. Choose it on validation seeds."""
    tuned: bool = True
    """Also compare against tuned PPO: the best cell of the grid below, picked on separate seeds."""
    selection_seeds: int = 16
    """Seeds on which tuned PPO's grid cell is picked (the selection stream, apart from the judging seeds)."""
    tuned_lrs: tuple[float, ...] = (0.001, 0.003, 0.01)
    """Tuned PPO's learning rates (where the grid starts)."""
    tuned_clips: tuple[float, ...] = (0.1, 0.2, 0.3)
    """Tuned PPO's clip ranges ε (where the grid starts)."""
    tuned_epochs: tuple[int, ...] = (2, 4)
    """Tuned PPO's epochs per update (where the grid starts)."""
    tuned_anneal: tuple[bool, ...] = (False, True)
    """Tuned PPO's learning-rate annealing (to 0 over the lifetime) or not."""
    tuned_extend: bool = True
    """Extend the grid along lr, clip ε or epochs while a best cell sits on that axis's edge (lr ×3 or ÷3, clip ±0.1,
    epochs ×2 or ÷2), until every best cell is interior or a bound below stops it; the store records the final grid."""
    tuned_lr_bounds: tuple[float, float] = (1e-5, 0.1)
    """Lowest and highest learning rate the extension may reach."""
    tuned_clip_bounds: tuple[float, float] = (0.05, 0.6)
    """Lowest and highest clip ε the extension may reach."""
    tuned_epochs_bounds: tuple[int, int] = (1, 16)
    """Fewest and most epochs the extension may reach."""
    transfer_envs: tuple[str, ...] = ()
    """Envs never seen in meta-training on which the discovery is also judged, each alone against its own PPO and
    tuned PPO, normalized by its own references (does it transfer?). A run on several envs is also judged on each
    of them alone, from the same scores."""

    def validate(self) -> VerdictConfig:
        _require(isinstance(self.num_seeds, int) and (self.num_seeds == 0 or self.num_seeds >= 2), "verdict.num_seeds",
                 f"must be 0 (off) or at least 2, got {self.num_seeds!r}")
        _require(self.stream in ("validation", "test"), "verdict.stream", f"must be 'validation' or 'test', got {self.stream!r}")
        _require(self.statistic in STATISTIC_NAMES, "verdict.statistic",
                 f"must be one of {', '.join(STATISTIC_NAMES)}; got {self.statistic!r}")
        _finite(self.equivalence_margin, "verdict.equivalence_margin")
        _require(self.equivalence_margin >= 0, "verdict.equivalence_margin", f"must be >= 0, got {self.equivalence_margin}")
        _require(isinstance(self.selection_seeds, int) and self.selection_seeds >= 2, "verdict.selection_seeds",
                 f"must be an integer >= 2, got {self.selection_seeds!r}")
        for name in ("tuned_lrs", "tuned_clips", "tuned_epochs", "tuned_anneal"):
            _require(len(getattr(self, name)) > 0, f"verdict.{name}", "must list at least one value")
        for lr in self.tuned_lrs:
            _finite(lr, "verdict.tuned_lrs")
            _require(lr > 0, "verdict.tuned_lrs", f"must be > 0, got {lr}")
        for clip in self.tuned_clips:
            _finite(clip, "verdict.tuned_clips")
            _require(0 < clip < 1, "verdict.tuned_clips", f"must be in (0, 1), got {clip}")
        for epochs in self.tuned_epochs:
            _positive_int(epochs, "verdict.tuned_epochs")
        for name, values, low_ok in (("tuned_lr_bounds", self.tuned_lrs, 0.0), ("tuned_clip_bounds", self.tuned_clips, 0.0),
                                     ("tuned_epochs_bounds", self.tuned_epochs, 1)):
            bounds = getattr(self, name)
            _require(len(bounds) == 2 and all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
                     and low_ok <= bounds[0] <= bounds[1], f"verdict.{name}",
                     f"must be two finite numbers low <= high (low >= {low_ok}), got {bounds!r}")
            if self.tuned_extend:
                _require(all(bounds[0] <= v <= bounds[1] for v in values), f"verdict.{name}",
                         f"must contain the grid's starting values {tuple(values)}, got {tuple(bounds)}")
        _require(self.tuned_clip_bounds[1] < 1, "verdict.tuned_clip_bounds", f"must stay below 1, got {self.tuned_clip_bounds}")
        _require(len(set(self.transfer_envs)) == len(self.transfer_envs), "verdict.transfer_envs",
                 f"names an env twice: {list(self.transfer_envs)}")
        return self


def store_folder(reference_store: str, out: str) -> str | None:
    """Where a command with ``--reference-store reference_store --out out`` keeps baseline measurements (None: nowhere).
    ``auto``: beside the run folders of a results tree (``results/references`` for ``out`` = ``results/NAME``), else
    inside ``out``: a run started anywhere writes nothing outside the folder it was given."""
    if reference_store != "auto":
        return reference_store or None
    out_path = Path(out)
    return str(out_path.parent / "references" if out_path.parent.name == "results" else out_path / "references")


@dataclass(frozen=True)
class TuningConfig:
    """Tuned PPO's grid where a command other than meta-train tunes it (``metarl eval --tuned-ppo``): the search of
    meta-train's verdict, per env and lifetime, with its ``--verdict.tuned-*`` flags under shorter names."""

    selection_seeds: int = VerdictConfig.selection_seeds
    """Seeds on which the cell is picked (the selection stream, apart from every judging seed)."""
    lrs: tuple[float, ...] = VerdictConfig.tuned_lrs
    """Learning rates (where the grid starts)."""
    clips: tuple[float, ...] = VerdictConfig.tuned_clips
    """Clip ranges ε (where the grid starts)."""
    epochs: tuple[int, ...] = VerdictConfig.tuned_epochs
    """Epochs per update (where the grid starts)."""
    anneal: tuple[bool, ...] = VerdictConfig.tuned_anneal
    """Learning-rate annealing to 0 over the lifetime, or not."""
    extend: bool = VerdictConfig.tuned_extend
    """Extend the grid along lr, clip ε or epochs while the best cell sits on that axis's edge, within the bounds."""
    lr_bounds: tuple[float, float] = VerdictConfig.tuned_lr_bounds
    clip_bounds: tuple[float, float] = VerdictConfig.tuned_clip_bounds
    epochs_bounds: tuple[int, int] = VerdictConfig.tuned_epochs_bounds

    def as_verdict(self) -> VerdictConfig:
        """The same grid as a VerdictConfig (what metarl.app.verdict.tuned_ppo reads)."""
        return VerdictConfig(selection_seeds=self.selection_seeds, tuned_lrs=tuple(self.lrs), tuned_clips=tuple(self.clips),
                             tuned_epochs=tuple(self.epochs), tuned_anneal=tuple(self.anneal), tuned_extend=self.extend,
                             tuned_lr_bounds=tuple(self.lr_bounds), tuned_clip_bounds=tuple(self.clip_bounds),
                             tuned_epochs_bounds=tuple(self.epochs_bounds))

    def validate(self) -> TuningConfig:
        try:
            self.as_verdict().validate()
        except ConfigError as error:  # name this config's flags, not the verdict's
            raise ConfigError(str(error).replace("verdict.tuned_", "tuning.").replace("verdict.", "tuning.")) from None
        return self


@dataclass(frozen=True)
class TaskDistribution:
    """What each member is trained on: envs x lifetimes x seeds."""

    envs: tuple[str, ...] = ("CartPole-v1",)
    """Environments; fitness is the mean over them (normalized when normalize=True)."""
    lifetimes: tuple[int, ...] = ()
    """Lifetimes N in agent updates (default: the PPO config's num_updates). Each must be <= it."""
    lifetime_sampling: Literal["choice", "log_uniform"] = "choice"
    """choice: uniform over `lifetimes`; log_uniform: log-uniform integer between min and max of `lifetimes`."""
    lifetime_strata: int = 1
    """log_uniform only: split min..max into this many equal log-width strata and give each the same share of the
    population, so every member still draws a log-uniform lifetime but each stratum's runs scan only to its own
    longest lifetime instead of the longest of all (updates past a member's N are masked, not skipped: on 2..128,
    three quarters of the scan). 1: one scan to ppo.num_updates for every member. ES only; members (pairs, when
    antithetic) must divide evenly."""
    seeds_per_member: int = 2
    """Agents trained per member and env (their scores are aggregated by seed_statistic; more seeds, less fitness noise)."""
    seed_statistic: Statistic = "mean"
    """How a member's score per env aggregates its seeds: mean, or iqm (needs seeds_per_member >= 4), the statistic the
    verdict compares by default. On a bimodal env (Acrobot: a few seeds never reach the goal) the mean rewards avoiding
    the rare failure, which the IQM of the judging seeds trims away; iqm makes the fitness see what the verdict sees."""
    fitness: FitnessScore = "auc"
    """auc (mean return over the lifetime: it sees the speed and the stability of learning, where the final return
    saturates, e.g. at CartPole's 500, and reads one rollout), final_return (last update of the lifetime),
    last_k_mean (mean of the last k updates),
    heldout_return / heldout_success (the final agent on the env's held-out levels; envs with a level space)."""
    last_k: int = 5
    """k for last_k_mean."""
    normalize: bool = True
    """Normalize each env's score as (R - R_init) / (R_ppo - R_init), with PPO references metarl measures and stores."""
    reference_seeds: int = 32
    """Seeds on which the normalization references (PPO at the longest lifetime, the untrained agent) are measured."""

    def lifetimes_for(self, ppo: PPOConfig) -> tuple[int, ...]:
        return self.lifetimes or (ppo.num_updates,)

    def validate(self, ppo: PPOConfig) -> TaskDistribution:
        _require(len(self.envs) > 0, "tasks.envs", "must name at least one env")
        for n in self.lifetimes:
            _positive_int(n, "tasks.lifetimes")
            _require(
                n <= ppo.num_updates,
                "tasks.lifetimes",
                f"{n} exceeds the PPO config's num_updates = {ppo.num_updates}; raise ppo.total_timesteps",
            )
        _require(
            self.lifetime_sampling in ("choice", "log_uniform"),
            "tasks.lifetime_sampling",
            f"must be 'choice' or 'log_uniform', got {self.lifetime_sampling!r}",
        )
        _positive_int(self.lifetime_strata, "tasks.lifetime_strata")
        if self.lifetime_strata > 1:
            lifetimes = self.lifetimes_for(ppo)
            _require(self.lifetime_sampling == "log_uniform", "tasks.lifetime_strata",
                     f"strata split a log-uniform range: needs tasks.lifetime_sampling log_uniform, got {self.lifetime_sampling!r}")
            _require(max(lifetimes) > min(lifetimes),
                     "tasks.lifetime_strata", f"needs a range of lifetimes to split, got {list(lifetimes)}")
        _positive_int(self.seeds_per_member, "tasks.seeds_per_member")
        _require(self.seed_statistic in STATISTIC_NAMES, "tasks.seed_statistic",
                 f"must be one of {', '.join(STATISTIC_NAMES)}; got {self.seed_statistic!r}")
        _require(self.seed_statistic != "iqm" or self.seeds_per_member >= 4, "tasks.seed_statistic",
                 f"iqm trims a quarter of a member's seeds from each side: needs tasks.seeds_per_member >= 4, "
                 f"got {self.seeds_per_member}")
        _require(self.fitness in FITNESS_SCORES, "tasks.fitness", f"must be one of {', '.join(FITNESS_SCORES)}; got {self.fitness!r}")
        _positive_int(self.last_k, "tasks.last_k")
        _positive_int(self.reference_seeds, "tasks.reference_seeds")
        return self



def objective_identity(objective: str, objective_kwargs: str) -> dict[str, Any]:
    """How a run's objective arguments enter its identity: an argument given at its old default counts as not
    given (as in the runs made before the change), one left at a changed default is recorded in
    ``objective_defaults`` (so such a run is not taken for an old one)."""
    changes = OBJECTIVE_DEFAULT_CHANGES.get(objective, {})
    given = _json_object(objective_kwargs, "objective_kwargs")
    kept = {k: v for k, v in given.items() if not (k in changes and v == changes[k][0])}
    identity: dict[str, Any] = {"objective_kwargs": objective_kwargs if kept == given else json.dumps(kept, sort_keys=True)}
    current = {k: now for k, (old, now) in changes.items() if k not in given}
    if current:
        identity["objective_defaults"] = current
    return identity


def _small_cartpole() -> PPOConfig:
    """The default recipe's inner loop (docs/design.md, "Why this default"): 64 updates of 4 x 128 CartPole steps at a
    large constant learning rate. At PPO's usual 2.5e-4 annealed to 0 the policy barely moves per update
    (KL ~ 8e-5, the clip active on ~4e-7 of samples): no drift can matter there, so nothing can be discovered."""
    return PPOConfig(total_timesteps=4 * 128 * 64, lr=0.01, anneal_lr=False)



@dataclass(frozen=True)
class MetaTrainConfig:
    """One `metarl meta-train` run: discover an objective's meta-parameters with ES or meta-gradients."""

    objective: str = "lpo"
    """Objective to meta-train (must have meta-parameters: lpo, ta_lpo, ...)."""
    objective_kwargs: str = "{}"
    """JSON object of objective factory arguments, e.g. '{"log_horizon": true}' (its horizon_range, the lifetimes
    log N is scaled over, defaults to the min and max of tasks.lifetimes)."""
    init_from: str | None = None
    """A learned objective file the search starts from instead of the objective's init: a file of the same
    objective, or an LPO file for ta_lpo (its drift exactly, the context weights zero; the warm start)."""
    ppo: PPOConfig = field(default_factory=_small_cartpole)
    """Inner-agent settings (shared by every env of the task distribution)."""
    tasks: TaskDistribution = field(default_factory=TaskDistribution)
    """The task distribution."""
    outer: OuterConfig = field(default_factory=ESConfig)
    """The outer loop and its settings: ESConfig (evolution strategies, evosax), MetaGradConfig (truncated
    meta-gradients, optax), or a registered plug-in's (metarl.meta.registry). On the command line:
    `outer:es --outer.sigma 0.1`, `outer:metagrad --outer.truncation 5` (see `metarl list`)."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """Level sampler; a learned one is evolved jointly with the objective (meta-parameters {objective, curriculum, shaping})."""
    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    """Reward shaping; a blend or learned one is evolved jointly. Fitness always reads the env reward."""
    num_generations: int = 30
    """Generations (outer steps) to run (a resumed run continues up to this number)."""
    chunk_size: int = 5
    """Generations between progress lines and checkpoints."""
    eval_seeds: int = 8
    """Seeds on which the current mean meta-parameters are evaluated at each chunk end (0: off)."""
    verdict: VerdictConfig = field(default_factory=VerdictConfig)
    """The held-out verdict printed and stored (summary.json) when the run ends."""
    reference_store: str = "auto"
    """Folder of stored baseline measurements (PPO references, PPO and tuned PPO on the judging seeds), reused by
    every run with an identical inner config. auto: the results tree's store for an ``out`` inside a folder named
    results (results/references for --out results/NAME, the committed one), else OUT/references, so nothing is written
    outside ``out``; '': measure every time, store nothing."""
    seed: int = 0
    """Seed of the whole run."""
    host_devices: int = 0
    """CPU only: XLA host devices to split the CPU into (0: one per core). Ignored on GPU."""
    population_chunk: int = 0
    """Members each device evaluates at once (0: chosen from a memory estimate; all at once when they fit).
    Smaller chunks trade speed for memory; the fitness values do not change."""
    track: Tracker = "none"
    """Mirror the metrics to an experiment tracker: none, wandb (offline unless WANDB_API_KEY or WANDB_MODE say otherwise),
    tensorboard (<run>/tensorboard). The run folder's files stay the record."""
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    """Several processes / hosts (jax.distributed): the same command on every host, each with its process id."""
    out: str = "results/meta_train"
    """Parent folder of the run folder."""
    name: str | None = None
    """Run folder name (default: <objective>_<envs>_s<seed>)."""
    force: bool = False
    """Delete an existing run folder and start fresh (default: resume it if its config matches)."""
    keep_checkpoints: int = 3
    """Checkpoints kept (the newest)."""

    def objective_kwargs_dict(self) -> dict[str, Any]:
        """The objective's arguments; with ``log_horizon`` (and scaled context) ``horizon_range`` defaults to the
        meta-training range of lifetimes, so the learned file records what log N was scaled over."""
        kwargs = TrainConfig(objective_kwargs=self.objective_kwargs).objective_kwargs_dict()
        if kwargs.get("log_horizon") and kwargs.get("scaled_context", True) and "horizon_range" not in kwargs:
            lifetimes = self.tasks.lifetimes_for(self.ppo)
            kwargs["horizon_range"] = [min(lifetimes), max(lifetimes)]
        return kwargs

    @property
    def run_name(self) -> str:
        return self.name or f"{self.objective}_{'+'.join(self.tasks.envs)}_s{self.seed}"

    def validate(self) -> MetaTrainConfig:
        """What the config says on its own; the names it gives are looked up by :func:`metarl.checks.validate`."""
        self.ppo.validate()
        self.tasks.validate(self.ppo)
        self.curriculum.validate()
        self.shaping.validate()
        self.objective_kwargs_dict()
        _require(self.curriculum.file is None and self.shaping.file is None, "curriculum.file",
                 "meta-train discovers curricula and shapings; give their names (a learned file is for train and eval)")
        _require(not self.curriculum.active or self.tasks.fitness in HELDOUT_SCORES, "tasks.fitness",
                 f"with a curriculum, fitness must be measured on held-out levels ({', '.join(HELDOUT_SCORES)}), "
                 f"not on the levels the curriculum picked; got {self.tasks.fitness!r}")
        _require(isinstance(self.outer, OuterConfig) and bool(self.outer.name), "outer",
                 f"must be an outer loop's config (ESConfig, MetaGradConfig, or a registered plug-in's), got {self.outer!r}")
        _require(not (self.outer.name == "metagrad" and self.curriculum.active), "curriculum.name",
                 "the meta-gradient loop runs without a curriculum (level sampling has no gradient): use outer:es")
        self.outer.validate()
        if self.tasks.lifetime_strata > 1:
            _require(self.outer.name == "es", "tasks.lifetime_strata", f"strata split an ES population; outer:{self.outer.name} has none")
            members = self.outer.population_size // (2 if self.outer.antithetic else 1)
            _require(members % self.tasks.lifetime_strata == 0, "tasks.lifetime_strata",
                     f"{self.tasks.lifetime_strata} strata must divide the {members} "
                     f"{'antithetic pairs' if self.outer.antithetic else 'members'} of outer.population_size {self.outer.population_size}")
        for name in ("num_generations", "chunk_size", "keep_checkpoints"):
            _positive_int(getattr(self, name), name)
        _require(isinstance(self.eval_seeds, int) and self.eval_seeds >= 0, "eval_seeds", f"must be >= 0, got {self.eval_seeds}")
        _require(isinstance(self.seed, int) and self.seed >= 0, "seed", f"must be a non-negative integer, got {self.seed!r}")
        _require(isinstance(self.host_devices, int) and self.host_devices >= 0, "host_devices", f"must be >= 0, got {self.host_devices}")
        _require(isinstance(self.population_chunk, int) and self.population_chunk >= 0, "population_chunk",
                 f"must be >= 0 (0: automatic), got {self.population_chunk}")
        self.distributed.validate()
        self.verdict.validate()
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that define the run's trajectory (for the checkpoint's config hash).

        Excluded: how long to run and where to write (extending a run or moving it is not a different run).
        The outer loop's settings sit under its name, with ``outer`` naming it; ES runs, made before there was
        a choice, omit ``outer`` (so every stored run keeps its identity).
        """
        values = to_dict(self)
        for name in ("num_generations", "out", "name", "force", "keep_checkpoints", "host_devices", "population_chunk", "track",
                     "distributed", "verdict", "reference_store"):
            values.pop(name)
        outer = values.pop("outer")
        loop = outer.pop("name")
        values[loop] = outer
        if loop != "es":
            values["outer"] = loop
        values.update(objective_identity(self.objective, self.objective_kwargs))
        for dotted, legacy in LEGACY_IDENTITY.items():  # fields added later keep older runs' identity at their old value
            *parents, last = dotted.split(".")
            table = values
            for part in parents:
                table = table.get(part, {})
            if last in table and table[last] == legacy:
                table.pop(last)
        for part in ("curriculum", "shaping"):  # runs from before curricula and shapings keep their identity
            if values[part] == to_dict(type(getattr(self, part))()):
                values.pop(part)
        return values
