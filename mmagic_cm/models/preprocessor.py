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

    # mmengine's init_weights asks every child for these: answering them must not
    # build MMagic's preprocessor, which has no parameters to initialise
    is_init = True

    def init_weights(self) -> None:
        """Nothing to initialise."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            # private names are this module's own (mmengine's init records)
            if name.startswith('_') or name in ('cfg', 'built'):
                raise
            return getattr(self.resolve(), name)


class CoreDataPreprocessor(BaseDataPreprocessor):
    """Core-only stand-in of MMagic's ``DataPreprocessor`` (registered under
    that name with ``MMAGIC_CM_CORE_ONLY=1`` only): what the digits configs
    need of it. Images (uint8 (C, H, W) tensors, a list or a stacked batch, as
    ``PackInputs`` gives them) become one float (N, C, H, W) batch
    ``(x - mean) / std`` on the model's device; data samples pass through
    (moved there too). MMagic's gives the same batch for these inputs.

    Args:
        mean, std: per-channel, in the images' [0, 255] units.
        pad_size_divisor: 1 only (the stand-in does not pad).
    """

    def __init__(self, mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5),
                 pad_size_divisor: int = 1, **unsupported):
        super().__init__()
        if unsupported or pad_size_divisor != 1:
            names = sorted(unsupported) + (['pad_size_divisor'] if pad_size_divisor != 1
                                           else [])
            raise ValueError(f'data_preprocessor: {", ".join(names)} need(s) MMagic\'s '
                             'DataPreprocessor; core-only mode (MMAGIC_CM_CORE_ONLY=1) has a '
                             'stand-in that takes mean and std only')
        import torch
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(-1, 1, 1),
                             persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        import torch
        data = self.cast_data(dict(data))
        inputs = data.get('inputs')
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs is not None:
            if inputs.dim() == 3:
                inputs = inputs[None]
            inputs = (inputs.float() - self.mean) / self.std
        return dict(inputs=inputs, data_samples=data.get('data_samples'))


def build_preprocessor(cfg, now: bool) -> nn.Module:
    """A model's data preprocessor (images in [0, 255] <-> [-1, 1]): ``cfg``
    (default MMagic's ``DataPreprocessor``) built now (training), or a
    :class:`DeferredPreprocessor` (sampling); a module as given."""
    if cfg is None:
        cfg = dict(type='DataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3)
    if not isinstance(cfg, dict):
        return cfg
    from ..registry import MODELS
    return MODELS.build(cfg) if now else DeferredPreprocessor(cfg)
