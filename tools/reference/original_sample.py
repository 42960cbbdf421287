#!/usr/bin/env python
"""Run the original ``scripts/image_sample.py`` of openai/consistency_models on
the CPU, as its users run it, for whole-process timings beside ours.

    python tools/reference/original_sample.py /path/to/consistency_models -- \\
        --training_mode consistency_distillation --sampler onestep --class_cond True \\
        --num_channels 192 --num_res_blocks 3 --num_head_channels 64 \\
        --attention_resolutions 32,16,8 --resblock_updown True --use_scale_shift_norm True \\
        --dropout 0.0 --image_size 64 --weight_schedule uniform --use_fp16 False \\
        --batch_size 4 --num_samples 16 --model_path cd_imagenet64_l2.pt

Only what the CPU lacks is replaced (:mod:`mmagic_cm.testing.reference`):
flash attention by PyTorch's SDPA, mpi4py by one process, blobfile by local
files; torch.distributed runs gloo with one rank. The samples go where the
original's logger puts them (``$OPENAI_LOGDIR``, else a temporary folder).
"""
from __future__ import annotations

import os
import os.path as osp
import runpy
import sys


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0].startswith('-'):
        print('usage: original_sample.py CM_REPO -- image_sample.py flags', file=sys.stderr)
        return 2
    repo, flags = argv[0], argv[1:]
    if flags[:1] == ['--']:
        flags = flags[1:]
    script = osp.join(repo, 'scripts', 'image_sample.py')
    if not osp.isfile(script):
        print(f'error: {script} not found: give a checkout of openai/consistency_models',
              file=sys.stderr)
        return 2
    from mmagic_cm.testing.reference import install_stand_ins
    install_stand_ins('sdpa')
    sys.path.insert(0, repo)
    os.environ.setdefault('MASTER_ADDR', 'localhost')
    sys.argv = [script, *flags]
    runpy.run_path(script, run_name='__main__')
    return 0


if __name__ == '__main__':
    sys.exit(main())
