#!/usr/bin/env bash
# Run a tools/ script on NPROC processes of this machine with torchrun:
#   tools/dist_launch.sh SCRIPT CONFIG NPROC [script options]
# (tools/dist_train.sh and tools/dist_sample.sh call it). Several machines: set
# NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT; PYTHON picks the interpreter
# (default: python on PATH).
set -euo pipefail
SCRIPT=$1
CONFIG=$2
NPROC=$3
shift 3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$MASTER_PORT" \
    "$(dirname "$0")/$SCRIPT" "$CONFIG" --launcher pytorch "$@"
