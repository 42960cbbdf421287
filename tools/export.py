#!/usr/bin/env python
"""Export a consistency model's (or EDM teacher's) D(x, σ[, y]) -> x0 to ONNX or OpenVINO.

One graph, preconditioning included, serves onestep, multistep and the
editing loops; sample through it with ``tools/sample.py CONFIG --checkpoint
model.onnx`` (or ``model.xml``). The export is checked against PyTorch on
random inputs (max abs difference printed, per-dtype tolerance) and written
atomically. Needs ``pip install -e ".[deploy]" -c requirements/constraints.txt``.

Example:
    python tools/export.py configs/consistency_models/\\
consistency_models_cd_digits-onestep-16x16.py --format onnx --batch-size 10 \\
        --out cd_digits16.onnx

int8 (``--format openvino --dtype int8``) is NNCF's post-training
quantisation, calibrated on the model's own noisy inputs (no dataset;
``pip install nncf``).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmagic_cm.cli import cfg_options_action
    DictAction = cfg_options_action()  # noqa: N806 (mmengine's, refusing items without '=')
    p = argparse.ArgumentParser(description='Export D(x, sigma[, y]) to ONNX or OpenVINO')
    p.add_argument('config', help='config file, e.g. configs/consistency_models/...py')
    p.add_argument('--checkpoint', help="local .pt file or URL; default: the config's "
                   'model_path')
    from mmagic_cm.export import format_named, format_names
    formats = [format_named(n) for n in format_names()]
    p.add_argument('--format', required=True, choices=format_names())
    p.add_argument('--dtype', default='fp32', help='; '.join(
        f'{f.name}: {" | ".join(f.dtypes)}' for f in formats) + ' (int8: NNCF post-training '
        'quantisation, needs nncf) (default %(default)s)')
    p.add_argument('--calibration-batches', type=int, default=16,
                   help='int8: batches of the model\'s own noisy inputs to calibrate on '
                   '(default %(default)s)')
    batch = p.add_mutually_exclusive_group()
    batch.add_argument('--batch-size', type=int, help="static batch size (default: the "
                       "config's batch_size)")
    batch.add_argument('--dynamic-batch', action='store_true', help='any batch size')
    p.add_argument('--out', required=True, help=', '.join(
        f'{f.suffix} ({f.name})' for f in formats) + ' (openvino: the .bin goes beside it)')
    p.add_argument('--verbose', action='store_true',
                   help='also show the third-party warnings MMagic prints on import')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.clip_denoised=False')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.cli.quiet import import_mmagic
    import_mmagic(args.verbose, models=False)
    import os.path as osp

    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.apis.build import build_from_config
    from mmagic_cm.export import MissingBackendError, export_denoiser
    from mmagic_cm.files.checkpoint import CheckpointError
    t0 = time.perf_counter()
    try:
        model, _ = build_from_config(args.config, args.checkpoint, args.cfg_options)
        if not model.model_path:
            print('note: no checkpoint (no --checkpoint, no model_path in the config): '
                  'exporting random weights')
        meta = export_denoiser(model, args.out, format=args.format, dtype=args.dtype,
                               batch_size=args.batch_size, dynamic_batch=args.dynamic_batch,
                               config=osp.basename(args.config),
                               calibration_batches=args.calibration_batches)
    except (ValueError, CheckpointError, FileNotFoundError, MissingBackendError,
            ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    batch = 'dynamic batch' if meta['dynamic_batch'] else f'batch {meta["batch_size"]}'
    print(f'wrote {args.out} ({args.format}, {args.dtype}, {batch}) in '
          f'{time.perf_counter() - t0:.1f}s')
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
