"""The editing tasks: one registered class each.

Each task is an :class:`EditingTask` subclass registered in
:data:`~mmagic_cm.registry.EDITING_TASKS` under its name; :func:`~.api.edit`,
``tools/edit.py`` (``--task``), the web demo and MMagic's editing inferencer
read the names and what each task takes from here. A new task is one such
class (its loop in :mod:`.algorithms` or its operator in :mod:`.operators`),
its test and a line in docs/editing.md.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ..registry import EDITING_TASKS
from . import algorithms
from .io import check_mask
from .masks import builtin_mask
from .operators import SuperResolution


class EditingTask:
    """An editing task of :func:`~.api.edit`.

    The options are the keyword arguments of :func:`~.api.edit` (and the
    flags of ``tools/edit.py``, the fields of the demo) it takes beyond
    images, labels, ts, steps and seed: 'mask', 'patch_size' (then its
    inputs may be patch-mean images of size/patch_size), 'sigma',
    'add_noise', 'num_points'. ``metafile_task``: the task name of its
    editing configs in MMagic's metafile (None: no config edits with it).
    """
    name: str = ''
    takes_images: bool = True
    options: Tuple[str, ...] = ()
    metafile_task: Optional[str] = None

    def prepare(self, images: torch.Tensor, shape, seed: int, **options) -> Dict:
        """Check the options for ``images`` before any work; returns what
        :meth:`batch_options` gets."""
        if 'sigma' in self.options and options.get('sigma') is None:
            raise ValueError(f'task {self.name!r} needs sigma (the noise level, images in '
                             '[-1, 1])')
        return {k: options.get(k) for k in self.options}

    def batch_options(self, prepared: Dict, batch_of, n: int, device) -> Dict:
        """The loop's keyword arguments for one batch (``batch_of`` cuts one)."""
        return dict(prepared)

    def run(self, denoiser, batch: torch.Tensor, gen, sigma_max: float, extra: Dict):
        """``(edited, observed)`` of one batch."""
        x = gen.randn(*batch.shape, device=batch.device) * sigma_max
        return getattr(algorithms, self.name)(denoiser, batch, x=x, generator=gen, **extra)


def task_names() -> Tuple[str, ...]:
    """Every registered editing task's name."""
    return tuple(EDITING_TASKS.module_dict)


def task_of(name: str) -> EditingTask:
    """The registered task ``name``; ValueError naming the others."""
    cls = EDITING_TASKS.module_dict.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f'unknown task {name!r}; choose one of {", ".join(task_names())}')
    return cls()


@EDITING_TASKS.register_module(name='inpaint')
class Inpaint(EditingTask):
    name, options, metafile_task = 'inpaint', ('mask', ), 'Inpainting'

    def prepare(self, images, shape, seed, mask=None, **options):
        if mask is None:
            raise ValueError("inpainting needs a mask: a built-in name (e.g. 'bottom') or "
                             '0/1 values, 1 = keep')
        if isinstance(mask, str):
            mask = builtin_mask(mask, shape[-1], seed)
        mask = check_mask(mask, shape[-1])
        if mask.shape[0] not in (1, len(images)):
            raise ValueError(f'{mask.shape[0]} masks for {len(images)} images: give one or '
                             'one each')
        return dict(mask=mask)

    def batch_options(self, prepared, batch_of, n, device):
        mask = prepared['mask']
        return dict(mask=batch_of(mask) if mask.shape[0] == n else mask.to(device))


@EDITING_TASKS.register_module(name='colorize')
class Colorize(EditingTask):
    name, metafile_task = 'colorize', 'Colorization'


@EDITING_TASKS.register_module(name='superres')
class SuperRes(EditingTask):
    name, options, metafile_task = 'superres', ('patch_size', ), 'Image Super-Resolution'

    def prepare(self, images, shape, seed, patch_size=8, **options):
        SuperResolution(patch_size).check_size(images)
        return dict(patch_size=patch_size)


@EDITING_TASKS.register_module(name='denoise')
class Denoise(EditingTask):
    name, options = 'denoise', ('sigma', 'add_noise')

    def run(self, denoiser, batch, gen, sigma_max, extra):
        sigma = float(extra.pop('sigma'))
        if extra.pop('add_noise'):  # a demo: noise the inputs first
            batch = batch + gen.randn(*batch.shape, device=batch.device) * sigma
        return algorithms.denoise(denoiser, batch, sigma, gen, **extra)


@EDITING_TASKS.register_module(name='interpolate')
class Interpolate(EditingTask):
    """Starts from noise, no images (:func:`~.api.edit`'s ``_interpolate``)."""
    name, takes_images, options = 'interpolate', False, ('num_points', )


@EDITING_TASKS.register_module(name='stroke')
class Stroke(EditingTask):
    name, options = 'stroke', ('sigma', )

    def run(self, denoiser, batch, gen, sigma_max, extra):
        sigma = float(extra.pop('sigma'))
        return algorithms.stroke(denoiser, batch, sigma, gen, **extra)
