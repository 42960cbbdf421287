"""Sharded sampling (``tools/sample.py --shard-size``, torchrun, dist_sample.sh):
equal to the single-process images, resumable, and refusing what cannot be."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from mmagic_cm.distributed.shards import default_shard_size, shard_ranges
from mmagic_cm.testing import ROOT, reference_weights, run_tool

# 10 samples in batches of 2, three steps: every sample draws noise three times
ARGS = ['--num-samples', '10', '--batch-size', '2', '--sampler', 'multistep', '--ts',
        '0,5,9', '--steps', '10', '--no-progress']


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """Config, checkpoint and the plain single-process result per generator."""
    folder = tmp_path_factory.mktemp('dist_sample')
    ckpt = str(folder / 'tiny_cond.pt')
    torch.save(reference_weights('tiny_cond', 0), ckpt)
    config = osp.join(ROOT, 'tests', 'configs', 'cm_tiny_cond.py')
    plain = {}
    for gen in ('determ-indiv', 'determ'):
        out = str(folder / f'plain_{gen}.npz')
        assert run_tool('sample', [config, '--checkpoint', ckpt, '--out', out,
                                 '--generator', gen, *ARGS]) == 0
        plain[gen] = load(out)
    assert len({img.tobytes() for img in plain['determ-indiv'][0]}) == 10
    return dict(config=config, ckpt=ckpt, plain=plain)


def load(path):
    with np.load(path) as data:
        return data['arr_0'], data['arr_1']


def sample(setup, out, *extra, generator='determ-indiv'):
    return run_tool('sample', [setup['config'], '--checkpoint', setup['ckpt'], '--out',
                             str(out), '--generator', generator, *ARGS, *extra])


def assert_same(result, expected):
    assert result[0].tobytes() == expected[0].tobytes()  # bit for bit
    assert result[1].tolist() == expected[1].tolist()


def mtimes(folder):
    return {f: os.stat(osp.join(folder, f)).st_mtime_ns for f in os.listdir(folder)
            if f.startswith('shard_')}


def test_plan():
    assert shard_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert default_shard_size(50000, 256) == 1024  # whole batches of about 1000
    assert default_shard_size(10, 2) == 2
    assert default_shard_size(5000, 64) == 128  # about N/64 for smaller runs


def test_interrupted_run_resumes_without_redrawing(setup, tmp_path, capsys):
    out = tmp_path / 's.npz'
    shards = str(out) + '.shards'
    assert sample(setup, out, '--shard-size', '4', '--max-shards', '1') == 0
    assert not out.exists() and 'the same command again' in capsys.readouterr().out
    first = mtimes(shards)
    assert list(first) == ['shard_00000.npz']
    assert sample(setup, out, '--shard-size', '4', '--max-shards', '1') == 0
    second = mtimes(shards)
    assert sorted(second) == ['shard_00000.npz', 'shard_00001.npz']
    assert second['shard_00000.npz'] == first['shard_00000.npz']  # not drawn again
    with open(osp.join(shards, 'shard_00001.npz'), 'wb') as f:
        f.write(b'truncated')  # unreadable: drawn again
    open(osp.join(shards, 'tmpx.tmp'), 'w').close()  # a killed writer's leftover
    assert sample(setup, out, '--shard-size', '4', '--keep-shards') == 0
    assert 'resuming: 1 of 3 shards' in capsys.readouterr().out
    assert mtimes(shards)['shard_00000.npz'] == first['shard_00000.npz']
    assert sorted(os.listdir(shards)) == ['run.json'] + [f'shard_0000{k}.npz' for k in range(3)]
    assert_same(load(out), setup['plain']['determ-indiv'])
    # complete: the same command only gathers again, then removes the shards
    assert sample(setup, out, '--shard-size', '4') == 0
    assert_same(load(out), setup['plain']['determ-indiv'])
    assert sorted(os.listdir(tmp_path)) == ['s.npz']


def test_determ_generator_shards_equal_plain(setup, tmp_path):
    out = tmp_path / 'd.npz'
    assert sample(setup, out, '--shard-size', '2', generator='determ') == 0
    assert_same(load(out), setup['plain']['determ'])


@pytest.mark.slow
def test_two_processes_with_torchrun_equal_one(setup, tmp_path):
    """Two gloo processes finish a run that one process began."""
    out = tmp_path / 't.npz'
    assert sample(setup, out, '--shard-size', '2', '--max-shards', '1') == 0
    first = mtimes(str(out) + '.shards')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, MASTER_PORT=str(port), OMP_NUM_THREADS='1',
               PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_sample.sh'), setup['config'], '2',
         '--checkpoint', setup['ckpt'], '--out', str(out), '--generator', 'determ-indiv',
         *ARGS, '--shard-size', '2', '--keep-shards'],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'rank 1 of 2: drew 2 shard(s)' in proc.stdout  # 4 shards left, 2 each
    assert 'wrote 10 images' in proc.stdout
    assert_same(load(out), setup['plain']['determ-indiv'])
    now = mtimes(str(out) + '.shards')
    assert len(now) == 5 and now['shard_00000.npz'] == first['shard_00000.npz']


@pytest.mark.parametrize('extra,message', [
    (['--shard-size', '0'], '--shard-size must be >= 1'),
    (['--shard-size', '3'], 'not a multiple of the batch size 2'),
    (['--max-shards', '0'], '--max-shards must be >= 1'),
    (['--shard-size', '2', '--generator', 'dummy'], 'global torch RNG'),
    (['--launcher', 'pytorch'], 'start the processes with torchrun'),
])
def test_bad_input(setup, tmp_path, capsys, extra, message):
    assert sample(setup, tmp_path / 'x.npz', *extra) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_shards_of_other_settings_are_refused(setup, tmp_path, capsys):
    out = tmp_path / 's.npz'
    assert sample(setup, out, '--shard-size', '4', '--max-shards', '1') == 0
    before = mtimes(str(out) + '.shards')
    assert sample(setup, out, '--shard-size', '4', '--seed', '7') == 2
    err = capsys.readouterr().err
    assert 'holds shards of another run' in err and 'seed: 42 there, 7 here' in err
    assert 'delete that folder' in err
    other = str(tmp_path / 'other.pt')
    torch.save(reference_weights('tiny_cond', 1), other)
    assert run_tool('sample', [setup['config'], '--checkpoint', other, '--out', str(out),
                             '--generator', 'determ-indiv', *ARGS, '--shard-size', '4']) == 2
    assert 'weights.sha256 differ' in capsys.readouterr().err
    assert mtimes(str(out) + '.shards') == before and not out.exists()
    with open(str(out) + '.shards/run.json') as f:
        assert json.load(f)['run']['num_samples'] == 10


def test_unconditional_model_without_checkpoint(tmp_path):
    config = osp.join(ROOT, 'tests', 'configs', 'cm_tiny_uncond.py')
    args = [config, '--num-samples', '5', '--batch-size', '2', '--no-progress']
    assert run_tool('sample', [*args, '--out', str(tmp_path / 'p.npz')]) == 0
    assert run_tool('sample', [*args, '--out', str(tmp_path / 's.npz'), '--shard-size', '2',
                             '--grid', str(tmp_path / 'g.png')]) == 0
    with np.load(tmp_path / 'p.npz') as p, np.load(tmp_path / 's.npz') as s:
        assert s.files == p.files == ['arr_0']
        assert s['arr_0'].tobytes() == p['arr_0'].tobytes()
    assert sorted(os.listdir(tmp_path)) == ['g.png', 'p.npz', 's.npz']
