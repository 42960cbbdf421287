"""mmagic_cm: OpenAI's Consistency Models as an MMagic plugin.

Importing it lets mmagic 1.2.0 import on mmcv-lite (see ``_mmcv_compat``),
registers the models (``ConsistencyModel``, ``ConsistencyUNetModel``,
``KarrasPrecond``), the training objectives, dataset and hooks in MMagic's
registries, and teaches ``MMagicInferencer`` the plugin's model zoo.

Layers (each imports only those above it): ``checkpoint``, ``fileio``,
``images``, ``labels``, ``registry`` -> ``zoo`` -> ``models`` -> ``training``
-> ``editing``, ``evaluation`` -> ``apis``; ``tools/`` and ``demo/`` parse
arguments and call ``apis``. See docs/architecture.md.
"""
from ._mmcv_compat import install_mmcv_ext_standin

install_mmcv_ext_standin()

from . import datasets, evaluation, models, training  # noqa: E402,F401  (registers them)
from .apis.inferencer import install_inferencer_hook  # noqa: E402
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
from .version import __version__  # noqa: E402

install_inferencer_hook()

__all__ = [
    'CheckpointError', 'ConsistencyModel', 'ConsistencyUNetModel', 'Denoiser',
    'KarrasDenoiser', 'KarrasPrecond', 'get_generator', 'karras_sample', '__version__'
]
