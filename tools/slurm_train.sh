#!/usr/bin/env bash
# Train on a Slurm cluster: srun starts GPUS tasks of tools/train.py --launcher
# slurm (DDP, or FSDP with --strategy fsdp; NCCL on GPUs, gloo on CPU tasks):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]
# GPUS_PER_NODE=0: CPU tasks (no --gres). See tools/slurm_launch.sh.
set -euo pipefail
if [ $# -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
shift 4
exec "$(dirname "$0")/slurm_launch.sh" train.py "$PARTITION" "$JOB_NAME" "$CONFIG" \
    --work-dir="$WORK_DIR" "$@"
