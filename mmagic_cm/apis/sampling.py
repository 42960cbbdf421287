"""Sampling to files: ``tools/sample.py``'s work, as a library function.

:func:`sample_to_file` builds the model, checks every input before reading
weights, draws the images (in one process, or in resumable shards across
torchrun's processes, :mod:`mmagic_cm.distributed.shards`) and writes the ``.npz``
(``arr_0``: uint8 N x H x W x 3; ``arr_1``: int64 labels for
class-conditional models) and an optional grid, atomically.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Dict, Optional

import numpy as np
import torch

from ..files.atomic import atomic_write, check_outputs, file_sha256
from ..files.images import MIN_TILE, grid_format, save_grid
from ..sampling.batching import memory_bytes
from .build import build_from_config, default_device


@dataclasses.dataclass
class SamplingJob:
    """What to sample and where to write it (the options of ``tools/sample.py``).

    ``num_samples`` None: one batch, or one image per ``labels`` entry.
    The sampling settings (``batch_size`` ... ``compile``) default to the
    config's. ``shard_size``/``max_shards`` (or several torchrun processes)
    make the run sharded and resumable.
    """
    config: str
    checkpoint: Optional[str] = None
    num_samples: Optional[int] = None
    labels: Optional[str] = None
    out: str = 'samples.npz'
    grid: Optional[str] = None
    device: Optional[str] = None
    batch_size: Optional[int] = None
    seed: Optional[int] = None
    generator: Optional[str] = None
    sampler: Optional[str] = None
    ts: Optional[str] = None
    trig_ts: Optional[str] = None
    steps: Optional[int] = None
    dtype: Optional[str] = None
    channels_last: Optional[bool] = None
    compile: object = None
    progress: bool = True
    shard_size: Optional[int] = None
    max_shards: Optional[int] = None
    keep_shards: bool = False
    launcher: str = 'auto'
    grid_native: bool = False
    cfg_options: Dict = dataclasses.field(default_factory=dict)

    def settings(self) -> Dict:
        return dict(batch_size=self.batch_size, seed=self.seed, generator=self.generator,
                    sampler=self.sampler, ts=self.ts, trig_ts=self.trig_ts, steps=self.steps,
                    dtype=self.dtype,
                    channels_last=self.channels_last, compile=self.compile)


def sample_to_file(job: SamplingJob) -> Dict:
    """Run ``job``; returns the arrays written and timings.

    Returns:
        ``dict(images, labels, build_s, load_s, sample_s)``; ``images`` is None
        (and ``message`` says why) when this process wrote no ``.npz``: not
        all shards are drawn yet, or it is not rank 0.

    Raises:
        ValueError, FileNotFoundError, CheckpointError: bad input, found
        before any weights are read; nothing is written.
    """
    from ..denoiser.fast import check_compile_available
    from ..distributed.shards import dist_env
    from ..sampling.settings import resolve_dtype

    t0 = time.perf_counter()
    model, cfg = build_from_config(job.config, job.checkpoint, job.cfg_options,
                                   **job.settings())
    device = default_device(job.device, model.model_path)
    rank, world, local_rank = dist_env(job.launcher)
    if world > 1 and device == 'cuda' and torch.cuda.is_available():
        device = f'cuda:{local_rank % torch.cuda.device_count()}'  # a GPU per process
    settings = model.settings()
    resolve_dtype(settings.dtype, device)
    if settings.compile:
        check_compile_available(device)  # before minutes of loading
    num_samples = job.num_samples
    if num_samples is None:
        n_labels = len(job.labels.split(',')) if job.labels else 1
        num_samples = n_labels if n_labels > 1 else settings.batch_size
    if num_samples < 1:
        raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
    check_memory(num_samples, model.image_shape, settings.generator)
    model.sample_labels(job.labels, num_samples, settings.seed)  # before the weights
    if not job.out.endswith('.npz'):
        raise ValueError(f'--out {job.out}: the output must be an .npz file')
    if job.grid:
        grid_format(job.grid)
    check_outputs({'--out': job.out, '--grid': job.grid},
                  {'config': job.config, '--checkpoint': job.checkpoint})
    sharded = world > 1 or job.shard_size is not None or job.max_shards is not None
    if sharded:
        shard_size = check_sharding(job, settings, num_samples)
    t1 = time.perf_counter()
    model.to(device).eval()  # (UNet moves are kept for when its weights arrive)
    model.materialize()  # reads the checkpoint
    t2 = time.perf_counter()
    times = dict(build_s=t1 - t0, load_s=t2 - t1)
    if sharded:
        return sample_sharded(job, model, cfg, num_samples, device, shard_size, rank, world,
                              times)
    images, labels = model.sample(num_samples, labels=job.labels, progress=job.progress)
    times['sample_s'] = time.perf_counter() - t2
    write_samples(job, images, labels)
    return dict(images=images, labels=labels, **times)


def check_memory(num_samples: int, image_shape, generator: str) -> None:
    """Refuse, before allocating anything, a request whose images (uint8, kept
    until the .npz is written) and, for 'determ', whose noise (float32 for all
    samples at once) cannot fit in this machine's memory."""
    per_image = int(np.prod(image_shape))
    need = num_samples * per_image * (1 + (4 if generator == 'determ' else 0))
    have = memory_bytes()
    if have and need > 0.8 * have:
        raise ValueError(
            f'--num-samples {num_samples}: about {need / 2**30:.1f} GiB of images'
            + (' and noise' if generator == 'determ' else '')
            + f', more than this machine\'s {have / 2**30:.0f} GiB of memory; draw fewer per '
            'run (several runs with other seeds), and use --generator determ-indiv, which '
            'draws noise per batch')


