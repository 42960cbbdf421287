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
import os
import os.path as osp
import sys
import time
from typing import List, Optional

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


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


def to_float(images: np.ndarray):
    import torch
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(x) -> np.ndarray:
    from mmagic_cm.models import to_uint8_nhwc
    return to_uint8_nhwc(x).numpy()


def stroke_paintings(images: np.ndarray) -> np.ndarray:
    """Rough paintings of digits: 4x4 blocks, two grey levels (a child's strokes)."""
    import torch.nn.functional as F
    x = to_float(images)
    blocks = F.avg_pool2d(x, 4)
    painted = (blocks > -0.5).float() * 1.6 - 0.8
    return to_uint8(F.interpolate(painted, scale_factor=4, mode='nearest'))


def evaluate(model, images: np.ndarray, labels: np.ndarray, train_mean: np.ndarray,
             ts, seed: int) -> dict:
    """Every task's edited and baseline images and their metrics."""
    import torch
    import torch.nn.functional as F

    from mmagic_cm.editing import Colorize, edit
    from mmagic_cm.editing.algorithms import denoising_sigmas
    from mmagic_cm.editing.masks import builtin_mask
    from mmagic_cm.evaluation import psnr
    from mmagic_cm.evaluation.digits import load_classifier, to_model_input

    classifier = load_classifier()

    def accuracy(arr: np.ndarray) -> float:
        with torch.no_grad():
            pred = classifier(to_model_input(arr)).argmax(1).numpy()
        return float((pred == labels).mean())

    truth = to_float(images)
    size = images.shape[1]
    results, shown = {}, {}

    def record(task, edited, baseline_name, baseline, region=None, observed=None, nfe=None):
        ed = to_float(edited)
        results[task] = {
            'nfe': nfe,
            'accuracy': accuracy(edited),
            'psnr': float(psnr(ed, truth, region).mean()),
            'baseline': baseline_name,
            'baseline_accuracy': accuracy(to_uint8(baseline)),
            'baseline_psnr': float(psnr(baseline, truth, region).mean()),
        }
        shown[task] = (observed, edited)

    common = dict(labels=labels.tolist(), ts=ts, seed=seed, batch_size=len(images))
    nfe = len(ts) - 1

    keep = builtin_mask('bottom', size)
    r = edit(model, 'inpaint', images, mask='bottom', **common)
    mean_fill = truth * keep + torch.from_numpy(train_mean).float() * (1 - keep)
    record('inpaint_bottom', r.images, 'training-set mean in the hole', mean_fill,
           region=1 - keep, observed=r.observed, nfe=nfe)

    r = edit(model, 'colorize', images, **common)
    tinted = Colorize().observe(truth)
    record('colorize', r.images, 'the luma input as is (tinted)', tinted, observed=r.observed,
           nfe=nfe)
    luma = (truth * torch.tensor([0.2989, 0.5870, 0.1140]).view(1, 3, 1, 1)).sum(1, True)
    results['colorize']['grey_from_luma_psnr'] = float(
        psnr(luma.expand(-1, 3, -1, -1), truth).mean())
    results['colorize']['grey_from_luma_accuracy'] = accuracy(
        to_uint8(luma.expand(-1, 3, -1, -1)))

    for patch in (4, 2):
        low = size // patch
        r = edit(model, 'superres', images, patch_size=patch, **common)
        bilinear = F.interpolate(F.avg_pool2d(truth, patch), size=size, mode='bilinear',
                                 align_corners=False)
        record(f'superres_{low}x{low}', r.images, f'bilinear upscaling of {low}x{low}',
               bilinear, observed=r.observed, nfe=nfe)

    r = edit(model, 'denoise', images, sigma=0.5, add_noise=True, **common)
    record('denoise_sigma0.5', r.images, 'the noisy input', to_float(r.observed),
           observed=r.observed, nfe=len(denoising_sigmas(0.5, ts)) - 1)

    strokes = stroke_paintings(images)
    r = edit(model, 'stroke', strokes, sigma=2.0, **common)
    results['stroke_sigma2'] = {'nfe': len(denoising_sigmas(2.0, ts)) - 1,
                                'accuracy': accuracy(r.images),
                                'painting_accuracy': accuracy(strokes)}
    shown['stroke_sigma2'] = (r.observed, r.images)
    return dict(metrics=results, shown=shown)


def write_figures(folder: str, images: np.ndarray, shown: dict, model, labels_pair=(3, 8),
                  seed: int = 0) -> List[str]:
    """One PNG per task: rows original / input / result, 10 digits (one per class)."""
    from sample import save_grid

    from mmagic_cm.editing import edit
    paths = []
    first = [int(np.flatnonzero(shown['_labels'] == k)[0]) for k in range(10)]
    for task, pair in shown.items():
        if task.startswith('_'):
            continue
        observed, edited = pair
        grid = np.concatenate([images[first], observed[first], edited[first]])
        path = osp.join(folder, f'{task}.png')
        save_grid(np.kron(grid, np.ones((1, 4, 4, 1), dtype=np.uint8)), path, cols=10)
        paths.append(path)
    r = edit(model, 'interpolate', labels=list(labels_pair), num_points=10, seed=seed)
    path = osp.join(folder, 'interpolate.png')
    save_grid(np.kron(r.images, np.ones((1, 4, 4, 1), dtype=np.uint8)), path, cols=10)
    return paths + [path]


def write_demo_inputs(folder: str, images: np.ndarray, labels: np.ndarray) -> None:
    """demo/editing/digits: one held-out digit per class (digit_K.png, K = label);
    demo/editing/strokes: rough paintings of them."""
    from PIL import Image
    strokes = stroke_paintings(images)
    for sub, arr in (('digits', images), ('strokes', strokes)):
        os.makedirs(osp.join(folder, sub), exist_ok=True)
        for k in range(10):
            i = int(np.flatnonzero(labels == k)[0])
            Image.fromarray(arr[i]).save(osp.join(folder, sub, f'digit_{k}.png'))


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config

    import mmagic_cm  # noqa: F401
    from mmagic_cm.datasets.digits import load_digits_arrays
    from mmagic_cm.editing.api import DEFAULT_TS
    from mmagic_cm.models.samplers import check_ts
    from mmagic_cm.registry import MODELS

    cfg = Config.fromfile(args.config)
    if args.checkpoint:
        cfg.model.model_path = args.checkpoint
    model = MODELS.build(cfg.model)
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
    sys.exit(main())
