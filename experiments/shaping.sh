#!/usr/bin/env bash
# Experiment 5b: reward shaping with helpful and misleading heuristics (BARFI-style testbeds).
#   Maze-open (sparse: +1·(1 − 0.9 t/48) at the far corner only): goal_distance (helpful: −Manhattan distance to the goal)
#     and center (misspecified: +1 per step inside the central 3x3); 8 envs x 48 steps, lifetimes 8..24 updates.
#   CartPole-v1: pd_good (+5 if the action matches a PD controller, else −1) and pd_bad (−5 if it matches, else +1);
#     4 envs x 128 steps, lifetimes 16..48 updates.
# For each testbed and heuristic ES discovers a BARFI blend r + φ1(s) + φ2(s)·r_aux with a learned discount, starting
# from the naive sum (φ2 = 1): OpenES, 16 members x 2 seeds x GENERATIONS generations, fitness = the env's own return.
# Then none / naive / potential / discovered are evaluated at three lifetimes (the longest twice the meta-training
# maximum), 8 seeds; `metarl plot` draws the curves, the blend weights and the STARC distances (maze).
set -euo pipefail
OUT=${OUT:-results/shaping}
GENERATIONS=${GENERATIONS:-15}
ES=(--es.population-size 16 --es.sigma 0.05 --es.lr 0.05)
MAZE_PPO=(--ppo.num-envs 8 --ppo.num-steps 48)
CARTPOLE_PPO=(--ppo.num-envs 4 --ppo.num-steps 128)

for heuristic in goal_distance center; do
  metarl meta-train --objective ppo --shaping.name blend --shaping.heuristic "$heuristic" --name "maze_$heuristic" \
    "${MAZE_PPO[@]}" --ppo.total-timesteps $((8 * 48 * 24)) "${ES[@]}" --tasks.envs Maze-open --tasks.lifetimes 8 24 \
    --tasks.lifetime-sampling log_uniform --tasks.no-normalize --num-generations "$GENERATIONS" --chunk-size 5 --out "$OUT"
  metarl eval --objectives ppo --shapings none naive potential "$OUT/maze_$heuristic/learned/shaping_blend.msgpack" \
    --heuristic "$heuristic" --envs Maze-open --lifetimes 8 24 48 --num-seeds 8 "${MAZE_PPO[@]}" --out "$OUT" --name "eval_maze_$heuristic"
done
for heuristic in pd_good pd_bad; do
  metarl meta-train --objective ppo --shaping.name blend --shaping.heuristic "$heuristic" --name "cartpole_$heuristic" \
    "${CARTPOLE_PPO[@]}" --ppo.total-timesteps $((4 * 128 * 48)) "${ES[@]}" --tasks.envs CartPole-v1 --tasks.lifetimes 16 48 \
    --tasks.lifetime-sampling log_uniform --tasks.no-normalize --num-generations "$GENERATIONS" --chunk-size 5 --out "$OUT"
  metarl eval --objectives ppo --shapings none naive potential "$OUT/cartpole_$heuristic/learned/shaping_blend.msgpack" \
    --heuristic "$heuristic" --envs CartPole-v1 --lifetimes 16 48 96 --num-seeds 8 "${CARTPOLE_PPO[@]}" --out "$OUT" --name "eval_cartpole_$heuristic"
done
metarl plot "$OUT"
