#!/usr/bin/env bash
# Train on NPROC processes of this machine with torchrun (DDP; gloo on CPU,
# NCCL on GPUs):  tools/dist_train.sh CONFIG NPROC [tools/train.py options]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT; PYTHON picks
# the interpreter (default: python on PATH).
exec "$(dirname "$0")/dist_launch.sh" train.py "$@"
