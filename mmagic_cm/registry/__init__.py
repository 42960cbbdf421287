"""The plugin's registries and how they meet MMagic's: mirroring, post-import hooks, stand-ins.

- :mod:`.registries`: ``MODELS``, ``DATASETS``, ``METRICS``, ``TRANSFORMS``
  (scope ``mmagic_cm``), mirrored into MMagic's when MMagic is loaded;
  ``SAMPLERS``, ``EDITING_TASKS``, ``EXPORT_FORMATS``, the plugin's own kinds,
  from which every list of their names is derived;
- :mod:`.import_hooks`: what runs right after ``mmcv`` or ``mmagic.registry``
  is imported (installed on import of this package);
- :mod:`.standins`: core-only mode without MMagic;
- :mod:`.mmcv_compat`: MMagic importing on mmcv-lite.
"""
from .import_hooks import install_mmagic_hook
from .registries import (
    CORE_ONLY,
    DATASETS,
    EDITING_TASKS,
    EXPORT_FORMATS,
    FUNCTIONS,
    METRICS,
    MODELS,
    PLUGIN_REGISTRIES,
    SAMPLERS,
    TRANSFORMS,
    PluginRegistry,
    init_arguments,
    mirror,
    mirror_all,
)
from .standins import (
    CORE_STANDINS,
    add_core_scope_nodes,
    find_registered,
    register_core_standins,
)

install_mmagic_hook()

__all__ = [
    'CORE_ONLY', 'CORE_STANDINS', 'DATASETS', 'EDITING_TASKS', 'EXPORT_FORMATS', 'FUNCTIONS',
    'METRICS', 'MODELS', 'PLUGIN_REGISTRIES', 'SAMPLERS', 'TRANSFORMS', 'PluginRegistry',
    'add_core_scope_nodes', 'find_registered', 'init_arguments', 'install_mmagic_hook', 'mirror',
    'mirror_all',
    'register_core_standins'
]
