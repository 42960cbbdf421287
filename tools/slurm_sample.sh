#!/usr/bin/env bash
# Sample on a Slurm cluster: srun starts GPUS tasks of tools/sample.py
# --launcher slurm; each draws its share of the shards of OUT.shards/ and
# rank 0 gathers them into OUT, equal to the single-process result:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_sample.sh PARTITION JOB_NAME CONFIG [tools/sample.py options]
# GPUS_PER_NODE=0: CPU tasks (no --gres). OUT on a filesystem every node sees.
# See tools/slurm_launch.sh.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [tools/sample.py options]" >&2
    exit 2
fi
exec "$(dirname "$0")/slurm_launch.sh" sample.py "$@"
