"""The model zoo: where the configs and metafiles are, and which config fits a file.

``configs/`` lives beside the package in the repository (an editable
install). Metafiles (``configs/<algo>/metafile.yml``, MMagic's format) list
the zoo's entries; :func:`configs_fitting` names the configs whose UNet has
exactly a checkpoint's keys and shapes (used in error messages).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional

import torch

from ..registry import MODELS
from .checkpoint import shape_signature

#: model name (MMagicInferencer's ``model_name``) -> metafile under configs/
PLUGIN_MODELS = {'consistency_models': 'consistency_models/metafile.yml'}


class PluginModelError(ValueError):
    """An unknown setting or input for a plugin model."""


def default_config_root() -> Optional[Path]:
    """The repository's ``configs/`` folder, or None when it is missing."""
    root = Path(__file__).resolve().parents[2] / 'configs'
    return root if root.is_dir() else None


def plugin_metafile(model_name: str) -> str:
    """Path of a plugin model's ``metafile.yml``."""
    root = default_config_root()
    if root is None:
        raise FileNotFoundError('the configs/ folder of mmagic_cm is missing; install the '
                                'plugin from its repository with pip install -e .')
    return str(root / PLUGIN_MODELS[model_name])


def load_settings(model_name: str) -> List[Dict]:
    """The ``Models`` entries of a plugin model's metafile."""
    import yaml
    with open(plugin_metafile(model_name)) as f:
        return yaml.safe_load(f)['Models']


def setting_task(setting: Dict) -> str:
    """The MMagic task of a metafile entry (its first result's)."""
    return setting['Results'][0]['Task']


def config_path(setting: Dict) -> str:
    """Absolute path of a metafile entry's config."""
    return str(default_config_root().parent / setting['Config'])


def configs_fitting(found: Mapping[str, tuple], config_root: Optional[str] = None
                    ) -> List[str]:
    """Configs under ``configs/`` whose UNet has exactly these keys and shapes.

    Args:
        found: ``{key: shape}`` of a checkpoint's UNet state dict.
        config_root: default the repository's ``configs/``.

    Returns:
        paths relative to the folder above ``config_root``.
    """
    from mmengine.config import Config
    root = Path(config_root) if config_root else default_config_root()
    if root is None or not root.is_dir():
        return []
    signatures: Dict[str, Dict[str, tuple]] = {}
    fits = []
    for path in sorted(root.rglob('*.py')):
        if '_base_' in path.parts:
            continue
        try:
            unet_cfg = dict(Config.fromfile(str(path),
                                            import_custom_modules=False).model.unet)
        except Exception:  # a config of another kind: not a candidate
            continue
        key = repr(sorted(unet_cfg.items()))
        if key not in signatures:
            unet_cfg.setdefault('type', 'ConsistencyUNetModel')
            with torch.device('meta'):
                signatures[key] = shape_signature(MODELS.build(unet_cfg).state_dict().items())
        if signatures[key] == dict(found):
            fits.append(str(path.relative_to(root.parent)))
    return fits


def choose_setting(model_name: str, settings: List[Dict], model_setting: Optional[int],
                   config_name: Optional[str]) -> Dict:
    """Pick a metafile entry by index (``model_setting``) or ``config_name``."""
    if config_name:
        for setting in settings:
            if setting['Name'] == config_name:
                return setting
        raise PluginModelError(
            f'{model_name} has no config named {config_name!r}; names are listed in '
            f'{plugin_metafile(model_name)}')
    index = 0 if model_setting is None else int(model_setting)
    if not 0 <= index < len(settings):
        raise PluginModelError(
            f'model setting {model_setting} does not exist for {model_name}: choose 0 to '
            f'{len(settings) - 1} (see the README table or {plugin_metafile(model_name)})')
    return settings[index]
