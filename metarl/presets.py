"""Inner-agent settings that train well per environment family (defaults of `metarl train --env ...`).

Each preset is a plain PPOConfig; command-line flags override any field.
"""

from __future__ import annotations

from metarl.config import PPOConfig
from metarl.errors import ConfigError

# PureJaxRL's classic-control settings: 4 envs x 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4.
CLASSIC_CONTROL = PPOConfig()

# Pendulum needs a short horizon (gamma 0.95), more epochs, no entropy bonus and rewards scaled to O(1).
PENDULUM = PPOConfig(
    num_envs=16, num_steps=128, total_timesteps=1_000_000, update_epochs=10, num_minibatches=16,
    gamma=0.95, lr=1e-3, ent_coef=0.0, reward_scale=0.1,
)

# MinAtar settings of the LPO/TA-LPO papers: 64 envs x 128 steps, 4 epochs x 8 minibatches, conv torso.
MINATAR = PPOConfig(
    num_envs=64, num_steps=128, total_timesteps=10_000_000, update_epochs=4, num_minibatches=8,
    lr=5e-3, hidden_sizes=(64,), activation="relu",
)

# LPG-style grid worlds: each update is 20 steps x 64 envs and one gradient step (as in the LPG papers);
# lifetimes of 10-250 updates. lr 1e-2 because a single step per update must move the policy.
GRIDWORLD = PPOConfig(
    num_envs=64, num_steps=20, total_timesteps=64 * 20 * 250, update_epochs=1, num_minibatches=1,
    lr=1e-2, hidden_sizes=(64,), activation="relu",
)


def ppo_preset(env: str) -> PPOConfig:
    if env.startswith("GridWorld-"):
        return GRIDWORLD
    if env.endswith("-MinAtar"):
        return MINATAR
    if env.startswith("Pendulum"):
        return PENDULUM
    return CLASSIC_CONTROL



# --- command presets: `metarl <command> --preset NAME` ---------------------------------------------------------
# A preset is a list of flags put before the user's own (a later flag wins), so it is spelled in the one
# configuration language, printed by `--preset NAME --help`'s defaults, and recorded in the run's command.

_SMALL_PPO = ["--ppo.num-envs", "4", "--ppo.num-steps", "32", "--ppo.total-timesteps", "1024", "--ppo.hidden-sizes", "16",
              "--ppo.update-epochs", "2", "--ppo.num-minibatches", "2"]

