#!/usr/bin/env bash
# Experiment 5a: curricula on CartPole-levels (64 training levels of difficulty 0..1: shorter pole, weaker push, wider
# start states; 16 held-out levels of difficulty 0.9..1 never trained on; success = the pole stays up 200 steps).
# Inner PPO: 8 envs x 200 steps per update (every env reset to its sampled level each update).
# 1. ES discovers a curriculum (the learned scorer of level features + running stats, with and without n/N):
#    OpenES, 16 members x 2 seeds x GENERATIONS generations; fitness = the final agent's return on the held-out levels;
#    lifetimes 25..100 updates, log-uniform.
# 2. Evaluate uniform, hardest-only, SEC, PLR, learnability and both discovered curricula on the held-out levels at
#    N = 25, 100 and 200 (200 was never seen in meta-training), 8 seeds; the curves and the category each update
#    sampled are kept in eval.npz. Sized for 2 CPU cores.
set -euo pipefail
OUT=${OUT:-results/curricula}
GENERATIONS=${GENERATIONS:-20}
PPO=(--ppo.num-envs 8 --ppo.num-steps 200)
TASKS=(--tasks.envs CartPole-levels --tasks.lifetimes 25 100 --tasks.lifetime-sampling log_uniform --tasks.fitness heldout_return --tasks.no-normalize)
# The defaults these runs were made with, before the discovery recipe (lr 0.01 constant, AUC fitness) became the default.
LEGACY=(--ppo.lr 0.00025 --ppo.anneal-lr --tasks.reference-seeds 4)
COMMON=("${LEGACY[@]}" --objective ppo "${PPO[@]}" --ppo.total-timesteps $((8 * 200 * 100)) "${TASKS[@]}" --num-generations "$GENERATIONS" --chunk-size 5 --out "$OUT")

metarl meta-train --curriculum.name learned --name learned "${COMMON[@]}"
metarl meta-train --curriculum.name learned --curriculum.kwargs '{"progress": false}' --name learned_no_progress "${COMMON[@]}"
[[ -f "$OUT/eval/eval.npz" ]] || metarl eval --objectives ppo --curricula uniform hardest sec plr learnability \
  "$OUT/learned/learned/curriculum_learned.msgpack" "$OUT/learned_no_progress/learned/curriculum_learned.msgpack" \
  --envs CartPole-levels --lifetimes 25 100 200 --num-seeds 8 --score heldout_return "${PPO[@]}" --out "$OUT" --name eval
metarl plot "$OUT"
