"""``DigitsMetric``: the digits models' evaluation as an MMagic metric.

Lets MMagic's own ``tools/test.py`` (and ours) evaluate the digits configs
offline: generated images are scored by the shipped digits classifier
(:func:`~.digits.digits_metrics`): the Fréchet distance of its features to
the held-out split, the confident share (max probability >= 0.9) and, for
the labels the model drew, the accuracy.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
from mmagic.evaluation.metrics.base_gen_metric import GenerativeMetric

from ..registry import METRICS


@METRICS.register_module()
class DigitsMetric(GenerativeMetric):
    """Digits metrics of ``fake_nums`` generated images (see module docstring).

    Args:
        fake_nums: images to generate.
        sample_model: MMagic's sampling mode ('orig': the model as configured).
    """
    name = 'Digits'

    def __init__(self, fake_nums: int = 1000, sample_model: str = 'orig', **kwargs):
        super().__init__(fake_nums, real_nums=0, sample_model=sample_model, **kwargs)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep each generated image (uint8 RGB) and its label."""
        for pred in data_samples:
            if len(self.fake_results) >= self.fake_nums_per_device:
                return
            pred = pred.get(self.sample_model, pred)
            bgr = pred['fake_img']  # (3, H, W) float in [0, 255], BGR as MMagic's
            rgb = bgr.detach().cpu()[[2, 1, 0]].permute(1, 2, 0).clamp(0, 255)
            label = pred.get('gt_label')
            if isinstance(label, dict):
                label = label.get('label')
            label = -1 if label is None else int(torch.as_tensor(label).reshape(-1)[0])
            self.fake_results.append((rgb.to(torch.uint8).numpy(), label))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        from .digits import digits_metrics
        images = np.stack([r[0] for r in results])
        labels = np.asarray([r[1] for r in results])
        return digits_metrics(images, labels if (labels >= 0).all() else None)
