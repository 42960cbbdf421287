"""Every config builds (on the meta device: no weights read or allocated)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT

CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
SEED_NAMES = [
    'consistency_models_8xb256-imagenet1k-onestep-64x64.py',
    'consistency_models_8xb256-imagenet1k-multistep-64x64.py',
    'consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py',
    'consistency_models_8xb32-LSUN-bedroom-multistep-256x256.py',
    'consistency_models_8xb32-LSUN-cat-onestep-256x256.py',
    'consistency_models_8xb32-LSUN-cat-multistep-256x256.py',
]


def test_seed_configs_exist():
    names = {osp.basename(p) for p in CONFIGS}
    assert set(SEED_NAMES) <= names


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_config_builds_without_reading_weights(path):
    cfg = Config.fromfile(path)
    assert 'mmagic_cm' in cfg.custom_imports['imports']
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.sample_settings['sampler'] in ('onestep', 'multistep', 'heun')


@pytest.mark.parametrize('name,sampler,ts,generator', [
    (SEED_NAMES[0], 'onestep', None, 'determ'),
    (SEED_NAMES[1], 'multistep', (0, 22, 39), 'determ'),
    (SEED_NAMES[3], 'multistep', (0, 17, 39), 'determ-indiv'),
    (SEED_NAMES[4], 'onestep', None, 'determ-indiv'),
])
def test_seed_settings(name, sampler, ts, generator):
    model = Config.fromfile(osp.join(ROOT, 'configs', 'consistency_models', name)).model
    assert model.sampler == sampler and model.generator == generator
    assert (tuple(model.ts) if model.ts else None) == ts
    assert model.model_path.startswith('https://openaipublic.blob.core.windows.net/')
