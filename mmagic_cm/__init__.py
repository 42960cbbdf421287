"""mmagic_cm: OpenAI's Consistency Models as an MMagic plugin.

Importing it lets mmagic 1.2.0 import on mmcv-lite (see ``_mmcv_compat``)
and registers ``ConsistencyModel``, ``ConsistencyUNetModel`` and
``KarrasDenoiser`` in MMagic's ``MODELS`` registry.
"""
from ._mmcv_compat import install_mmcv_ext_standin

install_mmcv_ext_standin()

from . import (  # noqa: E402,F401  (registers dataset, hook)
                     datasets,
                     models,  # noqa: E402,F401  (registers the modules)
                     training,
)
from .apis.inferencer import install_inferencer_hook  # noqa: E402
from .checkpoint import CheckpointError  # noqa: E402
from .models import (  # noqa: E402
                     ConsistencyModel,
                     ConsistencyUNetModel,
                     KarrasDenoiser,
                     get_generator,
                     karras_sample,
)
from .version import __version__  # noqa: E402

install_inferencer_hook()

__all__ = [
    'CheckpointError', 'ConsistencyModel', 'ConsistencyUNetModel', 'KarrasDenoiser',
    'get_generator', 'karras_sample', '__version__'
]
