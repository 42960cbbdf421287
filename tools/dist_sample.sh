#!/usr/bin/env bash
# Sample on NPROC processes of this machine with torchrun (one GPU each, or CPU
# processes): every process draws its share of the shards of OUT.shards/, and
# rank 0 gathers them into OUT, equal to the single-process result.
#   tools/dist_sample.sh CONFIG NPROC [tools/sample.py options]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (OUT on a
# shared filesystem); PYTHON picks the interpreter (default: python on PATH).
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
    "$(dirname "$0")/sample.py" "$CONFIG" --launcher pytorch "$@"
