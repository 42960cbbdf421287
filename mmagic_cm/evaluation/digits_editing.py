"""Editing measured on the held-out digits (``tools/eval_digits_editing.py``).

Every editing task of :func:`mmagic_cm.editing.edit` on the test split of
the digits, scored by the shipped digits classifier's accuracy against the
true labels and by PSNR over the edited region, each beside a naive
baseline (the training-set mean in a hole, bilinear upscaling, ...).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import List

import numpy as np
import torch

from ..files.images import from_uint8, save_grid, to_uint8


def to_float(images: np.ndarray) -> torch.Tensor:
    return from_uint8(images)


def as_uint8(x: torch.Tensor) -> np.ndarray:
    return to_uint8(x).numpy()


def stroke_paintings(images: np.ndarray) -> np.ndarray:
    """Rough paintings of digits: 4x4 blocks, two grey levels (a child's strokes)."""
    import torch.nn.functional as F
    x = to_float(images)
    blocks = F.avg_pool2d(x, 4)
    painted = (blocks > -0.5).float() * 1.6 - 0.8
    return as_uint8(F.interpolate(painted, scale_factor=4, mode='nearest'))


def evaluate(model, images: np.ndarray, labels: np.ndarray, train_mean: np.ndarray,
             ts, seed: int) -> dict:
    """Every task's edited and baseline images and their metrics."""
    import torch.nn.functional as F

    from ..editing import Colorize, edit
    from ..editing.algorithms import denoising_sigmas
    from ..editing.masks import builtin_mask
    from .digits import load_classifier, to_model_input
    from .quality import psnr

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
            'baseline_accuracy': accuracy(as_uint8(baseline)),
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
        as_uint8(luma.expand(-1, 3, -1, -1)))

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
    from ..editing import edit
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
