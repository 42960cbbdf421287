"""Editing with a :class:`~mmagic_cm.models.ConsistencyModel`: batches,
labels, seeded generators and dtypes around :mod:`.algorithms`.

    from mmagic_cm.editing import edit
    result = edit(model, 'inpaint', images, mask='bottom', labels=[3, 7], seed=0)
    result.images  # uint8 (N, H, W, 3); result.observed: the masked inputs
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence, Union

import numpy as np
import torch

from ..denoiser.sigmas import check_ts
from ..files.images import from_uint8, to_uint8
from ..sampling.batching import memory_bytes, pad_rows, run_batches
from ..sampling.labels import LabelSpec, expand_labels, parse_labels
from ..sampling.noise import get_generator
from . import algorithms
from .tasks import task_names, task_of  # noqa: F401  (task_names re-exported)

#: grid indices of the 40-point Karras grid used when neither the call nor
#: a multistep config gives ``ts`` (chosen on the digits model, see README)
DEFAULT_TS = (0, 10, 20, 30, 39)


@dataclass
class EditResult:
    """Outputs of :func:`edit`, uint8 (N, H, W, 3) RGB.

    ``observed`` is the input as the task saw it (masked, grey, patch means,
    noised; for interpolation the starting noises, scaled for display).
    """
    images: np.ndarray
    observed: np.ndarray
    labels: Optional[np.ndarray] = None


def _as_images(images, shape) -> torch.Tensor:
    """uint8 NHWC (numpy or torch) or float NCHW in [-1, 1] -> float NCHW."""
    if torch.is_tensor(images) and images.dtype == torch.uint8 or \
            isinstance(images, np.ndarray) and images.dtype == np.uint8:
        images = from_uint8(images.cpu() if torch.is_tensor(images) else images)
    images = torch.as_tensor(images).float()
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(f'images have shape {tuple(images.shape)}; this model edits '
                         f'(N, {", ".join(map(str, shape))}) float images in [-1, 1] (or uint8 '
                         '(N, H, W, 3)); resize them first (tools/edit.py: --fit)')
    if images.min() < -1 - 1e-6 or images.max() > 1 + 1e-6:
        raise ValueError(f'float images must lie in [-1, 1], got [{images.min():.3g}, '
                         f'{images.max():.3g}]')
    return images


def _edit_labels(model, labels: LabelSpec, num: int) -> Optional[torch.Tensor]:
    parsed = parse_labels(labels, model.num_classes)
    if model.num_classes is None:
        return None
    if parsed is None:
        raise ValueError('this model is class-conditional: give the class of each image '
                         '(labels=..., tools/edit.py --labels), one for all or one each')
    return torch.tensor(expand_labels(parsed, num), dtype=torch.long)


def _resolve_ts(model, ts, steps):
    """Given ts/steps, else a multistep config's, else DEFAULT_TS (of 40 points,
    spread over ``steps`` points when only ``steps`` is given)."""
    settings = model.sample_settings
    multistep = settings.sampler == 'multistep'
    if steps is None:
        steps = settings.steps if multistep else 40
    steps = int(steps)
    if ts is None:
        if multistep and steps == settings.steps:
            ts = settings.ts
        elif steps >= 2:
            ts = sorted({round(t * (steps - 1) / (40 - 1)) for t in DEFAULT_TS})
    return check_ts(ts, steps), steps


@torch.no_grad()
def edit(model, task: str, images=None, *, mask: Union[str, torch.Tensor, np.ndarray,
                                                       None] = None,
         labels: LabelSpec = None, ts: Union[str, Sequence[int], None] = None,
         steps: Optional[int] = None, sigma: Optional[float] = None,
         patch_size: int = 8, add_noise: bool = False, num_points: int = 8,
         seed: int = 0, generator: str = 'determ-indiv', batch_size: Optional[int] = None,
         dtype: Optional[str] = None, progress: bool = False) -> EditResult:
    """Run an editing task with ``model``.

    Args:
        model: a consistency model (CD or CT).
        task: a registered task's name (:func:`~.tasks.task_names`).
        images: (N, C, H, W) float in [-1, 1] or uint8 (N, H, W, 3); not for
            'interpolate'. Colorize: colour or grey (R = G = B) images;
            superres: full-size images (their patch means are kept).
        mask: inpainting: a built-in name (:data:`~.masks.BUILTIN_MASKS`) or
            (H, W)/(N, H, W) 0/1, 1 = keep.
        labels: class(es), needed by class-conditional models; interpolate:
            two labels (start, end) or one.
        ts, steps: multistep grid indices (default: the config's multistep
            ts, else :data:`DEFAULT_TS` of 40 points, spread over ``steps``
            points when only ``steps`` is given); denoise/stroke use the
            points below ``sigma``.
        sigma: denoise: the inputs' noise std (images in [-1, 1]); stroke:
            the noise level to start from.
        patch_size: superres: side of the kept patch means.
        add_noise: denoise: first add noise of std ``sigma`` to ``images``.
        num_points: interpolate: images along the path.
        seed, generator: the noise generator ('determ-indiv': each image's
            noise depends only on its index and ``seed``).
        batch_size, dtype: default the model's settings.

    Returns:
        :class:`EditResult`.
    """
    spec = task_of(task)
    if not model.is_consistency_model:
        raise ValueError('editing needs a consistency model (CD, CT, ECT, sCT, sCD); this '
                         'config is an EDM teacher')
    settings = model.settings(batch_size=batch_size, dtype=dtype, clip_denoised=True)
    # interpolation takes one step unless ts are given or the config is multistep
    one_step = ts is None and model.sample_settings.sampler != 'multistep'
    ts, steps = _resolve_ts(model, ts, steps)
    model.materialize()
    device = model.device
    p = model.precond
    grid = dict(steps=steps, sigma_min=p.sigma_min, sigma_max=p.sigma_max, rho=p.rho)
    shape = model.image_shape

    if not spec.takes_images:  # interpolation starts from noise
        return _interpolate(model, settings, labels, None if one_step else ts, grid,
                            num_points, seed, generator, progress)
    if images is None:
        raise ValueError(f'task {task!r} needs input images')
    images = _as_images(images, shape)
    n = len(images)
    y = _edit_labels(model, labels, n)
    prepared = spec.prepare(images, shape, seed, mask=mask, patch_size=patch_size, sigma=sigma,
                            add_noise=add_noise)

    bs = min(settings.batch_size, n)  # no padding beyond the images given
    # indices of this call's images, whatever torch.distributed says
    gen = get_generator(generator, n, seed, rank=0, world_size=1)
    denoiser = model.sampling_denoiser(settings)

    def make(first: int, count: int):
        def batch_of(t):
            return pad_rows(t[first:first + count], bs).to(device)

        cond = {} if y is None else {'y': batch_of(y)}
        extra = dict(ts=ts, progress=progress, **grid,
                     **spec.batch_options(prepared, batch_of, n, device))
        with model.unet_in_eval_mode():
            out, obs = spec.run(partial(denoiser, **cond), batch_of(images), gen, p.sigma_max,
                                extra)
        return to_uint8(out), to_uint8(obs)

    outs, observed = run_batches(make, gen, n, bs)
    return EditResult(outs, observed, None if y is None else y.numpy())


def _interpolate(model, settings, labels, ts, grid, num_points, seed, generator, progress
                 ) -> EditResult:
    if num_points < 2:
        raise ValueError(f'interpolation needs num_points >= 2, got {num_points}')
    device, shape = model.device, model.image_shape
    # the path's noise (float32) and images (uint8) are held at once: refuse first
    need, have = num_points * int(np.prod(shape)) * 5, memory_bytes()
    if have and need > 0.8 * have:
        raise ValueError(f'--num-points {num_points}: about {need / 2**30:.1f} GiB of noise and '
                         f'images, more than this machine\'s {have / 2**30:.0f} GiB of memory; '
                         'ask for fewer points')
    gen = get_generator(generator, 2, seed, rank=0, world_size=1)
    ends = gen.randn(2, *shape, device=device)
    alphas = torch.linspace(0, 1, num_points)
    cond, label_arr = {}, None
    if model.num_classes is not None:
        parsed = parse_labels(labels, model.num_classes)
        if parsed is None or len(parsed) not in (1, 2):
            raise ValueError('interpolation with a class-conditional model needs one label '
                             'or two (start,end), e.g. labels="3,8"')
        a, b = parsed[0], parsed[-1]
        cond['y'] = algorithms.class_weights(a, b, alphas, model.num_classes).to(device)
        label_arr = np.where(alphas.numpy() < 0.5, a, b)
    elif labels is not None:
        raise ValueError('labels given, but this model is unconditional; drop them')
    denoiser = partial(model.sampling_denoiser(settings), **cond)
    with model.unet_in_eval_mode():
        out, noises = algorithms.interpolate(
            denoiser, ends[:1], ends[1:], alphas.to(device), gen, ts=ts, progress=progress,
            **grid)
    # the noises, scaled into [-1, 1] for display
    shown = (noises / 3).clamp(-1, 1)
    return EditResult(to_uint8(out).cpu().numpy(), to_uint8(shown).cpu().numpy(), label_arr)
