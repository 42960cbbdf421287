"""Teach MMagic's ``MMagicInferencer`` (and its demo) about ``consistency_models``.

MMagic 1.2.0 keeps a fixed list of model names and reads their settings from
``metafile.yml`` files inside its own package. ``import mmagic_cm`` arranges
that, whenever ``mmagic.apis`` is (or has been) imported, the class also
knows this plugin's models, read from this repository's metafiles:

- ``model_name='consistency_models'`` with ``model_setting=K`` (an index into
  ``configs/consistency_models/metafile.yml``) or ``config_name=NAME``;
- the task (conditional or unconditional) of the chosen setting; the
  editing configs (``editing = dict(task=...)``) go to
  :class:`~.editing_inferencer.ConsistencyEditingInferencer` (``img``,
  ``mask``, ``label``);
- checkpoints go through :mod:`mmagic_cm.files.checkpoint` (local file or URL,
  strict, one-line errors), not mmengine's http loader.

Importing ``mmagic.apis`` costs seconds, so it is patched on import (a
post-import hook), not imported eagerly.
"""
from __future__ import annotations

import os.path as osp
import sys
from typing import Dict, Optional

from ..files.zoo import (
    PLUGIN_MODELS,
    PluginModelError,
    choose_setting,
    config_path,
    load_settings,
    setting_task,
)

TARGET_MODULE = 'mmagic.apis.mmagic_inferencer'


def task_of_config(cfg) -> str:
    """conditional/unconditional from a config's UNet (for custom configs)."""
    return 'conditional' if cfg.model.unet.get('num_classes') else 'unconditional'


def plugin_inferencer_kwargs(model_name: str, model_setting: Optional[int],
                             config_name: Optional[str], model_config: Optional[str],
                             model_ckpt: Optional[str], extra_parameters: Optional[Dict]
                             ) -> Dict:
    """``Inferencers`` kwargs for a plugin model: task, Config object, no ckpt.

    The checkpoint (``model_ckpt``, else the config's ``model_path``) goes
    into the config's ``model_path``, so the plugin's loader reads it.
    """
    from mmengine.config import Config

    settings = load_settings(model_name)
    if model_config is not None:
        if not osp.isfile(model_config):
            raise FileNotFoundError(f'config file not found: {model_config}')
        cfg = Config.fromfile(model_config)
        matches = [s for s in settings
                   if osp.basename(s['Config']) == osp.basename(model_config)]
        task = setting_task(matches[0]) if matches else task_of_config(cfg)
    else:
        setting = choose_setting(model_name, settings, model_setting, config_name)
        cfg = Config.fromfile(config_path(setting))
        task = setting_task(setting)
    if cfg.get('editing'):
        from .editing_inferencer import EDITING_TASK
        task = EDITING_TASK  # routed to ConsistencyEditingInferencer
    if model_ckpt:
        cfg.model.model_path = model_ckpt
    cfg.model.pop('train_cfg', None)  # inference: no target, teacher or EMA copies
    kwargs = dict(task=task, config=cfg, ckpt=None)
    if extra_parameters is not None:
        kwargs['extra_parameters'] = extra_parameters
    return kwargs


