#!/usr/bin/env python
"""Sample images from a consistency model (or its EDM teacher) into an .npz.

A CPU-capable replacement for the original ``scripts/image_sample.py``: the
same images for the same weights, seed, generator, labels and sampler
settings, written as ``arr_0`` (N x H x W x 3 uint8) and, for class-
conditional models, ``arr_1`` (N int64 labels).

Example:
    python tools/sample.py configs/consistency_models/\\
consistency_models_8xb256-imagenet1k-onestep-64x64.py \\
        --checkpoint cd_imagenet64_lpips.pt --num-samples 16 --batch-size 4 \\
        --labels 145 --out samples.npz --grid grid.png
"""
from __future__ import annotations

import argparse
import math
import os
import os.path as osp
import sys
import tempfile
import time
from typing import List, Optional

import numpy as np


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(
        description='Sample images from a consistency model into an .npz '
        '(like the original scripts/image_sample.py).')
    p.add_argument('config', help='config file, e.g. configs/consistency_models/...py')
    p.add_argument('--checkpoint', help='local .pt file or http(s) URL; default: the '
                   "config's model_path")
    p.add_argument('--num-samples', type=int, help='images to draw (default: one batch, '
                   'or one per --labels entry)')
    p.add_argument('--batch-size', type=int, help="default: the config's batch_size")
    p.add_argument('--seed', type=int, help="generator seed (default: the config's)")
    p.add_argument('--generator', help='dummy | determ | determ-indiv')
    p.add_argument('--labels', help='class labels for class-conditional models: one for '
                   'all, or one per sample; integers or ImageNet class names, comma-'
                   'separated (e.g. "145" or "king penguin,goldfish"). Default: seeded '
                   'random labels')
    p.add_argument('--sampler', help='onestep | multistep | heun | euler | ancestral | '
                   'dpm | progdist')
    p.add_argument('--ts', help='multistep grid indices, e.g. 0,22,39')
    p.add_argument('--steps', type=int, help='schedule length (multistep: grid size)')
    p.add_argument('--out', default='samples.npz', help='output .npz (default %(default)s)')
    p.add_argument('--grid', help='also write a PNG grid of the images')
    p.add_argument('--device', default=None, help='cpu | cuda | cuda:N (default: cuda if '
                   'available, else cpu)')
    p.add_argument('--dtype', help='fp32 | bf16 | fp16 (fp16 on CUDA only)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config entries, e.g. model.s_churn=0.5')
    return p.parse_args(argv)


def build_model_from_args(args: argparse.Namespace):
    """Config + overrides -> (model, cfg); validates without loading weights."""
    from mmengine.config import Config

    import mmagic_cm  # noqa: F401  (registers the modules)
    from mmagic_cm.registry import MODELS

    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    overrides = dict(batch_size=args.batch_size, seed=args.seed, generator=args.generator,
                     sampler=args.sampler, ts=args.ts, steps=args.steps, dtype=args.dtype)
    for key, value in overrides.items():
        if value is not None:
            cfg.model[key] = value
    if args.sampler and args.sampler != 'multistep' and args.ts is None:
        cfg.model.ts = None
    if args.checkpoint:
        cfg.model.model_path = args.checkpoint
    return MODELS.build(cfg.model), cfg


def save_grid(images: np.ndarray, path: str) -> None:
    """uint8 NHWC images -> one PNG, about square."""
    from PIL import Image
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
    _atomic_write(path, lambda f: Image.fromarray(canvas).save(f, format='PNG'))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic_write(path: str, write) -> None:
    """Write through a temporary file so a failure leaves no partial output."""
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def run(args: argparse.Namespace) -> dict:
    """Sample as ``args`` say; returns timings and the output arrays."""
    import torch

    from mmagic_cm.models import resolve_dtype

    t0 = time.perf_counter()
    model, _ = build_model_from_args(args)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu')
    settings = model.settings()
    resolve_dtype(settings['dtype'], device)
    num_samples = args.num_samples
    if num_samples is None:
        n_labels = len(args.labels.split(',')) if args.labels else 1
        num_samples = n_labels if n_labels > 1 else settings['batch_size']
    if num_samples < 1:
        raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
    # check the labels before spending time on weights
    model.sample_labels(args.labels, num_samples, settings['seed'])
    if not args.out.endswith('.npz'):
        raise ValueError(f'--out {args.out}: the output must be an .npz file')
    t1 = time.perf_counter()
    model.materialize()  # reads the checkpoint
    model.to(device).eval()
    t2 = time.perf_counter()
    images, labels = model.sample(num_samples, labels=args.labels,
                                  progress=not args.no_progress)
    t3 = time.perf_counter()
    arrays = [images] if labels is None else [images, labels]
    _atomic_write(args.out, lambda f: np.savez(f, *arrays))
    if args.grid:
        save_grid(images, args.grid)
    return dict(images=images, labels=labels, build_s=t1 - t0, load_s=t2 - t1,
                sample_s=t3 - t2)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.checkpoint import CheckpointError
    try:
        result = run(args)
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    n = len(result['images'])
    print(f'wrote {n} images {result["images"].shape[1:]} to {args.out}'
          + (f' and a grid to {args.grid}' if args.grid else '')
          + f' (build {result["build_s"]:.2f}s, load {result["load_s"]:.2f}s, sample '
          f'{result["sample_s"]:.2f}s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
