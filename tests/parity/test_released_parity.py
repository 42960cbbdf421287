"""``tools/sample.py`` against the original code on the released architectures.

Random weights in the released raw format (a bare UNet state dict, seeded as
the fixtures were made), sampled by the original ``karras_sample`` into
``released_arch_samples.npz``; here the same file goes through the seed's
configs and ``tools/sample.py``. ~1 minute on 2 CPU cores; the 201-step
ImageNet-64 case and LSUN-256 (about 20 s each) are ``slow``.
"""
import os.path as osp

import numpy as np
import pytest
import torch

from mmagic_cm.testing import ROOT, assert_images_close, load_ref, reference_weights, run_tool

CFG = osp.join(ROOT, 'configs', 'consistency_models')
IMAGENET = {
    'imagenet64/onestep': ('consistency_models_8xb256-imagenet1k-onestep-64x64.py', []),
    'imagenet64/multistep_0-22-39_steps40':
    ('consistency_models_8xb256-imagenet1k-multistep-64x64.py', []),
    'imagenet64/multistep_0-106-200_steps201':
    ('consistency_models_8xb256-imagenet1k-multistep-64x64.py',
     ['--ts', '0,106,200', '--steps', '201']),
}
SLOW = ('imagenet64/multistep_0-106-200_steps201', )


@pytest.fixture(scope='module')
def raw_checkpoints(tmp_path_factory):
    """arch -> the file of its seeded weights, written on first use (LSUN-256's,
    the larger, only when its slow test runs)."""
    folder = tmp_path_factory.mktemp('released')
    seeds, paths = {'imagenet64': 0, 'lsun256': 1}, {}

    def path(arch):
        if arch not in paths:
            paths[arch] = str(folder / f'random_{arch}.pt')
            torch.save(reference_weights(arch, seeds[arch]), paths[arch])
        return paths[arch]
    return path


def sample_with_tool(config, checkpoint, out, extra):
    argv = [osp.join(CFG, config), '--checkpoint', checkpoint, '--out', out,
            '--device', 'cpu', '--dtype', 'fp32', '--no-progress', *extra]
    assert run_tool('sample', argv) == 0
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize('case', [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in sorted(IMAGENET)])
def test_imagenet64_matches_original(case, raw_checkpoints, tmp_path):
    ref, meta = load_ref('released_arch_samples.npz')
    c = meta['cases'][case]
    config, extra = IMAGENET[case]
    assert c['generator'] == 'determ' and c['generator_seed'] == 42
    out = sample_with_tool(config, raw_checkpoints('imagenet64'), str(tmp_path / 's.npz'),
                   ['--num-samples', '2', '--batch-size', '2', '--seed', '42',
                    '--labels', ','.join(map(str, c['labels'])), *extra])
    assert_images_close(out['arr_0'], ref[f'{case}/img'])
    np.testing.assert_array_equal(out['arr_1'], c['labels'])


@pytest.mark.slow
def test_lsun256_onestep_determ_indiv_matches_original(raw_checkpoints, tmp_path):
    ref, meta = load_ref('released_arch_samples.npz')
    c = meta['cases']['lsun256/onestep']
    assert c['generator'] == 'determ-indiv' and c['num_samples'] == 1
    out = sample_with_tool('consistency_models_8xb32-LSUN-bedroom-onestep-256x256.py',
                   raw_checkpoints('lsun256'), str(tmp_path / 's.npz'),
                   ['--num-samples', '1', '--batch-size', '1', '--seed', '42'])
    assert set(out) == {'arr_0'}  # unconditional: no labels array
    assert_images_close(out['arr_0'], ref['lsun256/onestep/img'])
