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
mmengine but no MMagic, e.g. a bare GPU box): no MMagic lookups at all.
"""
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings

from mmengine.registry import DATASETS as _DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import METRICS as _METRICS
from mmengine.registry import MODELS as _MODELS
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
                    'classes') from exc
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
PLUGIN_REGISTRIES = (MODELS, DATASETS, METRICS)


def mirror_all() -> None:
    """Register everything of :data:`PLUGIN_REGISTRIES` in MMagic's (loaded)."""
    for registry in PLUGIN_REGISTRIES:
        twin = registry.twin()
        if twin is not None:
            for name, module in list(registry._module_dict.items()):
                mirror(module, name, twin)


def after_mmcv() -> None:
    """Once mmcv is imported (before MMagic imports ``mmcv.ops``): the
    stand-in for mmcv-lite's missing compiled ops (:mod:`._mmcv_compat`)."""
    from ._mmcv_compat import install_mmcv_ext_standin
    install_mmcv_ext_standin()


#: post-import actions: module name -> what runs right after it executes
AFTER_IMPORT = {'mmcv': after_mmcv, MMAGIC_REGISTRY: mirror_all}


class _PostImportHook(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs :data:`AFTER_IMPORT`'s action once its module has executed."""

    def __init__(self):
        self._loaders = {}

    def find_spec(self, fullname, path, target=None):
        if fullname not in AFTER_IMPORT:
            return None
        for finder in sys.meta_path:  # the others, editable-install finders too
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, 'exec_module'):
            return None
        self._loaders[fullname] = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec):
        return self._loaders[spec.name].create_module(spec)

    def exec_module(self, module):
        self._loaders[module.__name__].exec_module(module)
        AFTER_IMPORT[module.__name__]()

    # what else importlib and pkgutil ask a loader, answered by the real one
    def is_package(self, fullname):
        return self._loaders[fullname].is_package(fullname)

    def get_source(self, fullname):
        return self._loaders[fullname].get_source(fullname)

    def get_resource_reader(self, fullname):
        return self._loaders[fullname].get_resource_reader(fullname)


def install_mmagic_hook() -> None:
    """Run :data:`AFTER_IMPORT`'s actions now for the modules already imported,
    and on import for the others."""
    if CORE_ONLY:
        return
    for name, action in AFTER_IMPORT.items():
        if name in sys.modules:
            action()
    if any(name not in sys.modules for name in AFTER_IMPORT) and \
            not any(isinstance(f, _PostImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportHook())


install_mmagic_hook()

# MMagic 1.2.0 has no "function" registry node. mmengine's BaseInferencer
# (infer.py:531, _init_collate) looks one up under the default scope "mmagic"
# for every MMagicInferencer and warns 'Failed to search registry with scope
# "mmagic" in the "function" registry tree'. Add the missing node, as other
# OpenMMLab codebases define it; names resolve through mmengine's parent.
FUNCTIONS = MMENGINE_FUNCTIONS._search_child('mmagic') or Registry(
    'function', parent=MMENGINE_FUNCTIONS, scope='mmagic',
    locations=['mmagic_cm.registry'])
