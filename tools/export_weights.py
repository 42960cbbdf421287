#!/usr/bin/env python
"""Turn a training checkpoint into a bare UNet file (the released format).

    python tools/export_weights.py work_dirs/RUN/iter_6000.pth OUT.pt [--ema 0.999] [--fp16]
        [--force]

The output is a plain state dict of the UNet (the EMA copy at ``--ema``, or
the online weights), loadable by every entry point (``model_path``,
``--checkpoint``, the original code's ``load_state_dict``). ``--fp16``
halves the file; loading casts back to float32. The file records the config,
iteration, EMA rate and commit that made it (``mmagic_cm.files.provenance``).
OUT is never the input, and an existing OUT is replaced only with ``--force``.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description='Export UNet weights from a training checkpoint')
    p.add_argument('checkpoint')
    p.add_argument('out')
    p.add_argument('--ema', type=float, help='EMA rate to export (default: online weights)')
    p.add_argument('--fp16', action='store_true', help='store half precision')
    p.add_argument('--force', action='store_true', help='replace an existing OUT')
    p.add_argument('--commit', help='the commit that trained it, when the checkpoint does '
                   'not say (checkpoints of tools/train.py do)')
    p.add_argument('--config', help='the config that trained it, when the checkpoint does '
                   'not say')
    args = p.parse_args(argv)
    from mmagic_cm.conversion.checkpoint_files import export_unet_weights
    from mmagic_cm.files.checkpoint import CheckpointError
    try:
        done = export_unet_weights(args.checkpoint, args.out, args.ema, args.fp16, args.force,
                                   dict(commit=args.commit, config=args.config))
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f"wrote {done['tensors']} tensors ({done['mib']:.1f} MiB) to {args.out}")
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
