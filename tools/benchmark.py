#!/usr/bin/env python
"""Sampling speed: images/s, latency per batch, peak memory, achieved GFLOP/s.

Runs one-step (or multistep) sampling of a config's model for every
combination of ``--dtypes``, ``--batch-sizes``, ``--channels-last`` and
``--compile``, optionally next to diffusers' ``ConsistencyModelPipeline``
(``--compare diffusers``) and the original OpenAI code (``--compare
original --cm-repo PATH``) holding the same weights, in one process. Rows
are timed interleaved (every row once per round, ``--reps`` rounds), so
that other load on the machine slows all rows alike; the table gives the
median and best time. GFLOP/s counts the UNet's FLOPs
(``torch.utils.flop_counter`` on the meta device) and is set against a
``--matmul-size`` square matrix product in the same dtype, timed here too.

Examples::

    # ImageNet-64 one-step at batch 4, fp32 and bf16, against both baselines
    python tools/benchmark.py configs/consistency_models/\\
consistency_models_8xb256-imagenet1k-onestep-64x64.py --batch-sizes 4 \\
        --dtypes fp32,bf16 --channels-last off,on --compare diffusers,original \\
        --cm-repo /path/to/consistency_models --json bench.json

    # command to file (what tools/sample.py runs, one batch, in a fresh process)
    # beside python -c "import torch"
    python tools/benchmark.py CONFIG --first-image --batch-sizes 10 [--checkpoint model.pt]
    # the whole process for 16 images in batches of 4, through an exported file
    python tools/benchmark.py CONFIG --first-image --batch-sizes 4 --num-samples 16 \\
        --dtypes fp32 --checkpoint model_int8.xml

Weights are random (seeded, :func:`mmagic_cm.testing.seeded_state_dict`)
unless ``--checkpoint`` is given; speed does not depend on them. Baselines
run as their users run them: the original in float32 (fp16 with its
``use_fp16`` on CUDA), diffusers in float32, or under autocast in bf16/fp16
on the CPU (cast to fp16/bf16 on CUDA), both with default memory format and
without compile. ``--quality`` adds each row's PSNR (dB, images in
[-1, 1]) against the fp32 images of the first row of the same batch size
(for multistep, diffusers draws its own noise between steps: its PSNR there
says nothing about precision).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional


def _csv(cast=str):
    def parse(value: str):
        items = [v.strip() for v in value.split(',') if v.strip()]
        if not items:
            raise argparse.ArgumentTypeError('expected a comma-separated list')
        return [cast(v) for v in items]
    return parse


def _switch(value: str) -> List[bool]:
    table = {'on': [True], 'off': [False], 'both': [False, True], 'off,on': [False, True],
             'on,off': [True, False]}
    if value not in table:
        raise argparse.ArgumentTypeError(f'expected on, off or both, got {value!r}')
    return table[value]


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Benchmark sampling speed of a consistency '
                                'model config (see the module docstring).')
    p.add_argument('config', help='config file, e.g. configs/consistency_models/...py')
    p.add_argument('--checkpoint', help='local checkpoint (default: seeded random weights)')
    p.add_argument('--batch-sizes', type=_csv(int), default=[1, 4], help='e.g. 1,4')
    p.add_argument('--dtypes', type=_csv(), default=['fp32', 'bf16'],
                   help='fp32,bf16,fp16 (fp16: CUDA only); int8: OpenVINO rows only')
    p.add_argument('--channels-last', type=_switch, default=[True],
                   help='on | off | both (default on)')
    p.add_argument('--compile', type=_switch, default=[False],
                   help='torch.compile: on | off | both (default off); compile time is '
                   'reported apart')
    p.add_argument('--compile-mode', help='torch.compile mode for --compile on, e.g. '
                   'reduce-overhead (CUDA graphs) or max-autotune')
    p.add_argument('--sampler', choices=['onestep', 'multistep'],
                   help="default: the config's if one of these, else onestep")
    p.add_argument('--ts', help='multistep grid indices (default: the config\'s)')
    p.add_argument('--steps', type=int, help="multistep grid size (default: the config's)")
    p.add_argument('--reps', type=int, default=5, help='timed rounds (default %(default)s)')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    p.add_argument('--compare', type=_csv(), default=[],
                   help='baselines: diffusers, original, onnxruntime, openvino (CPU), '
                   'onnxruntime-tensorrt (GPU; onnxruntime on a GPU: its CUDA provider)')
    p.add_argument('--cm-repo', default=os.environ.get('CM_REPO'),
                   help='checkout of openai/consistency_models for --compare original '
                   '(default: $CM_REPO)')
    p.add_argument('--device', default='cpu', help='cpu | cuda | cuda:N')
    p.add_argument('--threads', type=int, help='torch.set_num_threads (default: torch\'s)')
    p.add_argument('--matmul-size', type=int, default=4096,
                   help='n of the n x n matmul giving the peak (0: skip)')
    p.add_argument('--quality', action='store_true',
                   help='PSNR of every row against fp32 eager images')
    p.add_argument('--first-image', action='store_true',
                   help='only time the sampling command from command to file (one batch of the '
                   'first --batch-sizes, in a fresh process) beside python -c "import torch"')
    p.add_argument('--num-samples', type=int,
                   help='--first-image: images to write, in batches of the first --batch-sizes '
                   '(default: one batch)')
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose)
    from mmagic_cm.evaluation.benchmark import run_benchmark
    try:
        report, text = run_benchmark(
            args.config, argv=sys.argv[1:] if argv is None else argv,
            checkpoint=args.checkpoint, batch_sizes=args.batch_sizes, dtypes=args.dtypes,
            channels_last=args.channels_last, compile=args.compile,
            compile_mode=args.compile_mode, sampler=args.sampler, ts=args.ts,
            steps=args.steps, reps=args.reps, warmup=args.warmup, compare=args.compare,
            cm_repo=args.cm_repo, device=args.device, threads=args.threads,
            matmul_size=args.matmul_size, quality=args.quality, first_image=args.first_image,
            num_samples=args.num_samples)
    except ValueError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
