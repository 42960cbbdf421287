"""mmagic_cm: OpenAI's Consistency Models as an MMagic plugin.

Importing it registers the models (``ConsistencyModel``,
``ConsistencyUNetModel``, ``KarrasPrecond``), the training objectives,
dataset and hooks in the plugin's registries, which MMagic's mirror once
MMagic is imported (``registry``); lets mmagic 1.2.0 import on mmcv-lite
(``_mmcv_compat``); and teaches ``MMagicInferencer`` the plugin's model
zoo. It imports neither MMagic nor mmcv.

Layers (each imports only those above it): ``checkpoint``, ``fileio``,
``images``, ``labels``, ``registry`` -> ``zoo`` -> ``models`` -> ``training``
-> ``editing``, ``evaluation`` -> ``apis``; ``tools/`` and ``demo/`` parse
arguments and call ``apis``. See docs/architecture.md.
"""
from . import datasets, models, training  # noqa: E402,F401  (registers the modules)
from .checkpoint import CheckpointError  # noqa: E402
from .models import (  # noqa: E402
    ConsistencyModel,
    ConsistencyUNetModel,
    Denoiser,
    KarrasDenoiser,
    KarrasPrecond,
    get_generator,
    karras_sample,
)
from .registry import CORE_ONLY  # (mirrors into MMagic's registries when it loads)
from .version import __version__  # noqa: E402

if not CORE_ONLY:
    from .apis.inferencer import install_inferencer_hook
    install_inferencer_hook()

__all__ = [
    'CheckpointError', 'ConsistencyModel', 'ConsistencyUNetModel', 'Denoiser',
    'KarrasDenoiser', 'KarrasPrecond', 'get_generator', 'karras_sample', '__version__'
]
