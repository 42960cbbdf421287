"""A rank killed mid-training (SIGKILL) in a 2-process gloo run
(tools/dist_train.sh, tiny CT config): the run ends promptly with a non-zero
status, the last checkpoint stays readable, and --resume continues from it."""
import os
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from mmagic_cm.testing import ROOT, TINY_CONFIGS

CT = osp.join(TINY_CONFIGS, 'cm_tiny_train_ct.py')
#: seconds the run may take to end after a rank dies (measured: about one)
PROMPT_S = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def worker_pids(launcher_pid: int) -> dict:
    """torchrun's worker processes under ``launcher_pid``: rank -> pid (Linux /proc)."""
    ranks = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                ppid = int(f.read().rsplit(')', 1)[1].split()[1])
            if ppid != launcher_pid:
                continue
            with open(f'/proc/{name}/environ', 'rb') as f:
                env = dict(item.split(b'=', 1) for item in f.read().split(b'\0') if b'=' in item)
        except (OSError, IndexError, ValueError):
            continue
        if b'RANK' in env:
            ranks[int(env[b'RANK'])] = int(name)
    return ranks


def dist_train(work_dir, *extra, **popen):
    env = dict(os.environ, MASTER_PORT=str(free_port()), OMP_NUM_THREADS='1',
               PYTHON=sys.executable)
    return subprocess.Popen(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), CT, '2', '--work-dir', str(work_dir),
         *extra], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, **popen)


def last_checkpoint(work_dir):
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        return None
    with open(marker) as f:
        return f.read().strip() or None


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')
def test_a_killed_rank_ends_the_run_and_resume_continues(tmp_path):
    work = tmp_path / 'work'
    proc = dist_train(work, '--cfg-options', 'train_cfg.max_iters=100000',
                      'default_hooks.checkpoint.interval=2',
                      'default_hooks.checkpoint.max_keep_ckpts=100')
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and proc.poll() is None:
            saved = last_checkpoint(work)  # written after the file it names
            if saved and int(re.findall(r'iter_(\d+)', saved)[0]) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        ranks = worker_pids(proc.pid)
        assert sorted(ranks) == [0, 1], ranks
        os.kill(ranks[1], signal.SIGKILL)  # mid-training: between two checkpoints
        killed = time.monotonic()
        output, _ = proc.communicate(timeout=300)
        ended_s = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0, output[-3000:]
    assert ended_s < PROMPT_S, f'the run took {ended_s:.1f} s to end after the kill'
    assert all(not osp.exists(f'/proc/{pid}') or open(f'/proc/{pid}/stat').read().split()[2]
               == 'Z' for pid in ranks.values())
    # the checkpoint last_checkpoint names is complete and readable
    saved = osp.join(work, osp.basename(last_checkpoint(work)))
    step = int(re.findall(r'iter_(\d+)', saved)[0])
    state = torch.load(saved, map_location='cpu', weights_only=True)
    assert int(state['state_dict']['train_step_count']) == step >= 2
    assert state['meta']['iter'] == step
    # --resume continues from it, two iterations more
    resumed = dist_train(work, '--resume', '--cfg-options', f'train_cfg.max_iters={step + 2}',
                         'default_hooks.checkpoint.interval=1')
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output[-3000:]
    print(f'the run ended {ended_s:.2f} s after rank 1 was killed at iteration '
          f'{step}+; resumed from iter_{step}.pth')
    after = torch.load(work / f'iter_{step + 2}.pth', map_location='cpu', weights_only=True)
    assert int(after['state_dict']['train_step_count']) == step + 2
    assert f'resumed epoch: 0, iter: {step}' in output, output[-3000:]
    assert re.search(rf'Iter\(train\) \[{step + 1}/{step + 2}\]', output), output[-3000:]
    assert not re.search(rf'Iter\(train\) \[{step}/', output)  # no step done twice
