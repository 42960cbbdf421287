#!/usr/bin/env python
"""What a user times: the sampling command from start to exit, ours (PyTorch
fp32 and bf16, and each exported file given) beside the original's
``scripts/image_sample.py`` and ``python -c "import torch"``.

    python tools/whole_process.py \\
        configs/consistency_models/consistency_models_8xb256-imagenet1k-onestep-64x64.py \\
        --checkpoint seeded.pt --exported in64_int8.xml --cm-repo /path/to/consistency_models \\
        --num-samples 16 --batch-size 4 --reps 3

Rounds are interleaved (every command once per round), medians reported.
The original runs through ``tools/reference/original_sample.py`` (one-step
CD flags of the released ImageNet-64 models); an exported file runs twice,
with OpenVINO's compiled-model cache off and on (the first of the cached
runs fills the cache).
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional

ORIGINAL_IMAGENET64 = ['--training_mode', 'consistency_distillation', '--sampler', 'onestep',
                       '--class_cond', 'True', '--num_channels', '192', '--num_res_blocks', '3',
                       '--num_head_channels', '64', '--attention_resolutions', '32,16,8',
                       '--resblock_updown', 'True', '--use_scale_shift_norm', 'True',
                       '--dropout', '0.0', '--image_size', '64', '--weight_schedule',
                       'uniform', '--use_fp16', 'False']


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--checkpoint', required=True, help='the UNet weights (.pt)')
    p.add_argument('--exported', action='append', default=[], help='an .onnx or .xml file')
    p.add_argument('--cm-repo', default=os.environ.get('CM_REPO'),
                   help='checkout of openai/consistency_models (ImageNet-64 configs only)')
    p.add_argument('--num-samples', type=int, default=16)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--json', help='also write the results here')
    args = p.parse_args(argv)
    from mmagic_cm.evaluation.benchmark import whole_process_times
    py = sys.executable
    with tempfile.TemporaryDirectory() as out:
        sample = [py, 'tools/sample.py', osp.abspath(args.config), '--num-samples',
                  str(args.num_samples), '--batch-size', str(args.batch_size), '--no-progress',
                  '--out', osp.join(out, 'x.npz')]
        commands = {'python -c "import torch"': [py, '-c', 'import torch']}
        if args.cm_repo:
            commands['original fp32'] = [
                py, 'tools/reference/original_sample.py', args.cm_repo, '--',
                *ORIGINAL_IMAGENET64, '--batch_size', str(args.batch_size), '--num_samples',
                str(args.num_samples), '--model_path', osp.abspath(args.checkpoint)]
        ckpt = ['--checkpoint', osp.abspath(args.checkpoint)]
        commands['ours fp32'] = sample + ckpt
        commands['ours bf16'] = sample + ckpt + ['--dtype', 'bf16']
        env = {'original fp32': {'OPENAI_LOGDIR': out}}
        for f in args.exported:
            name = osp.basename(f)
            commands[f'{name}, no cache'] = sample + ['--checkpoint', osp.abspath(f)]
            env[f'{name}, no cache'] = {'MMAGIC_CM_OPENVINO_CACHE': '0'}
            commands[name] = sample + ['--checkpoint', osp.abspath(f)]
        try:
            res = whole_process_times(commands, args.reps, env)
        except RuntimeError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 1
    base = res.get('original fp32', {}).get('median_s')
    print('| command | seconds (median) | runs | x original |\n|---|---|---|---|')
    for name, r in res.items():
        timed = base and name != 'python -c "import torch"'  # a floor, not a way to sample
        ratio = f'{base / r["median_s"]:.2f}' if timed else '-'
        print(f'| {name} | {r["median_s"]:.2f} | {", ".join(f"{t:.1f}" for t in r["all_s"])} '
              f'| {ratio} |')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