def write_samples(job: SamplingJob, images: np.ndarray, labels: Optional[np.ndarray]) -> None:
    """The ``.npz`` (and the grid), each written atomically."""
    arrays = [images] if labels is None else [images, labels]
    atomic_write(job.out, lambda f: np.savez(f, *arrays))
    if job.grid:
        save_grid(images, job.grid, min_tile=0 if job.grid_native else MIN_TILE)


def check_sharding(job: SamplingJob, settings, num_samples: int) -> int:
    """The shard size of a sharded run; refuses what cannot be sharded."""
    from ..distributed.shards import check_shard_size, default_shard_size
    if settings.generator == 'dummy':
        raise ValueError("--generator dummy draws from the global torch RNG, one stream "
                         'through the whole run that cannot be cut into shards; use '
                         'determ-indiv (or determ) for sharded, many-process or resumable '
                         'sampling')
    if job.max_shards is not None and job.max_shards < 1:
        raise ValueError(f'--max-shards must be >= 1, got {job.max_shards}')
    if job.shard_size is None:
        return default_shard_size(num_samples, settings.batch_size)
    check_shard_size(job.shard_size, settings.batch_size)
    return job.shard_size


def run_meta(job: SamplingJob, model, cfg, num_samples: int, shard_size: int,
             device: str) -> Dict:
    """Everything that decides a sharded run's images (compared on resume)."""
    from ..files.checkpoint import find_local_file, is_url
    model_cfg = cfg.model.to_dict()
    path = model.model_path  # the file's contents count, not its name
    model_cfg.pop('model_path', None)
    weights = None
    if path and is_url(path):
        weights = dict(url=path)
    elif path:
        weights = dict(sha256=file_sha256(find_local_file(path)))
    settings = model.settings()
    labels = model.sample_labels(job.labels, num_samples, settings.seed)
    return dict(
        format=1, num_samples=num_samples, shard_size=shard_size, model=model_cfg,
        settings=settings.as_dict(), weights=weights,
        labels=None if labels is None else hashlib.sha256(
            json.dumps(labels).encode()).hexdigest(),
        device=torch.device(device).type)


def sample_sharded(job: SamplingJob, model, cfg, num_samples: int, device: str,
                   shard_size: int, rank: int, world: int, times: Dict) -> Dict:
    """Draw this process's shards into OUT.shards/; rank 0 gathers them into OUT.

    Every process takes every ``world``-th of the shards not yet drawn; with
    the shard size a multiple of the batch size, the shards' batches are the
    single-process run's, so OUT equals its images ('determ', 'determ-indiv').
    """
    from ..distributed import shards
    if torch.device(device).type == 'cuda' and torch.device(device).index is not None:
        torch.cuda.set_device(torch.device(device))
    folder = shards.shard_folder(job.out)
    ranges = shards.shard_ranges(num_samples, shard_size)
    group = shards.Group(rank, world)
    try:
        t2 = time.perf_counter()
        reply = None
        if rank == 0:
            try:
                store = shards.ShardStore(folder, ranges, run_meta(
                    job, model, cfg, num_samples, shard_size, device))
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
        mine = todo[rank::world][:job.max_shards]
        if rank == 0 and done:
            print(f'resuming: {len(done)} of {len(ranges)} shards are in {folder} already')
        bar = None
        if rank == 0 and job.progress and mine:
            from tqdm.auto import tqdm
            bar = tqdm(total=sum(ranges[k][1] - ranges[k][0] for k in mine),
                       desc='sampling' + (f' (rank 0 of {world})' if world > 1 else ''),
                       unit='img')
        for k in mine:
            start, stop = ranges[k]
            images, labels = model.sample(num_samples, labels=job.labels, start=start,
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
        write_samples(job, images, labels)
        if not job.keep_shards and not store.remove():
            print(f'note: left {folder}: it holds files besides the shards')
        return dict(images=images, labels=labels, sample_s=t3 - t2, **times)
    finally:
        group.close()
