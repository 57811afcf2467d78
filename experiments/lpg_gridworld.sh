#!/usr/bin/env bash
# Experiment 4a: LPG vs TA-LPG (Oh et al., 2020; Jackson et al., ICLR 2024) meta-trained by ES on metarl's grid-world
# distribution (GridWorld-train: dense, sparse, long, harmful and small levels, rewards jittered), lifetimes sampled
# log-uniformly in 10..60 agent updates of 16 envs x 20 steps (one gradient step each). Same ES budget for both:
# OpenES, 16 members (antithetic, pairwise ranks, sigma 0.1, Adam lr 0.01) x GENERATIONS generations x 2 seeds.
# Then evaluate the hand-set rule (pg_td), PPO and both learned rules on the held-out levels (GridWorld-heldout),
# on the training distribution, and transferred to CartPole-v1, at N = 10, 30, 60 and 120 (twice the longest
# meta-training lifetime) with 8 seeds. Sized for 2 CPU cores (12 minutes measured).
set -euo pipefail
OUT=${OUT:-results/lpg_gridworld}
GENERATIONS=${GENERATIONS:-40}
PPO=(--ppo.num-envs 16 --ppo.num-steps 20 --ppo.total-timesteps $((16 * 20 * 60)) --ppo.update-epochs 1
     --ppo.num-minibatches 1 --ppo.lr 0.01 --ppo.hidden-sizes 32 --ppo.activation relu)
ES=(--outer.population-size 16 --outer.fitness-shaping pairwise_rank --outer.sigma 0.1 --outer.lr 0.01)
TASKS=(--tasks.envs GridWorld-train --tasks.lifetimes 10 60 --tasks.lifetime-sampling log_uniform --tasks.no-normalize)
# The defaults these runs were made with, before the discovery recipe (lr 0.01 constant, AUC fitness) became the default.
LEGACY=(--ppo.anneal-lr --tasks.fitness final_return --tasks.reference-seeds 4)
COMMON=("${LEGACY[@]}" "${PPO[@]}" "${ES[@]}" "${TASKS[@]}" --num-generations "$GENERATIONS" --chunk-size 5 --out "$OUT")

metarl meta-train --objective lpg --name lpg "${COMMON[@]}"
metarl meta-train --objective ta_lpg --name ta_lpg "${COMMON[@]}"
metarl eval --objectives ppo pg_td "$OUT/lpg/learned/lpg.msgpack" "$OUT/ta_lpg/learned/ta_lpg.msgpack" \
  --envs GridWorld-heldout GridWorld-train CartPole-v1 --lifetimes 10 30 60 120 --num-seeds 8 \
  --ppo.num-envs 16 --ppo.num-steps 20 --ppo.update-epochs 1 --ppo.num-minibatches 1 --ppo.lr 0.01 --ppo.hidden-sizes 32 \
  --ppo.activation relu --out "$OUT" --name eval
metarl plot "$OUT"
