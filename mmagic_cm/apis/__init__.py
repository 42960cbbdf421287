"""Entry points: building models from configs, sampling to files, MMagic's inferencers."""
from .build import build_from_config, init_model, load_config
from .inferencer import PLUGIN_MODELS, PluginModelError, install_inferencer_hook

__all__ = [
    'PLUGIN_MODELS', 'PluginModelError', 'build_from_config', 'init_model',
    'install_inferencer_hook', 'load_config'
]
