#!/usr/bin/env python
"""Measure zero-shot editing on the held-out digits (offline, shipped models).

    python tools/eval_digits_editing.py CONFIG [--out metrics.json]
        [--figures docs/editing] [--demo-inputs demo/editing]

Tasks on the 297 held-out digits, against their true labels and images:

- inpaint the lower half (mask 'bottom'), baseline: the training-set mean
  image in the hole; PSNR over the hole;
- colorize from the luminance (the input is the luma projection, a tinted
  digit); baselines: the tinted input itself, and grey (Y, Y, Y) from the luma
  (exact for these grey digits); PSNR over the image;
- super-resolve from 4x4 and 8x8 patch means, baseline: bilinear upscaling
  of the low-resolution image; PSNR over the image;
- denoise noise of std 0.5 (images in [-1, 1]), baseline: the noisy input.

Accuracy is the shipped classifier's (99.66% on the clean held-out digits).
``--figures`` writes one PNG per task (rows: original, input, result) and
``--demo-inputs`` the sample inputs that README's tools/edit.py commands use.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Editing metrics on the held-out digits')
    p.add_argument('config', help='a digits CD/CT config')
    p.add_argument('--checkpoint', help="weights (default: the config's model_path)")
    p.add_argument('--ts', help='multistep grid indices (default: editing default)')
    p.add_argument('--num', type=int, default=297, help='held-out digits to use (<= 297)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='write the metrics to this JSON file')
    p.add_argument('--figures', help='write one PNG per task into this folder')
    p.add_argument('--demo-inputs', help='write the demo inputs of tools/edit.py here')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmagic_cm.apis import init_model
    from mmagic_cm.datasets.digits import load_digits_arrays
    from mmagic_cm.denoiser.sigmas import check_ts
    from mmagic_cm.editing.api import DEFAULT_TS
    from mmagic_cm.evaluation.digits_editing import (
        evaluate,
        to_float,
        write_demo_inputs,
        write_figures,
    )

    model = init_model(args.config, args.checkpoint, device='cpu')
    model.materialize()
    model.eval()
    images, labels = load_digits_arrays(16, 'test')
    images, labels = images[:args.num], labels[:args.num]
    train, _ = load_digits_arrays(16, 'train')
    train_mean = to_float(train).mean(0).numpy()
    ts = check_ts(args.ts, 40) if args.ts else DEFAULT_TS
    t0 = time.perf_counter()
    out = evaluate(model, images, labels, train_mean, ts, args.seed)
    out['shown']['_labels'] = labels
    metrics = dict(config=args.config, num=len(images), ts=list(ts), seed=args.seed,
                   seconds=round(time.perf_counter() - t0, 1), tasks=out['metrics'])
    print(json.dumps(metrics, indent=1))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=1)
    if args.figures:
        for path in write_figures(args.figures, images, out['shown'], model, seed=args.seed):
            print('wrote', path)
    if args.demo_inputs:
        write_demo_inputs(args.demo_inputs, images, labels)
        print('wrote demo inputs to', args.demo_inputs)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
