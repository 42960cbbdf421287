"""Let mmagic import on ``mmcv-lite`` (mmcv without compiled ops).

mmagic 1.2.0 imports ``mmcv.ops`` at module level (BasicVSR++, StyleGAN
blocks), and ``mmcv.ops`` asks ``mmcv._ext`` for its compiled kernels, which
``mmcv-lite`` does not ship. Consistency models need no mmcv op, so when the
real extension is missing we register a stand-in ``mmcv._ext`` whose kernels
exist as names (import-time checks pass) and raise a clear error only when a
model actually calls one. mmcv's pure-PyTorch fallbacks (upfirdn2d,
fused_bias_leakyrelu, conv2d_gradfix on CPU) keep working.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

STANDIN_NAME = 'mmcv._ext'


class MissingMMCVOpError(RuntimeError):
    """Raised when code calls an mmcv kernel that this install lacks."""


def _missing_kernel(name: str):

    def kernel(*args, **kwargs):
        raise MissingMMCVOpError(
            f'mmcv op `{name}` needs mmcv built with its compiled ops, but '
            'this environment has mmcv-lite (no mmcv._ext). Consistency '
            'models do not need it; for other MMagic models install full '
            'mmcv 2.1.0 as the README ("mmcv ops") describes.')

    kernel.__name__ = name
    return kernel


class _StandInExt(types.ModuleType):
    """Module whose every public attribute is a kernel that raises."""

    is_standin = True

    def __getattr__(self, name: str):
        if name.startswith('__'):
            raise AttributeError(name)
        return _missing_kernel(name)


def install_mmcv_ext_standin() -> bool:
    """Register the stand-in ``mmcv._ext`` if the compiled one is missing.

    Returns:
        True if the stand-in was installed, False if real ops are present
        (or mmcv is absent, in which case nothing is touched).
    """
    if STANDIN_NAME in sys.modules:
        return getattr(sys.modules[STANDIN_NAME], 'is_standin', False)
    try:
        if importlib.util.find_spec('mmcv') is None:
            return False
        if importlib.util.find_spec(STANDIN_NAME) is not None:
            return False
    except (ImportError, ValueError):
        return False
    module = _StandInExt(STANDIN_NAME)
    # a spec without a loader: importlib and pkgutil see a module, and
    # mmengine's mmcv_full_available() (pkgutil.find_loader) reports False
    module.__spec__ = importlib.machinery.ModuleSpec(STANDIN_NAME, loader=None)
    sys.modules[STANDIN_NAME] = module
    return True
