"""``tools/test.py``: MMagic's metric loop end to end, and offline failures."""
import json
import os.path as osp

import numpy as np

from mmagic_cm.evaluation import TERO_INCEPTION_URL, required_files
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

IMAGENET_CFG = osp.join(ROOT, 'configs', 'consistency_models',
                        'consistency_models_cd-lpips_imagenet1k-64x64.py')


def test_tools_test_runs_mmagic_fid(eval_setup, tmp_path):
    out = tmp_path / 'metrics.json'
    rc = run_tool('test', [
        osp.join(TINY_CONFIGS, 'cm_tiny_eval.py'), eval_setup['ckpt'], '--out', str(out),
        '--work-dir', str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.data_root={eval_setup["images"]}',
        f'test_evaluator.metrics.0.inception_path={eval_setup["inception"]}'])
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) == {'FID-8/fid', 'FID-8/mean', 'FID-8/cov'}
    assert np.isfinite(metrics['FID-8/fid']) and metrics['FID-8/fid'] > 0


def test_released_configs_carry_mmagic_metrics():
    from mmengine.config import Config
    cfg = Config.fromfile(IMAGENET_CFG)
    kinds = {m.type: m for m in cfg.test_evaluator.metrics}
    assert set(kinds) == {'FrechetInceptionDistance', 'IS', 'PrecisionAndRecall'}
    assert all(m.fake_nums == 50000 for m in kinds.values())
    assert cfg.test_cfg.type == 'MultiTestLoop'
    assert [f[1] for f in required_files(cfg)][:2] == [TERO_INCEPTION_URL] * 2


def test_offline_names_the_inception_file_and_where_to_put_it(eval_setup, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.setattr('mmagic.utils.io_utils.MMAGIC_CACHE_DIR', str(tmp_path / 'cache'))
    monkeypatch.chdir(tmp_path)
    rc = run_tool('test', [IMAGENET_CFG, eval_setup['ckpt']])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and '\n' not in err
    assert TERO_INCEPTION_URL in err
    assert osp.join(str(tmp_path / 'cache'), 'inception-2015-12-05.pt') in err


def test_missing_dataset_is_one_line(eval_setup, tmp_path, capsys):
    rc = run_tool('test', [
        osp.join(TINY_CONFIGS, 'cm_tiny_eval.py'), eval_setup['ckpt'], '--cfg-options',
        f'test_dataloader.dataset.data_root={tmp_path / "nope"}',
        f'test_evaluator.metrics.0.inception_path={eval_setup["inception"]}'])
    err = capsys.readouterr().err
    assert rc == 2 and 'real images not found' in err


def test_offline_checkpoint_url(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    rc = run_tool('test', [IMAGENET_CFG, 'http://127.0.0.1:9/cd.pt'])
    err = capsys.readouterr().err
    assert rc == 2 and 'could not download http://127.0.0.1:9/cd.pt' in err
    assert 'a local file as CHECKPOINT' in err
