"""Actions run right after a module is imported: the stand-in for mmcv-lite's
missing compiled ops once ``mmcv`` loads, mirroring the plugin's classes
into MMagic's registries once ``mmagic.registry`` loads (in either import order),
and what other layers add with :func:`after_import` (``MMagicInferencer``'s
patch). One finder on ``sys.meta_path`` runs them all.
"""
import importlib.abc
import importlib.machinery
import sys

from .registries import CORE_ONLY, MMAGIC_REGISTRY, mirror_all


def after_mmcv() -> None:
    """Once mmcv is imported (before MMagic imports ``mmcv.ops``): the
    stand-in for mmcv-lite's missing compiled ops (:mod:`.mmcv_compat`)."""
    from .mmcv_compat import install_mmcv_ext_standin
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


def _install_finder() -> None:
    if not any(isinstance(f, _PostImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportHook())


def after_import(name: str, action) -> None:
    """Run ``action()`` right after module ``name`` executes (the caller runs
    it itself when the module is already imported)."""
    AFTER_IMPORT[name] = action
    _install_finder()


def install_mmagic_hook() -> None:
    """Run :data:`AFTER_IMPORT`'s actions now for the modules already imported,
    and on import for the others."""
    if CORE_ONLY:
        return
    for name, action in AFTER_IMPORT.items():
        if name in sys.modules:
            action()
    if any(name not in sys.modules for name in AFTER_IMPORT):
        _install_finder()
