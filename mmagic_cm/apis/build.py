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

from ..sampling.settings import SamplingSettings, default_device, grid_resets

#: sampling settings a caller may override (config keys of ``model``)
SETTING_KEYS = SamplingSettings.names()


#: ``custom_imports`` a sampling build skips: the metrics of the test loop
#: (they import MMagic's evaluation package; the test loop imports them itself)
SAMPLING_SKIPS = ('mmagic_cm.evaluation.', )


def load_config(config: str, cfg_options: Optional[Dict] = None, for_sampling: bool = False):
    """An mmengine ``Config`` from a file, with ``KEY=VALUE`` overrides merged;
    its ``custom_imports`` imported (``for_sampling``: but :data:`SAMPLING_SKIPS`).

    Raises:
        FileNotFoundError, ValueError: (one line) a missing file, a file that
        is not a Python config, a syntax error (file:line), no ``model``.
    """
    from mmengine.config import Config
    if not osp.isfile(config):
        raise FileNotFoundError(f'config file not found: {config}')
    if not config.endswith('.py'):
        raise ValueError(f'{config} is not a config: configs are Python files (.py), e.g. '
                         'configs/consistency_models/consistency_models_cd_digits-onestep-'
                         '16x16.py')
    try:
        cfg = Config.fromfile(config, import_custom_modules=not for_sampling)
    except SyntaxError as exc:
        where = exc.filename if exc.filename and not exc.filename.startswith('<') else config
        raise ValueError(f'{where}:{exc.lineno}: syntax error ({exc.msg})') from None
    if for_sampling and cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        imports = cfg.custom_imports.get('imports', [])
        import_modules_from_strings(
            [m for m in ([imports] if isinstance(imports, str) else imports)
             if not m.startswith(SAMPLING_SKIPS)],
            cfg.custom_imports.get('allow_failed_imports', False))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if not isinstance(cfg.get('model'), dict):
        raise ValueError(f'{config} defines no model = dict(...): not a model config; use '
                         'one under configs/consistency_models/')
    return cfg


def check_component(cfg: dict, where: str, extra: Tuple[str, ...] = ()) -> None:
    """Refuse, in one line, a config block whose ``type`` is not registered
    (naming the close registered names), an old name (naming the new one), a
    key its class does not take (naming the close one) or a string where the
    class's default is a number."""
    import difflib
    import inspect

    from ..denoiser.precond import refuse_renamed
    from ..registry import MODELS, init_arguments
    name = cfg.get('type')
    refuse_renamed(cfg, f'{where}.')
    refuse_renamed([name], f'{where}.type=')
    if not isinstance(name, str):
        return  # a class or an object: used as given
    cls = MODELS.get(name)
    if cls is None:
        ours = [n for n, c in MODELS.module_dict.items()
                if getattr(c, '__module__', '').startswith('mmagic_cm')]
        close = difflib.get_close_matches(name, ours, n=3, cutoff=0.3)
        raise ValueError(f'{where}.type={name!r} is not registered'
                         + (f'; did you mean {", ".join(map(repr, close))}?' if close else ''))
    known = init_arguments(cls)
    if known is None:
        return
    known = known | set(extra) | {'type'}
    defaults = {}
    for klass in cls.__mro__:
        if '__init__' in vars(klass):
            for p in inspect.signature(vars(klass)['__init__']).parameters.values():
                defaults.setdefault(p.name, p.default)
    for key, value in cfg.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise ValueError(f'{where}.{key}: not a setting of {name}'
                             + (f'; did you mean {close[0]!r}?' if close else ''))
        default = defaults.get(key)
        if isinstance(value, str) and isinstance(default, (int, float)) \
                and not isinstance(default, bool):
            raise ValueError(f'{where}.{key}={value!r}: expected a number '
                             f'({type(default).__name__}), e.g. {default!r}')


def check_model_config(model_cfg: dict) -> None:
    """:func:`check_component` for the model and its UNet and preconditioning blocks."""
    from ..sampling.settings import SamplingSettings
    check_component(model_cfg, 'model', extra=SamplingSettings.names())
    for key in ('unet', 'precond'):
        if isinstance(model_cfg.get(key), dict):
            check_component(model_cfg[key], f'model.{key}')


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
    model_cfg.update(dict.fromkeys(grid_resets(settings.get('sampler'), settings)))
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
    cfg = load_config(config, cfg_options, for_sampling=True)
    model_cfg = model_config(cfg, checkpoint, **settings)
    check_model_config(model_cfg)
    return MODELS.build(model_cfg), cfg


def init_model(config: str, checkpoint: Optional[str] = None, device: Optional[str] = None,
               cfg_options: Optional[Dict] = None, **settings):
    """A sampling-ready model (MMagic's ``init_model`` for this plugin).

    Args:
        config: config file path.
        checkpoint: local file or URL; default the config's ``model_path``.
        device: 'cpu', 'cuda', 'cuda:N'; default CUDA when available (the CPU
            for an exported file).
        cfg_options: config overrides, ``{'model.s_churn': 0.5}``.
        **settings: sampling settings (see
            :class:`~mmagic_cm.sampling.settings.SamplingSettings`).

    Returns:
        a :class:`~mmagic_cm.models.ConsistencyModel` in eval mode on
        ``device``; its weights are read on first use.
    """
    model, _ = build_from_config(config, checkpoint, cfg_options, **settings)
    return model.to(default_device(device, model.model_path)).eval()
