#!/usr/bin/env bash
# SUPERSEDED by sweeps/ta_lpo_study.toml (results/ta_lpo_study): this ran at lr 2.5e-4 annealed, where no objective
# of the family differs from PPO (results/headroom). Kept to reproduce results/ta_lpo_cartpole; the flags pin its settings.
# Small-scale reproduction of the temporally-aware LPO claim (Jackson et al., ICLR 2024) on 2 CPU cores:
# meta-train LPO and TA-LPO with the same ES budget (32 members x 60 generations, 2 seeds each) on CartPole-v1 at one
# lifetime (N = 64 updates of 4 envs x 128 steps), then evaluate PPO, DPO, LPO and TA-LPO at N = 16 ... 256 (shorter and longer than
# meta-training) on CartPole-v1 and on Acrobot-v1, which meta-training never saw.
# Writes results/ta_lpo_cartpole/{lpo,ta_lpo,eval}/ and the figures; every command is recorded in each
# run folder's config.json.
set -euo pipefail
OUT=${OUT:-results/ta_lpo_cartpole}
GENERATIONS=${GENERATIONS:-60}
# The defaults these runs were made with, before the discovery recipe (lr 0.01 constant, AUC fitness) became the default.
COMMON=(--num-generations "$GENERATIONS" --outer.population-size 32 --chunk-size 5 --out "$OUT" --ppo.lr 0.00025 --ppo.anneal-lr
        --tasks.fitness final_return --tasks.reference-seeds 4 --objective-kwargs '{"mirror": false}')

metarl meta-train --objective lpo --name lpo "${COMMON[@]}"
metarl meta-train --objective ta_lpo --name ta_lpo "${COMMON[@]}"
metarl eval --objectives ppo dpo "$OUT/lpo/learned/lpo.msgpack" "$OUT/ta_lpo/learned/ta_lpo.msgpack" \
  --envs CartPole-v1 Acrobot-v1 --lifetimes 16 32 64 128 256 --num-seeds 8 --out "$OUT" --name eval
metarl plot "$OUT"
