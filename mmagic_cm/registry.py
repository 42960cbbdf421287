"""mmagic_cm registers into MMagic's registries so MMagic's tools find it."""
from mmagic.registry import DATASETS, METRICS, MODELS  # noqa: F401
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import Registry

# MMagic 1.2.0 has no "function" registry node. mmengine's BaseInferencer
# (infer.py:531, _init_collate) looks one up under the default scope "mmagic"
# for every MMagicInferencer and warns 'Failed to search registry with scope
# "mmagic" in the "function" registry tree'. Add the missing node, as other
# OpenMMLab codebases define it; names resolve through mmengine's parent.
FUNCTIONS = MMENGINE_FUNCTIONS._search_child('mmagic') or Registry(
    'function', parent=MMENGINE_FUNCTIONS, scope='mmagic',
    locations=['mmagic_cm.registry'])
