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

Many processes (FID-scale runs): ``tools/dist_sample.sh CONFIG NPROC [...]``
or ``torchrun ... tools/sample.py``; each process draws its share of the
shards in ``OUT.shards/`` and rank 0 gathers them into OUT, equal to the
single-process result. ``--shard-size`` alone makes a one-process run
resumable; see :mod:`mmagic_cm.shards`.
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
    p.add_argument('--dtype', help='fp32 | bf16 | fp16 (fp16 on CUDA only); bf16/fp16 run '
                   'the UNet trunk in that dtype')
    p.add_argument('--channels-last', choices=('on', 'off'), default=None,
                   help='NHWC memory format for the UNet (default: on unless the config '
                   'says otherwise; measured faster on CPUs); off: the plain NCHW path, the '
                   'original\'s layout')
    p.add_argument('--compile', nargs='?', const=True, default=None, metavar='MODE',
                   help='torch.compile the UNet (the first batch compiles, minutes on a '
                   'CPU; needs a C++ compiler there); optional mode, e.g. reduce-overhead '
                   '(CUDA graphs on a GPU)')
    p.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    p.add_argument('--shard-size', type=int,
                   help='draw in shards of this many samples (a multiple of the batch '
                   'size), each saved to OUT.shards/ when done, so that a rerun after an '
                   'interruption skips them; default under torchrun: whole batches of '
                   'about 1000')
    p.add_argument('--max-shards', type=int,
                   help='draw at most this many shards (per process), then exit; the same '
                   'command again continues (jobs in time slices)')
    p.add_argument('--keep-shards', action='store_true',
                   help='keep OUT.shards/ after writing OUT')
    p.add_argument('--launcher', choices=['auto', 'none', 'pytorch'], default='auto',
                   help="pytorch: one of torchrun's processes (tools/dist_sample.sh), each "
                   "drawing its share of the shards; auto (default): that when torchrun's "
                   'variables are set')
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
                     sampler=args.sampler, ts=args.ts, steps=args.steps, dtype=args.dtype,
                     channels_last=getattr(args, 'channels_last', None),
                     compile=getattr(args, 'compile', None))
    for key, value in overrides.items():
        if value is not None:
            cfg.model[key] = value
    if args.sampler and args.sampler != 'multistep' and args.ts is None:
        cfg.model.ts = None
    if args.checkpoint:
        cfg.model.model_path = args.checkpoint
    return MODELS.build(cfg.model), cfg


def save_grid(images: np.ndarray, path: str, cols: Optional[int] = None) -> None:
    """uint8 NHWC images -> one PNG, ``cols`` wide (default: about square)."""
    from PIL import Image
    n, h, w, c = images.shape
    cols = cols or math.ceil(math.sqrt(n))
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
    from mmagic_cm.shards import dist_env

    t0 = time.perf_counter()
    model, cfg = build_model_from_args(args)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    rank, world, local_rank = dist_env(args.launcher)
    if world > 1 and device == 'cuda' and torch.cuda.is_available():
        device = f'cuda:{local_rank % torch.cuda.device_count()}'  # a GPU per process
    if torch.device(device).type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(f'--device {device}: CUDA is not available here; use --device cpu')
    settings = model.settings()
    resolve_dtype(settings['dtype'], device)
    if settings.get('compile'):
        from mmagic_cm.models.fast import check_compile_available
        check_compile_available(device)  # before minutes of loading
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
    sharded = world > 1 or args.shard_size is not None or args.max_shards is not None
    if sharded:
        shard_size = check_sharding(args, settings, num_samples)
    t1 = time.perf_counter()
    model.materialize()  # reads the checkpoint
    model.to(device).eval()
    t2 = time.perf_counter()
    if sharded:
        return run_sharded(args, model, cfg, num_samples, device, shard_size, rank, world,
                           dict(build_s=t1 - t0, load_s=t2 - t1))
    images, labels = model.sample(num_samples, labels=args.labels,
                                  progress=not args.no_progress)
    t3 = time.perf_counter()
    arrays = [images] if labels is None else [images, labels]
    _atomic_write(args.out, lambda f: np.savez(f, *arrays))
    if args.grid:
        save_grid(images, args.grid)
    return dict(images=images, labels=labels, build_s=t1 - t0, load_s=t2 - t1,
                sample_s=t3 - t2)


def check_sharding(args: argparse.Namespace, settings: dict, num_samples: int) -> int:
    """The shard size of a sharded run; refuses what cannot be sharded."""
    from mmagic_cm.shards import check_shard_size, default_shard_size
    if settings['generator'] == 'dummy':
        raise ValueError("--generator dummy draws from the global torch RNG, one stream "
                         'through the whole run that cannot be cut into shards; use '
                         'determ-indiv (or determ) for sharded, many-process or resumable '
                         'sampling')
    if args.max_shards is not None and args.max_shards < 1:
        raise ValueError(f'--max-shards must be >= 1, got {args.max_shards}')
    batch_size = int(settings['batch_size'])
    if args.shard_size is None:
        return default_shard_size(num_samples, batch_size)
    check_shard_size(args.shard_size, batch_size)
    return args.shard_size


