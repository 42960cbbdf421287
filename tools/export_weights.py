#!/usr/bin/env python
"""Turn a training checkpoint into a bare UNet file (the released format).

    python tools/export_weights.py work_dirs/RUN/iter_6000.pth OUT.pt [--ema 0.999] [--fp16]

The output is a plain state dict of the UNet (the EMA copy at ``--ema``, or
the online weights), loadable by every entry point (``model_path``,
``--checkpoint``, the original code's ``load_state_dict``). ``--fp16``
halves the file; loading casts back to float32.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description='Export UNet weights from a training checkpoint')
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--ema', type=float, help='EMA rate to export (default: online weights)')
    p.add_argument('--fp16', action='store_true', help='store half precision')
    args = p.parse_args(argv)
    import torch

    from mmagic_cm.checkpoint import CheckpointError, extract_unet_state_dict, read_checkpoint
    from mmagic_cm.fileio import atomic_write
    try:
        state = extract_unet_state_dict(read_checkpoint(args.checkpoint), ema=args.ema)
    except CheckpointError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if args.fp16:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    state = {k: v.contiguous().clone() for k, v in state.items()}
    atomic_write(args.out, lambda f: torch.save(state, f))
    size = osp.getsize(args.out) / 2**20
    print(f'wrote {len(state)} tensors ({size:.1f} MiB) to {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
