"""Noise to uint8 images, top to bottom (diffusers style): settings -> denoiser -> sampler -> uint8.

1. settings: a :class:`~.settings.SamplingSettings` (sampler, steps, ts,
   generator, seed, batch size, dtype, channels_last, compile, ...);
2. denoiser (:func:`denoiser_for`): D(x, σ), the sampling UNet
   (:mod:`mmagic_cm.denoiser.unet`) prepared for the settings' dtype,
   channels_last and compile (:mod:`mmagic_cm.denoiser.fast`) inside EDM's
   scalings (:class:`~mmagic_cm.denoiser.precond.Denoiser`);
3. sampler (:func:`draw_batch`): ``x_T = σ_max z`` from the noise generator
   (:mod:`.noise`), then the registered sampler over its noise levels
   (:func:`~.samplers.karras_sample`), calling D(x, σ);
4. uint8 (:func:`draw_images`): a run's batches (:mod:`.batching`), each
   checked finite and truncated to uint8 (:func:`~mmagic_cm.files.images.to_uint8`).

``ConsistencyModel`` (:mod:`mmagic_cm.models`) runs these steps with its
UNet, preconditioning and settings; anything holding a UNet and a
``KarrasPrecond`` can.
"""
from __future__ import annotations

import contextlib
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..denoiser.fast import AutocastNet, InferenceUNets
from ..denoiser.precond import Denoiser, KarrasPrecond
from ..files.images import to_uint8
from .batching import pad_rows, run_batches
from .noise import get_generator
from .samplers import karras_sample
from .settings import SamplingSettings, resolve_dtype


def check_run(num_samples: int, start: int = 0, stop: Optional[int] = None) -> int:
    """``stop`` (default ``num_samples``) once ``[start, stop)`` is a
    non-empty part of ``[0, num_samples)``; ValueError otherwise."""
    if num_samples < 1:
        raise ValueError(f'num_samples must be >= 1, got {num_samples}')
    stop = num_samples if stop is None else stop
    if not 0 <= start < stop <= num_samples:
        raise ValueError(f'samples [{start}, {stop}) are not a non-empty part of '
                         f'[0, {num_samples})')
    return stop


def check_labels(labels: Optional[torch.Tensor], num_classes: Optional[int]) -> None:
    """ValueError unless there are (N,) ``labels`` iff the model is class-conditional."""
    if (labels is None) != (num_classes is None):
        raise ValueError('labels are needed for a class-conditional model and '
                         'not allowed for an unconditional one')


def denoiser_for(unet: nn.Module, precond: KarrasPrecond, settings: SamplingSettings,
                 device: torch.device, cache: InferenceUNets) -> Denoiser:
    """D(x, σ) of ``unet`` as the settings run it: dtype, channels_last (default
    on: faster on CPUs) and compile from ``cache``
    (:class:`~mmagic_cm.denoiser.fast.InferenceUNets`), clamping to [-1, 1] if
    ``clip_denoised``. Call it as ``D(x, sigma, y=labels)``: x (N, C, H, W),
    sigma (N,), labels (N,) long -> (N, C, H, W)."""
    channels_last = True if settings.channels_last is None else settings.channels_last
    dtype = resolve_dtype(settings.dtype, device)
    net, autocast = cache.get(unet, dtype, channels_last, settings.compile)
    if autocast is not None:
        net = AutocastNet(net, autocast, device.type)
    return Denoiser(net, precond, clip=settings.clip_denoised)


@torch.no_grad()
def draw_batch(denoiser: Callable, precond: KarrasPrecond, settings: SamplingSettings,
               shape: Sequence[int], generator, labels: Optional[torch.Tensor] = None,
               noise: Optional[torch.Tensor] = None, device='cpu',
               progress: bool = False) -> torch.Tensor:
    """One batch: the settings' sampler over ``precond``'s noise levels.

    Args:
        denoiser: D(x, σ, y=...) (:func:`denoiser_for`, or an exported file's).
        shape: (N, C, H, W).
        generator: a noise generator positioned at this batch.
        labels: (N,) long class labels, or None (unconditional).
        noise: (N, C, H, W) standard-normal starting noise; default the
            generator's first draw.

    Returns:
        (N, C, H, W) float32 in [-1, 1].
    """
    s, p = settings, precond
    cond = {} if labels is None else {'y': labels.to(device)}
    return karras_sample(
        partial(denoiser, **cond), shape, generator, sampler=s.sampler, steps=s.steps,
        sigma_min=p.sigma_min, sigma_max=p.sigma_max, rho=p.rho, ts=s.ts, s_churn=s.s_churn,
        s_tmin=s.s_tmin, s_tmax=s.s_tmax, s_noise=s.s_noise, device=device, noise=noise,
        progress=progress, trig_ts=s.trig_ts, sigma_data=p.sigma_data)


def draw_images(draw: Callable, num_samples: int, labels: Optional[List[int]],
                settings: SamplingSettings, rank: int = 0, world_size: int = 1, start: int = 0,
                stop: Optional[int] = None, progress: bool = False,
                source: str = 'the model in memory'
                ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Samples ``[start, stop)`` of a run of ``num_samples``, in batches of the
    settings' size, as uint8.

    The generator is positioned at every batch, so with 'determ' and
    'determ-indiv' each sample's noise does not depend on the batch size;
    where ``start`` is a multiple of the batch size, a shard's batches are the
    very batches of the full run and equal its rows bit for bit.

    Args:
        draw: ``draw(batch_size, generator, labels)`` -> (B, C, H, W) float in
            [-1, 1] (:func:`draw_batch` with the rest bound).
        labels: one class label per sample of the run (``num_samples``), or None.
        source: the weights, named in the error for NaN or infinite images.

    Returns:
        ``(images, labels)``: uint8 (N, H, W, C) and int64 (N,) or None,
        N = ``stop - start``.
    """
    stop = check_run(num_samples, start, stop)
    gen = get_generator(settings.generator, num_samples, settings.seed, rank=rank,
                        world_size=world_size)
    bs = settings.batch_size

    def make(first: int, count: int):
        y = None  # labels of the full run's batch (past stop too), padded
        if labels is not None:
            y = pad_rows(torch.tensor(labels[first:first + bs], dtype=torch.long), bs)
        batch = draw(bs, gen, y)
        if not bool(torch.isfinite(batch).all()):  # else black images, silently
            raise ValueError(
                f'sampling produced NaN or infinite values (dtype {settings.dtype}, weights '
                f'{source}); nothing was written. Check the checkpoint, or sample in fp32')
        return (to_uint8(batch), )

    images, = run_batches(make, gen, stop, bs, start, progress)
    label_arr = None if labels is None else np.asarray(labels[start:stop], dtype=np.int64)
    return images, label_arr


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    """Run with ``modules`` in eval mode (no dropout), then restore their modes."""
    unique = list({id(m): m for m in modules}.values())
    modes = [(m, m.training) for m in unique]
    for m in unique:
        m.eval()
    try:
        yield
    finally:
        for m, was_training in modes:
            m.train(was_training)
