#!/usr/bin/env bash
# Sample on NPROC processes of this machine with torchrun (one GPU each, or CPU
# processes): every process draws its share of the shards of OUT.shards/, and
# rank 0 gathers them into OUT, equal to the single-process result.
#   tools/dist_sample.sh CONFIG NPROC [tools/sample.py options]
# Several machines: set NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (OUT on a
# shared filesystem); PYTHON picks the interpreter (default: python on PATH).
exec "$(dirname "$0")/dist_launch.sh" sample.py "$@"
