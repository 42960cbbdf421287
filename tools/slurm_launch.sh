#!/usr/bin/env bash
# Run a tools/ script as Slurm tasks with srun, one per GPU (or CPU process),
# each with --launcher slurm (tools/slurm_train.sh and tools/slurm_sample.sh
# call it):
#   tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME CONFIG [script arguments]
# Environment: GPUS (tasks in all, default 8), GPUS_PER_NODE (tasks and GPUs
# per node, default 8; 0: CPU tasks, no --gres), CPUS_PER_TASK (default 5),
# SRUN_ARGS (more srun options), MASTER_PORT (default: a random port in
# 12000-31999), PYTHON (default: python on PATH).
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 SCRIPT PARTITION JOB_NAME CONFIG [script arguments]" >&2
    exit 2
fi
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
CONFIG=$4
shift 4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
# every task meets rank 0 here (the first node of the allocation)
export MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PER_NODE=()
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    PER_NODE=(--gres="gpu:$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
fi
set -x
# shellcheck disable=SC2086  # SRUN_ARGS: several options
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    "${PER_NODE[@]}" \
    --ntasks="$GPUS" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "${PYTHON:-python}" -u "$ROOT/tools/$SCRIPT" "$CONFIG" --launcher=slurm "$@"
