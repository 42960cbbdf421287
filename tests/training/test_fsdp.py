"""FSDP (``--strategy fsdp``) for every training mode, on two gloo CPU processes.

Each mode trains 3 iterations under FSDP, resumes to 6 under FSDP, and ends
with the weights and optimizer state of a 6-iteration DDP run of the same
config, in a checkpoint of the DDP layout that ``tools/sample.py`` samples
from. Three 2-process launches a mode (about a minute each on one core), so
every mode is ``slow`` (CD, the mode whose target network broke FSDP's save,
issue 24, among them); the one-line error of a failed save runs in the fast tier.
"""
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

#: mode -> (tiny config, the train_cfg key of its teacher file or None)
MODES = {
    'edm': ('cm_tiny_train_edm.py', None),
    'cd': ('cm_tiny_train_cd.py', 'teacher.path'),
    'ct': ('cm_tiny_train_ct.py', None),
    'ect': ('cm_tiny_train_ect.py', 'init_from'),
    'sct': ('cm_tiny_train_sct.py', 'init_from'),
    'scd': ('cm_tiny_train_scd.py', 'teacher.path'),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_train(config, work_dir, *args, nproc=2, timeout=1800):
    """``tools/dist_train.sh`` (torchrun); past ``timeout`` torchrun gets SIGTERM,
    which ends its workers (they run in their own sessions: SIGKILL would orphan them)."""
    env = dict(os.environ, MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
               PYTHON=sys.executable)
    proc = subprocess.Popen(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), config, str(nproc), '--work-dir',
         str(work_dir), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()  # dist_train.sh execs torchrun
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f'{config} did not finish in {timeout} s: {err[-2000:]}')
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    """A tiny 'EDM teacher' (random weights) in the released raw format."""
    torch.manual_seed(0)
    unet = MODELS.build(dict(Config.fromfile(osp.join(TINY_CONFIGS, MODES['edm'][0]))
                             .model.unet))
    path = tmp_path_factory.mktemp('teacher') / 'edm_tiny.pt'
    torch.save(unet.state_dict(), path)
    return str(path)


def assert_same_checkpoint(a: dict, b: dict) -> None:
    """Same layout (model keys, optimizer parameters by position) and values."""
    assert list(a['state_dict']) == list(b['state_dict'])
    for k, v in b['state_dict'].items():
        torch.testing.assert_close(a['state_dict'][k], v, rtol=1e-4, atol=1e-5, msg=k)
    oa, ob = a['optimizer'], b['optimizer']
    assert [g['params'] for g in oa['param_groups']] == [g['params'] for g in ob['param_groups']]
    assert list(oa['state']) == list(ob['state'])
    for i, sb in ob['state'].items():
        for k, v in sb.items():
            torch.testing.assert_close(torch.as_tensor(oa['state'][i][k]), torch.as_tensor(v),
                                       rtol=1e-4, atol=1e-6, msg=f'optimizer {i} {k}')


@pytest.mark.slow
@pytest.mark.parametrize('mode', list(MODES))
def test_fsdp_trains_resumes_and_samples_as_ddp(tmp_path, teacher_file, mode):
    name, teacher_key = MODES[mode]
    config = osp.join(TINY_CONFIGS, name)
    opts = ['--cfg-options', 'default_hooks.checkpoint.interval=3',
            'default_hooks.checkpoint.max_keep_ckpts=2']
    if teacher_key:
        opts.append(f'model.train_cfg.{teacher_key}={teacher_file}')
    fsdp, ddp = tmp_path / 'fsdp', tmp_path / 'ddp'
    proc = dist_train(config, fsdp, '--strategy', 'fsdp', *opts, 'train_cfg.max_iters=3')
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = dist_train(config, ddp, *opts, 'train_cfg.max_iters=6')
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same file as DDP's after 3 iterations: either resumes the other's runs
    assert_same_checkpoint(load_state(fsdp / 'iter_3.pth'), load_state(ddp / 'iter_3.pth'))
    proc = dist_train(config, fsdp, '--strategy', 'fsdp', '--resume', *opts,
                      'train_cfg.max_iters=6')
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_state(fsdp / 'iter_6.pth'), load_state(ddp / 'iter_6.pth')
    assert int(a['state_dict']['train_step_count']) == 6 and a['meta']['iter'] == 6
    assert not any(k.startswith('objective.') for k in a['state_dict'])
    assert_same_checkpoint(a, b)
    out = tmp_path / 's.npz'
    assert run_tool('sample', [config, '--checkpoint', str(fsdp / 'iter_6.pth'), '--out',
                               str(out), '--num-samples', '2', '--labels', '3',
                               '--no-progress']) == 0
    assert np.load(out)['arr_0'].shape == (2, 16, 16, 3)


def test_a_failed_fsdp_save_is_one_short_line(tmp_path, capsys, monkeypatch):
    """torch's FSDP reports a missing state-dict key with every key of the
    model (thousands of characters); the save error names the key only."""
    from mmagic_cm.files.checkpoint import CheckpointError
    from mmagic_cm.training.fsdp import ConsistencyFSDPStrategy
    keys = ', '.join(f"'unet.block{i}.weight'" for i in range(500))
    fsdp_error = AssertionError(
        'FSDP assumes objective.target_unet.time_embed.0.weight is in the state_dict but the '
        f'state_dict only has odict_keys([{keys}]). prefix=, module_name=, param_name=, rank=0.')
    strategy = ConsistencyFSDPStrategy(state_dict_cfg='full')
    for exc in (fsdp_error, KeyError('objective.target_unet.time_embed.0.weight'),
                RuntimeError('x' * 5000)):
        def fail(exc=exc):
            raise exc
        monkeypatch.setattr(strategy, 'model_state_dict', fail)
        with pytest.raises(CheckpointError) as err:
            strategy.save_checkpoint(str(tmp_path / 'iter_2.pth'))
        line = str(err.value)
        assert '\n' not in line and len(line) < 400, line
        assert line.startswith(f'saving checkpoint {tmp_path / "iter_2.pth"} under FSDP '
                               'failed on rank 0: ')
        if not isinstance(exc, RuntimeError):
            assert "'objective.target_unet.time_embed.0.weight'" in line
    assert not os.listdir(tmp_path)


def test_fsdp_needs_many_processes(tmp_path, capsys):
    config = osp.join(TINY_CONFIGS, MODES['ct'][0])
    assert run_tool('train', [config, '--work-dir', str(tmp_path), '--strategy', 'fsdp']) == 2
    assert 'tools/dist_train.sh CONFIG NPROC --strategy fsdp' in capsys.readouterr().err
    assert not os.listdir(tmp_path)