def _run_meta(args: argparse.Namespace, model, cfg, num_samples: int, shard_size: int,
              device: str) -> dict:
    """Everything that decides a sharded run's images (compared on resume)."""
    import hashlib
    import json

    import torch

    from mmagic_cm.checkpoint import find_local_file, is_url
    from mmagic_cm.shards import file_sha256
    model_cfg = cfg.model.to_dict()
    path = model_cfg.pop('model_path', None)  # the file's contents count, not its name
    weights = None
    if path and is_url(path):
        weights = dict(url=path)
    elif path:
        weights = dict(sha256=file_sha256(find_local_file(path)))
    labels = model.sample_labels(args.labels, num_samples, model.settings()['seed'])
    return dict(
        format=1, num_samples=num_samples, shard_size=shard_size, model=model_cfg,
        settings=model.settings(), weights=weights,
        labels=None if labels is None else hashlib.sha256(
            json.dumps(labels).encode()).hexdigest(),
        device=torch.device(device).type)


def run_sharded(args: argparse.Namespace, model, cfg, num_samples: int, device: str,
                shard_size: int, rank: int, world: int, times: dict) -> dict:
    """Draw this process's shards into OUT.shards/; rank 0 gathers them into OUT.

    Every process takes every ``world``-th of the shards not yet drawn; with
    the shard size a multiple of the batch size, the shards' batches are the
    single-process run's, so OUT equals its images ('determ', 'determ-indiv').
    """
    import torch

    from mmagic_cm import shards
    if torch.device(device).type == 'cuda' and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))
    folder = shards.shard_folder(args.out)
    ranges = shards.shard_ranges(num_samples, shard_size)
    group = shards.Group(rank, world)
    try:
        t2 = time.perf_counter()
        reply = None
        if rank == 0:
            try:
                store = shards.ShardStore(folder, ranges, _run_meta(
                    args, model, cfg, num_samples, shard_size, device))
                reply = dict(key=store.key, done=store.prepare())
            except (ValueError, OSError) as exc:
                reply = dict(error=str(exc) if isinstance(exc, ValueError)
                             else f'cannot use {folder}: {exc}')
        reply = group.broadcast(reply)
        if 'error' in reply:
            raise ValueError(reply['error'])
        store = shards.ShardStore(folder, ranges, key=reply['key'])
        done = set(reply['done'])
        todo = [k for k in range(len(ranges)) if k not in done]
        mine = todo[rank::world][:args.max_shards]
        if rank == 0 and done:
            print(f'resuming: {len(done)} of {len(ranges)} shards are in {folder} already')
        bar = None
        if rank == 0 and not args.no_progress and mine:
            from tqdm.auto import tqdm
            bar = tqdm(total=sum(ranges[k][1] - ranges[k][0] for k in mine),
                       desc='sampling' + (f' (rank 0 of {world})' if world > 1 else ''),
                       unit='img')
        for k in mine:
            start, stop = ranges[k]
            images, labels = model.sample(num_samples, labels=args.labels, start=start,
                                          stop=stop)
            store.write(k, images, labels)
            if bar is not None:
                bar.update(stop - start)
        if bar is not None:
            bar.close()
        t3 = time.perf_counter()
        group.barrier()  # every process's shards are written
        drew = f'drew {len(mine)} shard(s) in {t3 - t2:.2f}s'
        if rank != 0:
            return dict(images=None, message=f'rank {rank} of {world}: {drew}')
        missing = store.missing()
        if missing:
            return dict(images=None, message=(
                f'{drew}; {len(ranges) - len(missing)} of {len(ranges)} shards are in '
                f'{folder}: the same command again draws the rest'))
        images, labels = store.gather()
        arrays = [images] if labels is None else [images, labels]
        _atomic_write(args.out, lambda f: np.savez(f, *arrays))
        if args.grid:
            save_grid(images, args.grid)
        if not args.keep_shards and not store.remove():
            print(f'note: left {folder}: it holds files besides the shards')
        return dict(images=images, labels=labels, sample_s=t3 - t2, **times)
    finally:
        group.close()


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from mmengine.config.utils import ConfigParsingError

    from mmagic_cm.checkpoint import CheckpointError
    try:
        result = run(args)
    except (ValueError, CheckpointError, FileNotFoundError, ConfigParsingError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if result['images'] is None:  # not all shards drawn yet, or not rank 0
        print(result['message'])
        return 0
    n = len(result['images'])
    print(f'wrote {n} images {result["images"].shape[1:]} to {args.out}'
          + (f' and a grid to {args.grid}' if args.grid else '')
          + f' (build {result["build_s"]:.2f}s, load {result["load_s"]:.2f}s, sample '
          f'{result["sample_s"]:.2f}s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
