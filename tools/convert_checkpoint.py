#!/usr/bin/env python
"""Convert a consistency-model UNet between the released ``.pt`` and diffusers.

The direction follows SRC: a ``.pt`` file (a released checkpoint, or one saved
by training: pick its EMA with ``--ema``) or URL becomes a
``ConsistencyModelPipeline`` folder (``unet/`` = ``UNet2DModel``,
``scheduler/`` = ``CMStochasticIterativeScheduler``, ``model_index.json``);
a diffusers folder becomes a raw ``.pt`` state dict that loads into
``ConsistencyUNetModel`` (and the original code) with ``strict=True``.

After converting, both UNets (ours with the raw weights, diffusers' with the
converted ones, both as written in ``--dtype``, run in float32) denoise the
same seeded inputs at two noise levels (with class labels if conditional);
the conversion fails, leaving nothing behind, if their outputs differ by more
than ``--tolerance`` (scaled by the output magnitude when above 1).

Example:
    python tools/convert_checkpoint.py \\
        configs/consistency_models/consistency_models_cd-lpips_imagenet1k-64x64.py \\
        cd_imagenet64_lpips.pt cd_imagenet64_lpips_diffusers
    python tools/convert_checkpoint.py CONFIG cd_imagenet64_lpips_diffusers back.pt
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

SAVE_DTYPES = ('fp32', 'fp16')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description='Convert a consistency-model UNet between the released raw .pt format '
        'and a diffusers ConsistencyModelPipeline folder (direction from SRC).')
    p.add_argument('config', help='config of the model, e.g. configs/consistency_models/'
                   'consistency_models_cd-lpips_imagenet1k-64x64.py')
    p.add_argument('src', help='.pt file or http(s) URL (-> diffusers folder), or a '
                   'diffusers folder (-> .pt file)')
    p.add_argument('dst', help='output: a folder for diffusers, a .pt file for raw')
    p.add_argument('--ema', type=float, help='for checkpoints saved by training: convert '
                   'the EMA weights at this rate (e.g. 0.9999) instead of the online ones')
    p.add_argument('--dtype', default='fp32', choices=SAVE_DTYPES,
                   help='dtype of the written weights (default %(default)s)')
    p.add_argument('--no-check', action='store_true',
                   help='skip running both UNets to compare their outputs')
    p.add_argument('--tolerance', type=float, default=1e-4,
                   help='largest accepted max abs output difference, times the output '
                   'magnitude when that exceeds 1 (default %(default)s)')
    p.add_argument('--device', help='device of the check: cpu | cuda | cuda:N (default: '
                   'cuda if available, else cpu)')
    p.add_argument('--force', action='store_true', help='replace an existing DST')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config.utils import ConfigParsingError

    import mmagic_cm  # noqa: F401  (registers the modules)
    from mmagic_cm.conversion.checkpoint_files import convert_checkpoint
    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        result = convert_checkpoint(args.config, args.src, args.dst, dtype=args.dtype,
                                    ema=args.ema, force=args.force, check=not args.no_check,
                                    tolerance=args.tolerance, device=args.device)
    except (ValueError, CheckpointError, OSError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    for line in result.get('warnings', ()):
        print(f'warning: {line}', file=sys.stderr)
    what = 'diffusers folder' if result['direction'] == 'diffusers' else 'raw UNet state dict'
    print(f'wrote {what} {args.dst} ({result["params"] / 1e6:.2f}M parameters, {args.dtype}) '
          f'from {args.src} in {result["seconds"]:.1f}s')
    check = result['check']
    if check is None:
        print('check skipped (--no-check)')
    else:
        print(f'check: ConsistencyUNetModel vs diffusers UNet2DModel at sigma '
              f'{", ".join(f"{s:g}" for s in check["sigmas"])}: max abs difference '
              f'{check["diff"]:.3g} (outputs up to {check["scale"]:.3g}, tolerance '
              f'{check["limit"]:.3g})')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
