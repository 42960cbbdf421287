"""A data preprocessor built when first used.

Sampling never preprocesses data, yet MMagic's ``DataPreprocessor``, which
every config names, lives in MMagic's model zoo, whose import costs seconds
(mmcv, cv2, diffusers). A sampling-only ``ConsistencyModel`` therefore holds
:class:`DeferredPreprocessor`: MMagic's inferencers, metrics and test loops,
which call it or read its attributes, get the real one on first use.
"""
from __future__ import annotations

from typing import Optional

from mmengine.model import BaseDataPreprocessor
from torch import nn


class DeferredPreprocessor(BaseDataPreprocessor):
    """Stands for ``MODELS.build(cfg)`` until it is called or an attribute it
    lacks is read; then builds it (on this preprocessor's device) and
    forwards to it."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = dict(cfg)
        self.built: Optional[nn.Module] = None

    def resolve(self) -> nn.Module:
        """The real preprocessor (built now if not yet)."""
        if self.built is None:
            from ..registry import MODELS
            built = MODELS.build(dict(self.cfg)).to(self._device)
            self.built = built.train(self.training)  # as the model it serves
        return self.built

    def forward(self, data, training: bool = False):
        return self.resolve()(data, training)

    def cast_data(self, data):
        return self.resolve().cast_data(data)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith('__') or name in ('cfg', 'built'):
                raise
            return getattr(self.resolve(), name)
