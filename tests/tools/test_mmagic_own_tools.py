"""MMagic's own scripts (installed under ``mmagic/.mim/tools``) run the shipped
configs as they are, and give what our tools give."""
import json
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmagic_cm.files.checkpoint import read_checkpoint
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

pytestmark = pytest.mark.slow  # MMagic's scripts in fresh processes, 7-11 s each on 2 cores

CD_DIGITS = osp.join(ROOT, 'configs', 'consistency_models',
                     'consistency_models_cd_digits-onestep-16x16.py')


def mmagic_tool(name: str) -> str:
    import mmagic
    path = osp.join(osp.dirname(mmagic.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        pytest.skip(f'this mmagic install has no {path}')
    return path


def state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_mmagic_train_py_trains_the_digits_cd_config_as_is(tmp_path):
    # from another folder: the config's relative weight paths are the repository's
    proc = subprocess.run(
        [sys.executable, mmagic_tool('train.py'), CD_DIGITS, '--work-dir', str(tmp_path / 'm'),
         '--cfg-options', 'train_cfg.max_iters=2'],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = state(tmp_path / 'm' / 'iter_2.pth')
    assert int(theirs['train_step_count']) == 2
    assert any(k.startswith('target_unet.') for k in theirs)
    assert any(k.startswith('ema_unets.ema_0p999.') for k in theirs)
    # the same run with our tools/train.py: the same weights, bit for bit
    assert run_tool('train', [CD_DIGITS, '--work-dir', str(tmp_path / 'o'), '--cfg-options',
                              'train_cfg.max_iters=2']) == 0
    ours = state(tmp_path / 'o' / 'iter_2.pth')
    assert set(ours) == set(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key
    # training started from the teacher (CD), not from model_path's distilled weights
    teacher = read_checkpoint(osp.join(ROOT, 'mmagic_cm', 'weights', 'digits',
                                       'edm_digits16_ema.pt'))
    key = 'input_blocks.0.0.weight'
    step = (theirs['unet.' + key] - teacher[key].float()).abs().max()
    assert 0 < step < 1e-3  # two small optimizer steps away from the teacher


def test_mmagic_test_py_evaluates_a_config(eval_setup, tmp_path):
    options = [f'test_dataloader.dataset.data_root={eval_setup["images"]}',
               f'test_evaluator.metrics.0.inception_path={eval_setup["inception"]}']
    config = osp.join(TINY_CONFIGS, 'cm_tiny_eval.py')
    proc = subprocess.run(
        [sys.executable, mmagic_tool('test.py'), config, eval_setup['ckpt'], '--work-dir',
         str(tmp_path / 'm'), '--out', str(tmp_path / 'theirs.json'), '--cfg-options',
         *options], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads((tmp_path / 'theirs.json').read_text())
    assert run_tool('test', [config, eval_setup['ckpt'], '--work-dir', str(tmp_path / 'o'),
                             '--out', str(tmp_path / 'ours.json'), '--cfg-options',
                             *options]) == 0
    ours = json.loads((tmp_path / 'ours.json').read_text())
    fid = [v for k, v in theirs.items() if k.endswith('/fid')]
    assert len(fid) == 1 and np.isfinite(fid[0]) and fid[0] > 0
    assert ours['FID-8/fid'] == pytest.approx(fid[0], abs=1e-3)  # MMagic's FID jitters ~1e-5


def test_mmagic_test_py_evaluates_a_digits_config_offline(tmp_path):
    """The digits configs carry a test loop (DigitsMetric): MMagic's test.py
    scores the shipped model with no download."""
    proc = subprocess.run(
        [sys.executable, mmagic_tool('test.py'), CD_DIGITS,
         osp.join(ROOT, 'mmagic_cm', 'weights', 'digits', 'cd_digits16_ema.pt'), '--work-dir',
         str(tmp_path / 'm'), '--out', str(tmp_path / 'm.json'), '--cfg-options',
         'test_evaluator.metrics.0.fake_nums=200'],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / 'm.json').read_text())
    assert metrics['digits-1k/confident'] >= 0.9
    assert metrics['digits-1k/accuracy'] >= 0.9  # the labels the model drew
    assert 0 < metrics['digits-1k/frechet'] < 500
