"""Processes started by Slurm's ``srun`` (``--launcher slurm``).

``tools/slurm_train.sh`` and ``tools/slurm_sample.sh`` start one task per
GPU (or CPU process) with ``srun``; each task finds its place from Slurm's
variables. :func:`slurm_env` turns them into torch's (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), so that
the rest is what torchrun's processes do: mmengine's slurm launcher on GPUs,
a gloo process group on the CPU, the sampling shards.

The master address is ``MASTER_ADDR`` when set, else the first host of
``SLURM_NODELIST``: expanded by ``scontrol show hostnames`` where Slurm's
tools are installed, else read from the list itself (``node[03-07],gpu1`` ->
``node03``), so that a task runs without ``scontrol`` on its node too.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Dict, MutableMapping, Optional

#: what every srun task gets and a launch needs
SLURM_KEYS = ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
#: torch's port when neither MASTER_PORT nor a job id gives one
DEFAULT_PORT = 29500


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list: ``node[03-07,09],gpu1`` -> ``node03``."""
    nodelist = nodelist.strip()
    m = re.match(r'([^,\[]*)(?:\[([^\]]*)\])?', nodelist)
    prefix, ranges = m.group(1), m.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(',')[0].split('-')[0]


def master_host(nodelist: str) -> str:
    """The first host of ``nodelist``, by ``scontrol`` when it is installed."""
    if shutil.which('scontrol'):
        try:
            out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist],
                                 capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.split():
                return out.stdout.split()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    return first_host(nodelist)


def slurm_env(environ: Optional[MutableMapping[str, str]] = None,
              gpus_per_node: Optional[int] = None) -> Dict[str, str]:
    """Set torch's distributed variables from an srun task's Slurm variables.

    ``RANK`` = ``SLURM_PROCID``, ``WORLD_SIZE`` = ``SLURM_NTASKS``,
    ``LOCAL_RANK`` = ``SLURM_LOCALID`` (else the rank modulo the GPUs of the
    node), ``MASTER_ADDR`` (kept if set) the first node, ``MASTER_PORT`` (kept
    if set) ``12000 + SLURM_JOB_ID % 20000``, else 29500. Returns the
    variables set.

    Raises:
        ValueError: (one line) not an srun task: Slurm's variables are missing.
    """
    env = os.environ if environ is None else environ
    missing = [k for k in SLURM_KEYS if not env.get(k)]
    if missing:
        raise ValueError('--launcher slurm: start the processes with srun (e.g. '
                         'tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR); '
                         f'{", ".join(missing)} not set')
    try:
        rank, world = int(env['SLURM_PROCID']), int(env['SLURM_NTASKS'])
    except ValueError:
        raise ValueError(f'--launcher slurm: SLURM_PROCID={env["SLURM_PROCID"]!r} and '
                         f'SLURM_NTASKS={env["SLURM_NTASKS"]!r} must be integers') from None
    if env.get('SLURM_LOCALID', '').isdigit():
        local = int(env['SLURM_LOCALID'])
    else:
        if gpus_per_node is None:
            import torch
            gpus_per_node = torch.cuda.device_count()
        local = rank % max(1, gpus_per_node)
    found = dict(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(local))
    found['MASTER_ADDR'] = env.get('MASTER_ADDR') or master_host(env['SLURM_NODELIST'])
    job = env.get('SLURM_JOB_ID', '')
    found['MASTER_PORT'] = env.get('MASTER_PORT') or str(
        12000 + int(job) % 20000 if job.isdigit() else DEFAULT_PORT)
    env.update(found)
    return found
