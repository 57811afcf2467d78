#!/usr/bin/env bash
# The one prepared GPU check: `metarl info`, then benchmarks/device.py, all in under 8 minutes.
# On the device machine, from the repository root, with .whl/ made here by benchmarks/device_wheels.sh and carried:
#
#   bash benchmarks/device_run.sh       # results in $OUT: info.txt, device.log, device-<device kind>.json
#
# The image's python3 (3.12) with its jax 0.11.2 and CUDA 13 plugin runs metarl from this folder (PYTHONPATH);
# the wheels add what the image lacks. benchmarks/device.py rewrites its JSON after every case and skips cases
# that would not fit its budget, so even a run stopped by the timeout below returns what it measured.
set -uo pipefail
OUT=${OUT:-/tmp/device-out}
TOTAL=${TOTAL:-470}  # seconds for everything below (the limit: 8 minutes)
PYTHON=${PYTHON:-python3}
start=$(date +%s)
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
# The population cases need more than jax's default 75 % of the GPU's memory.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.92}
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    timeout 90 "$PYTHON" -m metarl.app.cli info
} 2>&1 | tee "$OUT/info.txt"
touch /tmp/device-run-start
left=$((TOTAL - ($(date +%s) - start)))
# The script's own budget leaves 40 s for the case in flight to end and for the exit; timeout is the backstop.
timeout -k 5 "$left" "$PYTHON" benchmarks/device.py --budget-seconds "$((left - 40))" 2>&1 | tee "$OUT/device.log"
status=$?
find benchmarks/results -maxdepth 1 -name 'device-*.json' -newer /tmp/device-run-start -exec cp {} "$OUT/" \;
ls -l "$OUT"
echo "device_run: exit $status after $(($(date +%s) - start)) s"
exit "$status"