PRESETS: dict[str, dict[str, list[str]]] = {
    # smoke: every stage of the command at the smallest size, to check a set-up or a plug-in in seconds (numbers
    # from it mean nothing)
    "train": {"smoke": [*_SMALL_PPO, "--num-seeds", "2"]},
    "meta-train": {"smoke": [*_SMALL_PPO, "--num-generations", "2", "--chunk-size", "1", "--eval-seeds", "2",
                             "--tasks.seeds-per-member", "1", "--tasks.reference-seeds", "2", "--verdict.num-seeds", "4",
                             "--verdict.selection-seeds", "2", "--verdict.tuned-lrs", "0.01", "--verdict.tuned-clips", "0.2",
                             "--verdict.tuned-epochs", "2", "--verdict.tuned-anneal", "False", "--verdict.no-tuned-extend"],
                   # ta_lpo: the temporally-aware study's recipe on its wide testbed (results/ta_wide; results/ta_headroom_wide
                   # measured that the best update rule changes between N = 2 and N = 128 there): TA-LPO with n/N and log N
                   # (scaled over the range), CartPole lifetimes drawn log-uniformly in 2..128 updates (128 x 512 steps),
                   # 16 members x 30 generations; its verdict at N = 2, 16, 128 against PPO at the same settings (tuned PPO per
                   # lifetime: `metarl eval --tuned-ppo`, as the study's eval stage does). 7 min 43 s on 2 CPU cores, verdict
                   # included; it remade ta_wide/ta_lpo_s0's verdict exactly (+0.086 [+0.062, +0.110]).
                   "ta_lpo": ["--objective", "ta_lpo", "--objective-kwargs", '{"log_horizon": true}', "--tasks.lifetimes", "2", "128",
                              "--ppo.total-timesteps", "65536", "--tasks.lifetime-sampling", "log_uniform", "--num-generations", "30",
                              "--verdict.no-tuned"],
                   # shaping: the shaping study's recipe (results/shaping): PPO learns from r + w r_aux + b, w and b a learned
                   # function of (s, r, r_aux, n/N) started at w = b = 0 (no shaping), with CartPole's misleading PD heuristic;
                   # 32-update lifetimes, 16 members x 30 generations; its verdict on the test stream against PPO with none,
                   # naive and potential shaping (--shaping.heuristic pd_good: the helpful one)
                   "shaping": ["--objective", "ppo", "--shaping.name", "learned", "--shaping.heuristic", "pd_bad",
                               "--shaping.kwargs", '{"init_aux_weight": 0.0}', "--ppo.total-timesteps", "16384", "--verdict.no-tuned"],
                   # curriculum: the curricula study's recipe (results/curricula_pocket, stage 7): on Maze-pocket (a corridor
                   # of start cells and a walled-off pocket no start can leave; scored on the 4 farthest solvable starts),
                   # a learned residual on learnability's level distribution with n/N, started at learnability itself;
                   # 4 envs x 48 steps, lr 0.003 constant, 200-update lifetimes, 16 members x 30 generations, ES sigma 0.1;
                   # its verdict on the test stream, by the mean (the score is success-like), against PPO with every
                   # hand-designed sampler. 9 min 55 s on 2 CPU cores, verdict included (2026-12-07: level with learnability,
                   # -0.006 [-0.158, +0.148] on 32 test seeds; the study found no curriculum better than it)
                   "curriculum": ["--objective", "ppo", "--curriculum.name", "learned", "--curriculum.kwargs", '{"base": "learnability"}',
                                  "--tasks.envs", "Maze-pocket", "--tasks.lifetimes", "200", "--tasks.fitness", "heldout_return",
                                  "--tasks.no-normalize", "--ppo.num-envs", "4", "--ppo.num-steps", "48", "--ppo.lr", "0.003",
                                  "--ppo.no-anneal-lr", "--ppo.total-timesteps", "38400", "--num-generations", "30",
                                  "--verdict.no-tuned", "--verdict.statistic", "mean"]},
    "eval": {"smoke": [*_SMALL_PPO, "--lifetimes", "4", "8", "--num-seeds", "2", "--tuning.selection-seeds", "2",
                       "--tuning.lrs", "0.01", "--tuning.clips", "0.2", "--tuning.epochs", "2", "--tuning.anneal", "False",
                       "--tuning.no-extend"]},
}
# the outer loop's own flags, by loop (a preset cannot name the fields of a loop the run does not use)
OUTER_PRESETS: dict[str, dict[str, list[str]]] = {
    "smoke": {"es": ["--outer.population-size", "4"], "metagrad": ["--outer.num-agents", "2", "--outer.truncation", "2"]},
    "curriculum": {"es": ["--outer.sigma", "0.1"]},
}


def expand_preset(command: str, args: list[str]) -> list[str]:
    """``args`` with ``--preset NAME`` replaced by that preset's flags, put first so the user's own flags win."""
    names, rest, i = [], [], 0
    while i < len(args):
        if args[i] == "--preset" or args[i].startswith("--preset="):
            value = args[i].split("=", 1)[1] if "=" in args[i] else (args[i + 1] if i + 1 < len(args) else "")
            i += 1 if "=" in args[i] else 2
            known = PRESETS.get(command, {})
            if value not in known:
                raise ConfigError(f"--preset: {value!r} is not a preset of metarl {command}; presets: {', '.join(known) or 'none'}")
            names.append(value)
            continue
        rest.append(args[i])
        i += 1
    flags = []
    for name in names:
        flags += PRESETS[command][name]
        if command == "meta-train":
            loop = next((a.split(":", 1)[1] for a in rest if a.startswith("outer:")), "es")
            flags += OUTER_PRESETS.get(name, {}).get(loop, [])
    return flags + rest
