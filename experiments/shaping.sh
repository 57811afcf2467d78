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
# The defaults these runs were made with, before the discovery recipe (lr 0.01 constant, AUC fitness) became the default.
ES=(--outer.population-size 16 --outer.sigma 0.05 --outer.lr 0.05 --ppo.lr 0.00025 --ppo.anneal-lr --tasks.fitness final_return --tasks.reference-seeds 4)
MAZE_PPO=(--ppo.num-envs 8 --ppo.num-steps 48)
CARTPOLE_PPO=(--ppo.num-envs 4 --ppo.num-steps 128)

# discover NAME ENV HEURISTIC "META_LIFETIMES" "EVAL_LIFETIMES" PPO-FLAGS...: ES-discover a blend, then evaluate it
# against none / naive / potential (the scan length covers the longest meta-training lifetime).
discover() {
  local name=$1 env=$2 heuristic=$3 lifetimes=$4 eval_lifetimes=$5; shift 5
  local ppo=("$@") longest=${lifetimes##* }
  local batch=$(( ${ppo[1]} * ${ppo[3]} ))  # num-envs x num-steps
  metarl meta-train --objective ppo --shaping.name blend --shaping.heuristic "$heuristic" --name "$name" "${ppo[@]}" \
    --ppo.total-timesteps $((batch * longest)) "${ES[@]}" --tasks.envs "$env" --tasks.lifetimes $lifetimes \
    --tasks.lifetime-sampling log_uniform --tasks.no-normalize --num-generations "$GENERATIONS" --chunk-size 5 --out "$OUT"
  [[ -f "$OUT/eval_$name/eval.npz" ]] && return  # finished earlier: the script resumes where it stopped
  metarl eval --objectives ppo --shapings none naive potential "$OUT/$name/learned/shaping_blend.msgpack" \
    --heuristic "$heuristic" --envs "$env" --lifetimes $eval_lifetimes --num-seeds 8 "${ppo[@]}" --out "$OUT" --name "eval_$name"
}

for heuristic in goal_distance center; do
  discover "maze_$heuristic" Maze-open "$heuristic" "8 24" "8 24 48" "${MAZE_PPO[@]}"
done
for heuristic in pd_good pd_bad; do
  discover "cartpole_$heuristic" CartPole-v1 "$heuristic" "16 48" "16 48 96" "${CARTPOLE_PPO[@]}"
done
metarl plot "$OUT"
