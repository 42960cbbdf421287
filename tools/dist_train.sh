#!/usr/bin/env bash
# Train on NPROC processes of this machine with torchrun (DDP; gloo on CPU,
# NCCL on GPUs):  tools/dist_train.sh CONFIG NPROC [tools/train.py options]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT; PYTHON picks
# the interpreter (default: python on PATH).
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" --master_port="$MASTER_PORT" \
    "$(dirname "$0")/train.py" "$CONFIG" --launcher pytorch "$@"
