"""Sampling: samplers as functions of any denoiser, noise generators, settings, batches, labels.

- :mod:`.pipeline`: noise to uint8 images, settings -> denoiser -> sampler ->
  uint8, the steps ``ConsistencyModel`` runs;
- :mod:`.samplers`: ``karras_sample`` and the samplers, plain functions of
  ``(denoiser, x, sigmas, randn_like, ...)``;
- :mod:`.noise`: the noise generators ('dummy', 'determ', 'determ-indiv');
- :mod:`.settings`: :class:`SamplingSettings`, one validated object of
  sampler, steps, dtype, device and fast-path options;
- :mod:`.batching`: the batch loop sampling and editing share;
- :mod:`.labels`: class labels as integers or ImageNet class names.
"""
from .noise import GENERATORS, get_generator
from .samplers import SAMPLERS, karras_sample
from .settings import SamplingSettings, resolve_dtype

__all__ = ['GENERATORS', 'SAMPLERS', 'SamplingSettings', 'get_generator', 'karras_sample',
           'resolve_dtype']
