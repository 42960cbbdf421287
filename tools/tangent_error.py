#!/usr/bin/env python
"""sCM's tangent from finite differences against the exact one (the JVP).

    python tools/tangent_error.py CONFIG [--checkpoint PATH] [--time-scale S]
        [--num-images 64] [--times 0.1,0.3,...] [--steps 0.02,0.001] [--out rows.json]
    python tools/tangent_error.py --tiny [--time-scale S]   # a seeded 8x8 UNet

For each TrigFlow time t: the mean (and smallest) cosine similarity, over the
images, of the normalised tangent g built from a central difference with step
h against g built from the JVP, and the relative L2 error of the time
derivative itself (mmagic_cm.training.diagnostics.tangent_agreement; float64,
eval mode, sCT's dx_t/dt from the data). CONFIG's UNet and preconditioning
(``precond.time_scale``: the network's time input is time_scale · ln σ) with
its ``model_path`` weights, on the held-out digits (``--data digits``) or
seeded uniform noise images (``--data noise``).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    from mmagic_cm.training.diagnostics import DEFAULT_STEPS, DEFAULT_TIMES
    p = argparse.ArgumentParser(description='Finite-difference tangent error against the JVP')
    p.add_argument('config', nargs='?', help='a config with an EDM-parameterised network')
    p.add_argument('--tiny', action='store_true',
                   help="the tests' seeded 8x8 UNet and its 6 images instead of a config")
    p.add_argument('--checkpoint', help="weights (default: the config's model_path)")
    p.add_argument('--time-scale', type=float,
                   help="the network's time input scale (default: the config's precond; "
                   '250 with --tiny)')
    p.add_argument('--data', choices=['digits', 'noise'], default='digits',
                   help='digits: the held-out digits split; noise: seeded uniform images')
    p.add_argument('--num-images', type=int, default=64)
    p.add_argument('--times', default=','.join(f'{t:g}' for t in DEFAULT_TIMES),
                   help='TrigFlow times in (0, pi/2), comma-separated')
    p.add_argument('--steps', default=','.join(f'{h:g}' for h in DEFAULT_STEPS),
                   help='finite-difference steps in t, comma-separated')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='write the rows to this JSON file')
    args = p.parse_args(argv)
    if bool(args.config) == args.tiny:
        p.error('give a CONFIG or --tiny')
    return args


def floats(text: str, name: str) -> List[float]:
    try:
        return [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise ValueError(f'--{name}: comma-separated numbers, got {text!r}') from None


def load_network(args):
    """``(unet, precond, images, labels)`` of the command line."""
    import numpy as np
    import torch

    from mmagic_cm.denoiser.precond import build_precond, precond_config
    from mmagic_cm.models.weights import build_unet, load_unet_from

    if args.tiny:
        from mmagic_cm.testing import tiny_ect_denoiser
        den, images, labels = tiny_ect_denoiser()
        precond = den.precond.with_boundary_condition(False)
        scale = 250.0 if args.time_scale is None else args.time_scale
        precond = build_precond(dict(sigma_data=precond.sigma_data, sigma_min=precond.sigma_min,
                                     sigma_max=precond.sigma_max, time_scale=scale))
        return den.net, precond, images, labels

    from mmengine.config import Config
    cfg = Config.fromfile(args.config, import_custom_modules=False)
    model = cfg.model
    pcfg = dict(precond_config(model) or {})
    if args.time_scale is not None:
        pcfg['time_scale'] = args.time_scale
    precond = build_precond(pcfg, boundary_condition=False)
    unet = build_unet(dict(model.unet, dropout=0.0))
    path = args.checkpoint or model.get('model_path')
    if not path:
        raise ValueError(f'{args.config} names no weights (model_path): give --checkpoint')
    load_unet_from(unet, path, local_hint='--checkpoint PATH')
    size, channels = unet.image_size, unet.in_channels
    if args.data == 'digits':
        from mmagic_cm.datasets.digits import load_digits_arrays
        arrays, labels = load_digits_arrays(size, 'test')
        arrays, labels = arrays[:args.num_images], labels[:args.num_images]
        images = torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 127.5 - 1
        labels = torch.from_numpy(labels)
        if images.shape[1] != channels:
            raise ValueError(f'the digits are 3-channel; this UNet takes {channels}')
    else:
        gen = torch.Generator().manual_seed(args.seed)
        images = torch.rand(args.num_images, channels, size, size, generator=gen) * 2 - 1
        labels = None
        if unet.num_classes:
            labels = torch.from_numpy(
                np.arange(args.num_images) % unet.num_classes).long()
    if not unet.num_classes:
        labels = None
    return unet, precond, images, labels


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    times, steps = floats(args.times, 'times'), floats(args.steps, 'steps')
    import mmagic_cm  # noqa: F401
    from mmagic_cm.training.diagnostics import summarize, tangent_agreement

    unet, precond, images, labels = load_network(args)
    rows = tangent_agreement(unet, precond, images, labels, times, steps, seed=args.seed)
    what = 'tiny seeded UNet' if args.tiny else args.checkpoint or args.config
    print(f'{what}: time input {precond.time_scale:g} ln sigma, {len(images)} images, float64')
    head = ['t', 'sigma'] + [f'{k}@{h:g}' for h in steps for k in ('cos_g', 'rel_err_dF')]
    print('  '.join(f'{k:>16}' for k in head))
    for row in rows:
        print('  '.join(f'{row[k]:16.4f}' for k in head))
    mean = summarize(rows, steps)
    print('mean over t: ' + ', '.join(f'{k} {v:.3f}' for k, v in mean.items()))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(time_scale=precond.time_scale, rows=rows, mean=mean), f, indent=1)
    return 0


if __name__ == '__main__':
    from mmagic_cm.cli import run_main
    sys.exit(run_main(main))
