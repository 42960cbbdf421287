#!/usr/bin/env python
"""The prepared GPU check: bf16/fp16/fp32 throughput against diffusers (eager
and compiled, batch 256 first), CUDA parity, LSUN-256, training steps with
AMP over NCCL, and the exported ONNX file through ONNX Runtime's CUDA and
TensorRT providers.

On the GPU machine (torch + the wheels of tools/gpu_check_wheels.sh: mmengine,
diffusers for the baseline; no MMagic needed: it runs in core-only mode), one
call of about 7.5 minutes (default --budget-s 450), and the deploy section
(ONNX Runtime's CUDA and TensorRT providers) as a second::

    MMAGIC_CM_CORE_ONLY=1 python tools/gpu_check.py --out $OUT
    MMAGIC_CM_CORE_ONLY=1 python tools/gpu_check.py --sections deploy --out $OUT/deploy

writes ``gpu_check.json`` and ``gpu_check.md`` (the table for docs/speed.md).
``--dry-run`` runs every section on the CPU with tiny sizes (CI runs it).
Exit status 0 when every section ran and every parity case passed, 1 if not.
See :mod:`mmagic_cm.evaluation.gpu_check` for what each section measures.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Prepared GPU check (parity, speed, training)')
    p.add_argument('--out', required=True, help='folder for gpu_check.json and gpu_check.md')
    p.add_argument('--device', help='cuda | cuda:N (default cuda; cpu with --dry-run)')
    p.add_argument('--dry-run', action='store_true',
                   help='every section on the CPU with tiny sizes (seconds)')
    p.add_argument('--budget-s', type=float,
                   help='seconds for the whole check: a throughput row expected to end '
                   'later than this, less the time kept for the sections after it, is '
                   'skipped, not run (default 450: every batch-256 row, in one device call '
                   'of about 8 minutes with start-up)')
    p.add_argument('--sections',
                   help='comma-separated, of throughput,parity,lsun,training,deploy '
                   '(default: all but deploy, which runs as a call of its own; all with '
                   '--dry-run)')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.evaluation.gpu_check import (
        DEFAULT_BUDGET_S,
        DEFAULT_SECTIONS,
        SECTIONS,
        run_gpu_check,
        summary_ok,
    )
    sections = ([s.strip() for s in args.sections.split(',') if s.strip()] if args.sections
                else SECTIONS if args.dry_run else DEFAULT_SECTIONS)
    try:
        report = run_gpu_check(args.out, args.device, args.dry_run,
                               DEFAULT_BUDGET_S if args.budget_s is None else args.budget_s,
                               sections)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    with open(f'{args.out}/gpu_check.md') as f:
        print(f.read())
    return 0 if summary_ok(report) else 1


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