def patch_mmagic_inferencer(cls) -> None:
    """Add the plugin models to ``MMagicInferencer`` (idempotent)."""
    if getattr(cls, '_mmagic_cm_patched', False):
        return
    for name in PLUGIN_MODELS:
        if name not in cls.inference_supported_models:
            cls.inference_supported_models.append(name)

    original_init_cfg = cls.init_inference_supported_models_cfg

    def init_inference_supported_models_cfg():
        if cls.inference_supported_models_cfg_inited:
            return
        models = cls.inference_supported_models
        # MMagic reads every listed model's metafile from its own package;
        # hide ours from that loop and add them from this repository
        cls.inference_supported_models = [m for m in models if m not in PLUGIN_MODELS]
        try:
            original_init_cfg()
        finally:
            cls.inference_supported_models = models
        for name in PLUGIN_MODELS:
            settings = load_settings(name)
            cls.inference_supported_models_cfg[name] = dict(
                task=setting_task(settings[0]), settings=settings)

    original_kwargs = cls._get_inferencer_kwargs

    def _get_inferencer_kwargs(self, model_name, model_setting, config_name, model_config,
                               model_ckpt, extra_parameters):
        if model_name in PLUGIN_MODELS:
            return plugin_inferencer_kwargs(model_name, model_setting, config_name,
                                            model_config, model_ckpt, extra_parameters)
        return original_kwargs(self, model_name, model_setting, config_name, model_config,
                               model_ckpt, extra_parameters)

    original_infer = cls.infer

    def infer(self, img=None, video=None, label=None, trimap=None, mask=None,
              result_out_dir='', **kwargs):
        from ..models import ConsistencyModel
        inner = getattr(self.inferencer, 'inferencer', None)
        model = getattr(inner, 'model', None)
        if isinstance(model, ConsistencyModel) and label is not None \
                and model.num_classes is None:
            raise PluginModelError(f'label {label!r} given, but this model is '
                                   'unconditional; drop the label')
        result = original_infer(self, img=img, video=video, label=label, trimap=trimap,
                                mask=mask, result_out_dir=result_out_dir, **kwargs)
        if isinstance(model, ConsistencyModel) and result_out_dir \
                and osp.isfile(result_out_dir) and img is None:
            # MMagic writes the grid at the images' own size: 16-pixel digits
            # would make a grid nobody can look at
            from ..files.images import zoom_image_file
            zoom_image_file(result_out_dir, model.image_shape[-1])
        return result

    original_tasks = cls.get_inference_supported_tasks
    original_task_models = cls.get_task_supported_models

    def plugin_tasks(name):
        return {setting_task(s) for s in cls.inference_supported_models_cfg[name]['settings']}

    # MMagic gives a model one task (its first setting's); ours have two
    def get_inference_supported_tasks():
        tasks = original_tasks()
        extra = set().union(*(plugin_tasks(n) for n in PLUGIN_MODELS)) - set(tasks)
        return tasks + sorted(extra)

    def get_task_supported_models(task):
        models = original_task_models(task)
        return models + [n for n in PLUGIN_MODELS if task in plugin_tasks(n) and n not in models]

    patch_inferencers()
    cls.get_inference_supported_tasks = staticmethod(get_inference_supported_tasks)
    cls.get_task_supported_models = staticmethod(get_task_supported_models)
    cls.init_inference_supported_models_cfg = staticmethod(init_inference_supported_models_cfg)
    cls._get_inferencer_kwargs = _get_inferencer_kwargs
    cls.infer = infer
    cls._mmagic_cm_patched = True


def patch_inferencers() -> None:
    """Route the editing task to :class:`ConsistencyEditingInferencer`
    (MMagic's ``Inferencers`` knows a fixed list of tasks)."""
    from mmagic.apis.inferencers import Inferencers
    if getattr(Inferencers, '_mmagic_cm_patched', False):
        return
    original_init = Inferencers.__init__

    def __init__(self, task=None, config=None, ckpt=None, device=None,
                 extra_parameters=None, seed=2022):
        from .editing_inferencer import EDITING_TASK, ConsistencyEditingInferencer
        if task != EDITING_TASK:
            return original_init(self, task, config, ckpt, device, extra_parameters, seed)
        self.task = task
        self.inferencer = ConsistencyEditingInferencer(
            config, ckpt, device=device, extra_parameters=extra_parameters, seed=seed)

    Inferencers.__init__ = __init__
    Inferencers._mmagic_cm_patched = True


def _patch_imported() -> None:
    patch_mmagic_inferencer(sys.modules[TARGET_MODULE].MMagicInferencer)


def install_inferencer_hook() -> None:
    """Patch now if ``mmagic.apis`` is loaded, else when it gets imported."""
    module = sys.modules.get(TARGET_MODULE)
    if module is not None and hasattr(module, 'MMagicInferencer'):
        patch_mmagic_inferencer(module.MMagicInferencer)
        return
    from ..registry.import_hooks import after_import
    after_import(TARGET_MODULE, _patch_imported)
