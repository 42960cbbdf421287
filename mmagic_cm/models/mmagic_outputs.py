"""MMagic's generation contract: the inputs dict of its inferencers and test
loops in, ``DataSample``s out (what ``BaseGAN``-style models give)."""
from __future__ import annotations

from copy import deepcopy
from typing import Dict, List, Optional

import torch

from ..sampling.labels import batch_labels
from ..sampling.noise import get_generator


def generate(model, inputs: Optional[Dict], data_samples=None, mode: Optional[str] = None):
    """Images of ``model`` from the global RNG as MMagic asks for them.

    ``inputs``: ``num_batches`` (default the settings' ``batch_size``), ``labels``
    (else those of ``data_samples``), ``noise`` (N, C, H, W), ``sample_kwargs``
    (sampling overrides). Returns (N, C, H, W) float in [-1, 1] for
    ``mode='tensor'``, else N ``DataSample``s (:func:`to_data_samples`).
    """
    inputs = dict(inputs or {})
    sample_kwargs, noise = dict(inputs.get('sample_kwargs') or {}), inputs.get('noise')
    num = len(noise) if noise is not None else int(
        inputs.get('num_batches') or model.sample_settings.batch_size)
    model.settings(**sample_kwargs)  # bad overrides and labels fail before any loading
    y = batch_labels(inputs.get('labels'), model.num_classes, num, data_samples)
    model.materialize()
    if noise is None:
        noise = torch.randn(num, *model.image_shape, device=model.device)
    images = model.sample_batch(num, get_generator('dummy'), y, noise=noise, **sample_kwargs)
    if mode == 'tensor':
        return images
    return to_data_samples(images, noise, sample_kwargs, y)


def to_data_samples(images: torch.Tensor, noise: torch.Tensor, sample_kwargs: dict,
                    labels: Optional[torch.Tensor]) -> List:
    """(N, C, H, W) RGB images in [-1, 1] -> N MMagic ``DataSample``s with
    ``fake_img`` BGR float in [0, 255], the noise, the overrides and
    ``gt_label`` (when ``labels``, (N,) long, is given)."""
    from mmagic.structures import DataSample
    fake = ((images + 1) * 127.5).clamp(0, 255)[:, [2, 1, 0]]
    outputs = [DataSample(fake_img=fake[i], noise=noise[i].cpu(),
                          sample_kwargs=deepcopy(sample_kwargs), sample_model='orig')
               for i in range(len(images))]
    if labels is None:
        return outputs
    return [o.set_gt_label(labels[i:i + 1]) for i, o in enumerate(outputs)]
