"""Core-only stand-in of MMagic's ``PackInputs`` (``MMAGIC_CM_CORE_ONLY=1``).

The digits configs pack their images with MMagic's ``PackInputs``; on a
machine without MMagic this class is registered under that name in the
plugin's ``TRANSFORMS`` registry (:data:`mmagic_cm.registry.CORE_STANDINS`)
and packs the same batch: the image as a uint8 (C, H, W) tensor in
``inputs`` and a data sample holding ``gt_label`` (the class, when the
dataset gives one) and the meta keys present.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch


class CorePackInputs:
    """Pack one image key into ``inputs`` and the label into a data sample.

    Args:
        keys: the image key (one; MMagic's takes several, then needs MMagic).
        meta_keys: keys copied into the data sample's metainfo when present.
    """

    def __init__(self, keys: Union[str, Sequence[str]] = 'gt',
                 meta_keys: Sequence[str] = ('sample_idx', ), data_keys=()):
        keys = [keys] if isinstance(keys, str) else list(keys)
        if len(keys) != 1 or data_keys:
            raise ValueError(f'PackInputs(keys={keys}, data_keys={list(data_keys)}): core-only '
                             'mode (MMAGIC_CM_CORE_ONLY=1) packs one image key and no data '
                             'keys; this pipeline needs MMagic\'s PackInputs')
        self.key = keys[0]
        self.meta_keys = tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        from mmengine.structures import BaseDataElement, LabelData
        img = np.asarray(results[self.key])
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys
                                           if k in results})
        if results.get('gt_label') is not None:
            sample.gt_label = LabelData(label=torch.as_tensor(results['gt_label']).reshape(1))
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(keys={self.key!r})'
