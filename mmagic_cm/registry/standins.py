"""Core-only mode (``MMAGIC_CM_CORE_ONLY=1``, no MMagic): stand-ins for the few
MMagic classes the digits configs use, an ``mmagic_cm`` scope node in every
mmengine registry, and looking a name up across mmengine's registries.
"""
import importlib

from mmengine.registry import Registry

from .registries import MODELS, TRANSFORMS

#: core-only stand-ins of MMagic's classes: (registry, MMagic's name, module
#: and class of the stand-in); registered under MMagic's names in core-only
#: mode only (with MMagic, its own classes are used)
CORE_STANDINS = (
    (MODELS, 'DataPreprocessor', 'mmagic_cm.models.preprocessor', 'CoreDataPreprocessor'),
    (TRANSFORMS, 'PackInputs', 'mmagic_cm.datasets.transforms', 'CorePackInputs'),
)


def register_core_standins() -> None:
    """Core-only mode: register :data:`CORE_STANDINS` under MMagic's names."""
    for registry, name, module, cls in CORE_STANDINS:
        if name not in registry._module_dict:
            registry.register_module(name, module=getattr(importlib.import_module(module), cls))


def add_core_scope_nodes() -> None:
    """An ``mmagic_cm`` scope node under each of mmengine's root registries
    lacking one, so that every build under ``default_scope='mmagic_cm'``
    finds its registry (mmengine otherwise warns on each build and falls back)."""
    from mmengine.registry import root
    for value in vars(root).values():
        if isinstance(value, Registry) and value.parent is None and \
                value._search_child('mmagic_cm') is None:
            Registry(value.name, parent=value, scope='mmagic_cm')


def find_registered(name: str):
    """The class registered as ``name`` in any of mmengine's registries (their
    ``mmagic_cm`` nodes first), or None; no MMagic lookups in core-only mode."""
    from mmengine.registry import root
    for module in ('mmengine.runner', 'mmengine.dataset', 'mmengine.optim', 'mmengine.hooks',
                   'mmengine.model', 'mmengine.evaluator', 'mmengine.visualization',
                   'mmengine._strategy'):  # mmengine's own classes, registered on import
        importlib.import_module(module)
    for value in vars(root).values():
        if isinstance(value, Registry) and value.parent is None:
            value.import_from_location()
            found = (value._search_child('mmagic_cm') or value).get(name)
            if found is not None:
                return found
    return None
