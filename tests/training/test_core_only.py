"""Core-only training (MMAGIC_CM_CORE_ONLY=1): tools/train.py and
tools/dist_train.sh with torch and mmengine alone, MMagic (and mmcv) made
unimportable; the stand-ins of MMagic's DataPreprocessor and PackInputs give
MMagic's batch."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmagic_cm.testing import ROOT, TINY_CONFIGS

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')
#: one digits config of every training mode
DIGITS = {m: osp.join(CONFIGS, f'consistency_models_{m}_digits-{s}-16x16.py')
          for m, s in (('cd', 'onestep'), ('ct', 'onestep'), ('ect', 'onestep'),
                       ('sct', 'onestep'), ('scd', 'onestep'), ('edm', 'heun'))}
HEAVY = ('mmagic', 'mmcv', 'diffusers')
TEACHER = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits', 'edm_digits16_ema.pt')
#: the shipped teacher where a config names one not shipped yet
START = {'ect': ['model.train_cfg.init_from=' + TEACHER],
         'sct': ['model.train_cfg.init_from=' + TEACHER],
         'scd': ['model.train_cfg.teacher.path=' + TEACHER]}


@pytest.fixture(scope='module')
def bare_env(tmp_path_factory):
    """The environment of a machine with torch and mmengine only: ``mmagic``
    and ``mmcv`` packages that fail to import, first on the path."""
    shadow = tmp_path_factory.mktemp('no_mmagic')
    for name in ('mmagic', 'mmcv'):
        (shadow / name).mkdir()
        (shadow / name / '__init__.py').write_text(
            f'raise ImportError("No module named {name!r} (simulated: torch and mmengine '
            'only)")\n')
    path = os.pathsep.join([str(shadow), ROOT] + (
        [os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else []))
    return dict(os.environ, PYTHONPATH=path, MMAGIC_CM_CORE_ONLY='1', OMP_NUM_THREADS='1')


def run_python(code: str, env: dict, cwd) -> dict:
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_digits_mode_trains_resumes_and_samples_without_mmagic(bare_env, tmp_path):
    code = f'''
import json, os, sys
from mmagic_cm.testing import run_tool
try:
    import mmagic  # noqa: F401
    sys.exit('mmagic imported: the simulation failed')
except ImportError:
    pass
configs, start, out = {DIGITS!r}, {START!r}, {{}}
common = ['--cfg-options', 'train_cfg.max_iters=2', 'train_dataloader.batch_size=2',
          'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1']
for mode, config in configs.items():
    work = os.path.join({str(tmp_path)!r}, mode)
    out[mode] = [run_tool('train', [config, '--work-dir', work, *common,
                                    *start.get(mode, [])])]
# CD: resumed to 3 iterations, then sampled from its checkpoint
work = os.path.join({str(tmp_path)!r}, 'cd')
out['cd'].append(run_tool('train', [configs['cd'], '--work-dir', work, '--resume',
                                    '--cfg-options', 'train_cfg.max_iters=3',
                                    'train_dataloader.batch_size=2',
                                    'default_hooks.checkpoint.interval=1']))
out['cd'].append(run_tool('sample', [configs['cd'], '--checkpoint',
                                     os.path.join(work, 'iter_3.pth'), '--num-samples', '2',
                                     '--labels', '3,4', '--out',
                                     os.path.join(work, 's.npz'), '--no-progress']))
# an ImageNet config loads its images with MMagic's transforms: refused
out['imagenet'] = [run_tool('train', [
    os.path.join({CONFIGS!r}, 'consistency_models_cd-l2_imagenet1k-64x64.py'),
    '--work-dir', os.path.join({str(tmp_path)!r}, 'imagenet')])]
out['heavy'] = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps(out))
'''
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          cwd=tmp_path, env=bare_env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res.pop('heavy') == []
    assert res.pop('imagenet') == [2]
    assert "is not available in core-only mode" in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'Failed to search registry' not in proc.stdout + proc.stderr
    assert res == {m: [0, 0, 0] if m == 'cd' else [0] for m in DIGITS}
    for mode in DIGITS:
        state = torch.load(tmp_path / mode / 'iter_2.pth', map_location='cpu', weights_only=True)
        assert int(state['state_dict']['train_step_count']) == 2, mode
    resumed = torch.load(tmp_path / 'cd' / 'iter_3.pth', map_location='cpu', weights_only=True)
    assert int(resumed['state_dict']['train_step_count']) == 3
    with np.load(tmp_path / 'cd' / 's.npz') as f:
        assert f['arr_0'].shape == (2, 16, 16, 3) and f['arr_1'].tolist() == [3, 4]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dist_train_without_mmagic(bare_env, tmp_path):
    env = dict(bare_env, MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
         osp.join(TINY_CONFIGS, 'cm_tiny_train_ct.py'), '2', '--work-dir', str(tmp_path),
         '--cfg-options', 'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert int(state['state_dict']['train_step_count']) == 2
    log = open(next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
                    if f.endswith('.log'))).read()
    assert 'Distributed training: True' in log and "backend='gloo'" in log


def test_standins_pack_and_preprocess_as_mmagic():
    """CorePackInputs + CoreDataPreprocessor give MMagic's PackInputs +
    DataPreprocessor batch on the digits (the same inputs and labels)."""
    pytest.importorskip('mmagic')
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    import mmagic_cm  # noqa: F401
    from mmagic_cm.cli.quiet import import_mmagic
    from mmagic_cm.datasets import DigitsDataset
    from mmagic_cm.datasets.transforms import CorePackInputs
    from mmagic_cm.models.preprocessor import CoreDataPreprocessor
    from mmagic_cm.sampling.labels import labels_of_data_samples
    import_mmagic()
    from mmagic.registry import MODELS, TRANSFORMS
    init_default_scope('mmagic')
    norm = dict(mean=[127.5] * 3, std=[127.5] * 3)
    theirs = (DigitsDataset(pipeline=[TRANSFORMS.build(dict(type='PackInputs', keys=['gt']))]),
              MODELS.build(dict(type='DataPreprocessor', **norm)))
    ours = (DigitsDataset(pipeline=[CorePackInputs(keys=['gt'])]), CoreDataPreprocessor(**norm))
    batches = []
    for dataset, pre in (theirs, ours):
        out = pre(pseudo_collate([dataset[i] for i in (0, 5, 17)]), True)
        batches.append((out['inputs'], labels_of_data_samples(out['data_samples'])))
    torch.testing.assert_close(batches[0][0], batches[1][0], rtol=0, atol=0)
    assert batches[0][1].tolist() == batches[1][1].tolist()
    with pytest.raises(ValueError, match='core-only mode'):
        CoreDataPreprocessor(**norm, output_channel_order='RGB')
    with pytest.raises(ValueError, match='core-only mode'):
        CorePackInputs(keys=['gt', 'img'])
