"""mmagic_cm: OpenAI's Consistency Models as an MMagic plugin.

Importing it registers the models (``ConsistencyModel``,
``ConsistencyUNetModel``, ``KarrasPrecond``), the training objectives,
dataset and hooks in the plugin's registries, which MMagic's mirror once
MMagic is imported (``registry``); lets mmagic 1.2.0 import on mmcv-lite
(``registry.mmcv_compat``); and teaches ``MMagicInferencer`` the plugin's
model zoo. It imports neither MMagic nor mmcv.

The folders are the layers, each importing only those before it: ``registry``
-> ``files`` -> ``distributed`` -> ``denoiser`` -> ``export`` -> ``sampling``
-> ``models``, ``datasets`` -> ``training`` -> ``editing``, ``conversion`` ->
``apis``, ``testing`` -> ``evaluation`` -> ``apps`` -> ``cli``; ``tools/`` and
``demo/`` parse arguments and call the library. See docs/architecture.md.
"""
from . import datasets, denoiser, models, training  # noqa: F401  (registers the modules)
from .denoiser import ConsistencyUNetModel, Denoiser, KarrasPrecond
from .files.checkpoint import CheckpointError
from .models import ConsistencyModel
from .registry import CORE_ONLY  # (mirrors into MMagic's registries when it loads)
from .sampling import get_generator, karras_sample
from .version import __version__

if CORE_ONLY:  # no MMagic: its few classes the digits configs use are stand-ins
    from .registry import add_core_scope_nodes, register_core_standins
    register_core_standins()
    add_core_scope_nodes()
else:
    from .apis.inferencer import install_inferencer_hook
    install_inferencer_hook()

__all__ = [
    'CheckpointError', 'ConsistencyModel', 'ConsistencyUNetModel', 'Denoiser',
    'KarrasPrecond', 'get_generator', 'karras_sample', '__version__'
]
