"""The plugin's registries, mirrored into MMagic's when MMagic is loaded.

Classes register in mmagic_cm's own mmengine registries (scope
``mmagic_cm``), so sampling builds a model with torch and mmengine alone:
importing MMagic (and mmcv, cv2, diffusers, its model zoo) costs seconds
that one-step sampling of ten digits does not need. MMagic still finds
everything:

- whenever ``mmagic.registry`` is (or gets) imported, each class registered
  here is registered in MMagic's registry of the same kind as well, so
  MMagic's tools, configs with ``default_scope = 'mmagic'`` and
  ``MMagicInferencer`` build our models;
- a name these registries lack (MMagic's ``DataPreprocessor``, its metrics
  and datasets) is looked up in MMagic's, importing MMagic then.

Core-only mode (``MMAGIC_CM_CORE_ONLY=1``, for machines with torch and
mmengine but no MMagic, e.g. a bare GPU box): no MMagic lookups at all. The
few MMagic classes the digits configs train with (``DataPreprocessor``,
``PackInputs``) are then the plugin's stand-ins (:mod:`.standins`), and
every mmengine registry gets an ``mmagic_cm`` scope node, so that a runner
with ``default_scope='mmagic_cm'`` builds without MMagic
(:func:`~.standins.add_core_scope_nodes`; ``tools/train.py`` sets that scope).
"""
import importlib
import os
import sys
import warnings
from typing import Optional

from mmengine.registry import DATASETS as _DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import METRICS as _METRICS
from mmengine.registry import MODELS as _MODELS
from mmengine.registry import TRANSFORMS as _TRANSFORMS
from mmengine.registry import Registry

CORE_ONLY = os.environ.get('MMAGIC_CM_CORE_ONLY') == '1'
MMAGIC_REGISTRY = 'mmagic.registry'


class PluginRegistry(Registry):
    """An mmengine registry whose classes are also MMagic's (see the module
    docstring); ``twin`` names MMagic's registry of the same kind."""

    def __init__(self, name: str, parent: Registry, twin: str):
        super().__init__(name, parent=parent, scope='mmagic_cm')
        self.twin_name = twin

    def twin(self, load: bool = False):
        """MMagic's registry of this kind: None until ``mmagic.registry`` is
        imported (``load`` imports it; never in core-only mode)."""
        if CORE_ONLY:
            return None
        module = sys.modules.get(MMAGIC_REGISTRY)
        if module is None and load:
            try:
                module = importlib.import_module(MMAGIC_REGISTRY)
            except ImportError as exc:
                raise ImportError(
                    f'mmagic_cm looked up a class it does not have in MMagic\'s {self.name} '
                    f'registry, but MMagic cannot be imported ({type(exc).__name__}: {exc}); '
                    'install MMagic as the README says, or build without MMagic\'s '
                    'classes (MMAGIC_CM_CORE_ONLY=1: the digits configs train and sample '
                    'with torch and mmengine alone)') from exc
        return getattr(module, self.twin_name, None)

    def _register_module(self, module, module_name=None, force=False) -> None:
        super()._register_module(module, module_name, force)
        twin = self.twin()
        if twin is not None:
            mirror(module, module_name, twin)

    def get(self, key: str):
        found = super().get(key)
        if found is None and isinstance(key, str):
            twin = self.twin(load=True)
            if twin is not None:
                found = twin.get(key)
        return found


def mirror(module, names, twin: Registry) -> None:
    """Register ``module`` under ``names`` (default its ``__name__``) in
    ``twin``; a name MMagic already gives another class keeps that class
    (with a warning): ours stays reachable as ``mmagic_cm.<name>``."""
    if names is None:
        names = [module.__name__]
    for name in [names] if isinstance(names, str) else names:
        there = twin._module_dict.get(name)
        if there is module:
            continue
        if there is not None and not getattr(there, '__module__', '').startswith('mmagic_cm'):
            warnings.warn(f'MMagic\'s {twin.name} registry has its own {name!r}; '
                          f'mmagic_cm\'s is mmagic_cm.{name} there', stacklevel=2)
            continue
        twin._register_module(module, name, force=True)  # ours, registered again


MODELS = PluginRegistry('model', _MODELS, 'MODELS')
DATASETS = PluginRegistry('dataset', _DATASETS, 'DATASETS')
METRICS = PluginRegistry('metric', _METRICS, 'METRICS')
TRANSFORMS = PluginRegistry('transform', _TRANSFORMS, 'TRANSFORMS')
PLUGIN_REGISTRIES = (MODELS, DATASETS, METRICS, TRANSFORMS)


#: the plugin's own kinds, which MMagic has no registry of: each name is one
#: module's class or function, and the tools' choices (``tools/sample.py``,
#: ``tools/edit.py``, ``tools/export.py``), the web demo's, MMagic's
#: inferencer and the docs' lists are these registries' names
#: (``docs/architecture.md``, "Adding things")
SAMPLERS = Registry('sampler', scope='mmagic_cm')  # sampling/samplers.py
EDITING_TASKS = Registry('editing task', scope='mmagic_cm')  # editing/tasks.py
EXPORT_FORMATS = Registry('export format', scope='mmagic_cm')  # export/formats.py


def init_arguments(cls) -> Optional[set]:
    """Keyword arguments ``cls(...)`` takes, following ``**kwargs`` up its bases
    to ``nn.Module``; None when they end in a ``**kwargs`` nobody checks."""
    import inspect

    from torch import nn
    names = set()
    for klass in cls.__mro__:
        if klass in (nn.Module, object):
            return names  # nn.Module refuses what is left
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters.values()
        names |= {p.name for p in params if p.name != 'self' and p.kind in (
            p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


def mirror_all() -> None:
    """Register everything of :data:`PLUGIN_REGISTRIES` in MMagic's (loaded)."""
    for registry in PLUGIN_REGISTRIES:
        twin = registry.twin()
        if twin is not None:
            for name, module in list(registry._module_dict.items()):
                mirror(module, name, twin)


# MMagic 1.2.0 has no "function" registry node. mmengine's BaseInferencer
# (infer.py:531, _init_collate) looks one up under the default scope "mmagic"
# for every MMagicInferencer and warns 'Failed to search registry with scope
# "mmagic" in the "function" registry tree'. Add the missing node, as other
# OpenMMLab codebases define it; names resolve through mmengine's parent.
FUNCTIONS = MMENGINE_FUNCTIONS._search_child('mmagic') or Registry(
    'function', parent=MMENGINE_FUNCTIONS, scope='mmagic',
    locations=['mmagic_cm.registry'])
