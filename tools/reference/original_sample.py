#!/usr/bin/env python
"""Run the original ``scripts/image_sample.py`` of openai/consistency_models on
the CPU, as its users run it, for whole-process timings beside ours.

    python tools/reference/original_sample.py /path/to/consistency_models -- \\
        --training_mode consistency_distillation --sampler onestep --class_cond True \\
        --num_channels 192 --num_res_blocks 3 --num_head_channels 64 \\
        --attention_resolutions 32,16,8 --resblock_updown True --use_scale_shift_norm True \\
        --dropout 0.0 --image_size 64 --weight_schedule uniform --use_fp16 False \\
        --batch_size 4 --num_samples 16 --model_path cd_imagenet64_l2.pt

Only what the CPU lacks is replaced (:func:`mmagic_cm.testing.reference.run_original_script`):
flash attention by PyTorch's SDPA, mpi4py by one process, blobfile by local
files; torch.distributed runs gloo with one rank. The samples go where the
original's logger puts them (``$OPENAI_LOGDIR``, else a temporary folder).
"""
from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if not argv or argv[0].startswith('-'):
        print('usage: original_sample.py CM_REPO -- image_sample.py flags', file=sys.stderr)
        return 2
    repo, flags = argv[0], argv[1:]
    if flags[:1] == ['--']:
        flags = flags[1:]
    from mmagic_cm.testing.reference import run_original_script
    try:
        run_original_script(repo, 'scripts/image_sample.py', flags)
    except FileNotFoundError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
