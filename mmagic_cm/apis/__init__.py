from .inferencer import PLUGIN_MODELS, PluginModelError, install_inferencer_hook

__all__ = ['PLUGIN_MODELS', 'PluginModelError', 'install_inferencer_hook']
