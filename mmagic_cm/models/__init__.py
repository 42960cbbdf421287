"""The mmengine/MMagic model: ``ConsistencyModel``, its lazy weights and data preprocessor.

- :mod:`.consistency_model`: :class:`ConsistencyModel`, MMagic's adapter over
  the sampling pipeline (:mod:`mmagic_cm.sampling.pipeline`) and the training
  state (:mod:`mmagic_cm.training.state`, built through the registry);
- :mod:`.weights`: where the UNet's weights come from (lazy, meta-device
  loading, checkpoint matching and keys, :func:`build_unet`);
- :mod:`.preprocessor`: MMagic's ``DataPreprocessor``, built when first used;
- :mod:`.mmagic_outputs`: MMagic's generation contract (inputs dict in,
  ``DataSample``s out).

The network and preconditioning are in :mod:`mmagic_cm.denoiser`, the
samplers in :mod:`mmagic_cm.sampling`.
"""
from .consistency_model import ConsistencyModel
from .weights import build_unet

__all__ = ['ConsistencyModel', 'build_unet']
