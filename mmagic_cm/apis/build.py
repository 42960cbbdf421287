"""Building a model from a config (+ checkpoint): what every entry point does first.

    from mmagic_cm.apis import init_model
    model = init_model('configs/consistency_models/'
                       'consistency_models_cd_digits-onestep-16x16.py', device='cpu')
    images, labels = model.sample(10, labels=list(range(10)))

Sampling models are built without their config's ``train_cfg`` (no target,
teacher or EMA copies) and their UNet waits on the meta device until the
weights are read, on first use.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Optional, Tuple

from ..models.settings import SamplingSettings, default_device

#: sampling settings a caller may override (config keys of ``model``)
SETTING_KEYS = SamplingSettings.names()


def load_config(config: str, cfg_options: Optional[Dict] = None):
    """An mmengine ``Config`` from a file, with ``KEY=VALUE`` overrides merged."""
    from mmengine.config import Config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def model_config(cfg, checkpoint: Optional[str] = None, for_training: bool = False,
                 **settings) -> dict:
    """``cfg.model`` as a sampling model's config: settings applied (None = keep
    the config's), ``checkpoint`` as ``model_path``, ``train_cfg`` dropped
    unless ``for_training``."""
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    unknown = set(settings) - set(SETTING_KEYS)
    if unknown:
        raise ValueError(f'unknown sampling setting(s) {sorted(unknown)}; known: '
                         f'{", ".join(SETTING_KEYS)}')
    for key, value in settings.items():
        if value is not None:
            model_cfg[key] = value
    sampler = settings.get('sampler')
    if sampler and sampler != 'multistep' and settings.get('ts') is None:
        model_cfg['ts'] = None  # the config's multistep ts do not apply
    if checkpoint:
        model_cfg['model_path'] = checkpoint
    if not for_training:
        model_cfg.pop('train_cfg', None)
    return model_cfg


def build_from_config(config: str, checkpoint: Optional[str] = None,
                      cfg_options: Optional[Dict] = None, **settings) -> Tuple[object, object]:
    """``(model, cfg)``: a sampling :class:`~mmagic_cm.models.ConsistencyModel`
    from a config file; validates everything without reading the weights."""
    from ..registry import MODELS
    cfg = load_config(config, cfg_options)
    return MODELS.build(model_config(cfg, checkpoint, **settings)), cfg


def init_model(config: str, checkpoint: Optional[str] = None, device: Optional[str] = None,
               cfg_options: Optional[Dict] = None, **settings):
    """A sampling-ready model (MMagic's ``init_model`` for this plugin).

    Args:
        config: config file path.
        checkpoint: local file or URL; default the config's ``model_path``.
        device: 'cpu', 'cuda', 'cuda:N'; default CUDA when available.
        cfg_options: config overrides, ``{'model.s_churn': 0.5}``.
        **settings: sampling settings (see
            :class:`~mmagic_cm.models.settings.SamplingSettings`).

    Returns:
        a :class:`~mmagic_cm.models.ConsistencyModel` in eval mode on
        ``device``; its weights are read on first use.
    """
    model, _ = build_from_config(config, checkpoint, cfg_options, **settings)
    return model.to(default_device(device)).eval()
