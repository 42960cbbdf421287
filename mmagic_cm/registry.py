"""mmagic_cm registers into MMagic's registries so MMagic's tools find it.

Core-only mode (``MMAGIC_CM_CORE_ONLY=1``, for machines with torch and
mmengine but no MMagic, e.g. a bare GPU box): the registries are mmengine's
own, so the network, preconditioning, samplers, noise, objectives and the
fast paths import and build; ``ConsistencyModel`` (MMagic's data
preprocessor), the inferencers and MMagic's tools need MMagic.
"""
import os

from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import Registry

CORE_ONLY = os.environ.get('MMAGIC_CM_CORE_ONLY') == '1'

if CORE_ONLY:
    from mmengine.registry import DATASETS as _DATASETS
    from mmengine.registry import METRICS as _METRICS
    from mmengine.registry import MODELS as _MODELS
    MODELS = Registry('model', parent=_MODELS, scope='mmagic_cm')
    DATASETS = Registry('dataset', parent=_DATASETS, scope='mmagic_cm')
    METRICS = Registry('metric', parent=_METRICS, scope='mmagic_cm')
else:
    from mmagic.registry import DATASETS, METRICS, MODELS  # noqa: F401

# MMagic 1.2.0 has no "function" registry node. mmengine's BaseInferencer
# (infer.py:531, _init_collate) looks one up under the default scope "mmagic"
# for every MMagicInferencer and warns 'Failed to search registry with scope
# "mmagic" in the "function" registry tree'. Add the missing node, as other
# OpenMMLab codebases define it; names resolve through mmengine's parent.
FUNCTIONS = MMENGINE_FUNCTIONS._search_child('mmagic') or Registry(
    'function', parent=MMENGINE_FUNCTIONS, scope='mmagic',
    locations=['mmagic_cm.registry'])
