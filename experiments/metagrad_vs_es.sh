#!/usr/bin/env bash
# Experiment 4b: ES vs truncated meta-gradients for TA-LPO on CartPole-v1, lifetimes log-uniform in 16..64 updates of
# 4 envs x 128 steps (4 epochs x 4 minibatches). Budget matched roughly in wall-clock on 2 CPU cores (measured: 203 s vs 384 s):
#   ES:       OpenES, 16 members x 2 seeds x 30 generations (the default LPO-style settings);
#   metagrad: 8 agents, K = 5 inner updates differentiated per step, Adam lr 1e-3, 150 steps.
# The question (ANCHORS: the paper reports that meta-gradients do not learn horizon-dependent schedules): does the
# learned drift depend on n/N? `metarl plot` draws each drift at n/N = 0, 0.5 and 1; the eval compares both with PPO.
set -euo pipefail
OUT=${OUT:-results/metagrad_vs_es}
# The defaults these runs were made with, before the discovery recipe (lr 0.01 constant, AUC fitness) became the default.
TASKS=(--tasks.lifetimes 16 64 --tasks.lifetime-sampling log_uniform --ppo.lr 0.00025 --ppo.anneal-lr --tasks.fitness final_return
       --tasks.reference-seeds 4 --objective-kwargs '{"mirror": false}')

metarl meta-train --objective ta_lpo --name es "${TASKS[@]}" --num-generations "${GENERATIONS:-30}" --chunk-size 5 --out "$OUT"
metarl meta-train --objective ta_lpo --name metagrad "${TASKS[@]}" --num-generations "${STEPS:-150}" --chunk-size 25 \
  --out "$OUT" outer:metagrad --outer.num-agents 8 --outer.truncation 5 --outer.lr 0.001
metarl eval --objectives ppo "$OUT/es/learned/ta_lpo.msgpack" "$OUT/metagrad/learned/ta_lpo.msgpack" \
  --envs CartPole-v1 --lifetimes 16 32 64 --num-seeds 8 --out "$OUT" --name eval
metarl plot "$OUT"
