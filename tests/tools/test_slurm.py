"""tools/slurm_train.sh and tools/slurm_sample.sh on one machine: a stand-in
``srun`` on PATH starts the tasks (2 CPU processes, gloo) with the variables
Slurm gives them (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST,
SLURM_JOB_ID); no ``scontrol`` there."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmagic_cm.distributed.launch import first_host, slurm_env
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool

CT = osp.join(TINY_CONFIGS, 'cm_tiny_train_ct.py')
DIGITS = osp.join(ROOT, 'configs', 'consistency_models',
                  'consistency_models_cd_digits-onestep-16x16.py')

SRUN = '''#!{python}
"""Slurm's srun on one machine: the options slurm_launch.sh passes, NTASKS
processes of the command with Slurm's task variables; --kill-on-bad-exit=1
ends the others when one fails (status: the failed task's)."""
import json, os, signal, subprocess, sys, time
args, opts, i = sys.argv[1:], {{}}, 0
while i < len(args) and args[i].startswith('-'):
    if args[i] == '-p':
        opts['partition'], i = args[i + 1], i + 2
    elif args[i].startswith('--') and '=' in args[i]:
        key, value = args[i][2:].split('=', 1)
        opts[key], i = value, i + 1
    else:
        sys.exit('srun stand-in: unknown option ' + args[i])
cmd, n = args[i:], int(opts['ntasks'])
with open(os.environ['SRUN_LOG'], 'a') as f:
    f.write(json.dumps(dict(opts=opts, cmd=cmd)) + '\\n')
procs = [subprocess.Popen(cmd, env=dict(
    os.environ, SLURM_PROCID=str(r), SLURM_NTASKS=str(n), SLURM_LOCALID=str(r),
    SLURM_NODELIST='localhost', SLURM_NNODES='1', SLURM_NODEID='0', SLURM_JOB_ID='4242',
    SLURM_JOB_NAME=opts.get('job-name', ''))) for r in range(n)]
status = 0
while any(p.poll() is None for p in procs):
    bad = [p.returncode for p in procs if p.returncode not in (None, 0)]
    if bad and opts.get('kill-on-bad-exit') == '1':
        status = bad[0]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
    time.sleep(0.1)
status = status or next((p.returncode for p in procs if p.returncode), 0)
sys.exit(128 - status if status < 0 else status)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """``(env, log)``: PATH with the stand-in srun first, 2 CPU tasks."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    srun = bin_dir / 'srun'
    srun.write_text(SRUN.format(python=sys.executable))
    srun.chmod(0o755)
    log = tmp_path / 'srun.log'
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')
           and k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR')}
    env.update(PATH=f'{bin_dir}{os.pathsep}{env["PATH"]}', SRUN_LOG=str(log),
               GPUS='2', GPUS_PER_NODE='0', CPUS_PER_TASK='1', OMP_NUM_THREADS='1',
               MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    return env, log


def srun_calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.slow
def test_slurm_train_on_two_tasks(cluster, tmp_path):
    env, log = cluster
    work = tmp_path / 'work'
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'slurm_train.sh'), 'cpu', 'cm-tiny', CT, str(work),
         '--cfg-options', 'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2'],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    call, = srun_calls(log)
    assert call['opts'] == {'partition': 'cpu', 'job-name': 'cm-tiny', 'ntasks': '2',
                            'cpus-per-task': '1', 'kill-on-bad-exit': '1'}
    assert call['cmd'][1:] == ['-u', osp.join(ROOT, 'tools', 'train.py'), CT,
                               '--launcher=slurm', f'--work-dir={work}', '--cfg-options',
                               'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2']
    state = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=True)
    assert int(state['state_dict']['train_step_count']) == 2
    text = open(next(osp.join(d, f) for d, _, fs in os.walk(work) for f in fs
                     if f.endswith('.log'))).read()
    assert 'Distributed training: True' in text and "backend='gloo'" in text
    assert "launcher = 'slurm'" in text


@pytest.mark.slow
def test_slurm_sample_on_two_tasks_equals_one_process(cluster, tmp_path):
    env, log = cluster
    args = ['--num-samples', '8', '--batch-size', '2', '--labels', '3',
            '--generator', 'determ-indiv', '--no-progress']
    out = tmp_path / 'two.npz'
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'slurm_sample.sh'), 'cpu', 'digits', DIGITS,
         *args, '--out', str(out)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert srun_calls(log)[0]['cmd'][2:5] == [osp.join(ROOT, 'tools', 'sample.py'), DIGITS,
                                             '--launcher=slurm']
    assert run_tool('sample', [DIGITS, *args, '--out', str(tmp_path / 'one.npz')]) == 0
    with np.load(out) as two, np.load(tmp_path / 'one.npz') as one:
        np.testing.assert_array_equal(two['arr_0'], one['arr_0'])
        assert two['arr_1'].tolist() == [3] * 8
    assert not osp.exists(str(out) + '.shards')


def test_slurm_launcher_outside_srun_is_one_line(tmp_path, capsys, monkeypatch):
    for key in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST'):
        monkeypatch.delenv(key, raising=False)
    assert run_tool('train', [CT, '--work-dir', str(tmp_path / 'w'), '--launcher', 'slurm']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: --launcher slurm: start the processes with srun')
    assert len(err.strip().splitlines()) == 1 and not osp.exists(tmp_path / 'w')
    assert run_tool('sample', [DIGITS, '--launcher', 'slurm', '--out',
                               str(tmp_path / 's.npz')]) == 2
    assert 'SLURM_PROCID' in capsys.readouterr().err


def test_slurm_env_and_node_lists():
    assert first_host('node[03-07,09],gpu1') == 'node03'
    assert first_host('gpu-a[1,4]') == 'gpu-a1' and first_host('localhost') == 'localhost'
    assert first_host('n1,n2') == 'n1'
    env = dict(SLURM_PROCID='5', SLURM_NTASKS='8', SLURM_NODELIST='node[02-03]',
               SLURM_JOB_ID='123456')
    got = slurm_env(env, gpus_per_node=4)
    assert got == dict(RANK='5', WORLD_SIZE='8', LOCAL_RANK='1', MASTER_ADDR='node02',
                       MASTER_PORT=str(12000 + 123456 % 20000))
    env = dict(SLURM_PROCID='1', SLURM_NTASKS='2', SLURM_NODELIST='x', SLURM_LOCALID='1',
               MASTER_ADDR='10.0.0.1', MASTER_PORT='29999')
    assert slurm_env(env) == dict(RANK='1', WORLD_SIZE='2', LOCAL_RANK='1',
                                  MASTER_ADDR='10.0.0.1', MASTER_PORT='29999')
    with pytest.raises(ValueError, match='SLURM_NTASKS'):
        slurm_env(dict(SLURM_PROCID='0', SLURM_NODELIST='x'))
