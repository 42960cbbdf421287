"""The command-line tools as a hostile user runs them: every case ends with the
right exit status, one line naming the problem, no traceback, and no file
written, half-written or changed."""
import fcntl
import os
import os.path as osp
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import torch

from mmagic_cm.files.atomic import lock_path
from mmagic_cm.testing import ROOT

C = osp.join(ROOT, 'configs', 'consistency_models',
             'consistency_models_cd_digits-onestep-16x16.py')
WEIGHTS = osp.join(ROOT, 'mmagic_cm', 'weights', 'digits', 'cd_digits16_ema.pt')


def cli(tool, *args, **kw):
    return subprocess.run([sys.executable, osp.join(ROOT, 'tools', f'{tool}.py'), *map(str, args)],
                          capture_output=True, text=True, timeout=300, **kw)


def assert_one_line(proc, text, rc=2):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == rc, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert lines and lines[-1].startswith('error: '), proc.stderr[-2000:]
    assert text in lines[-1], lines[-1]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('hostile')
    state = torch.load(WEIGHTS, weights_only=True)
    state['out.2.bias'] = state['out.2.bias'].clone().fill_(float('nan'))
    torch.save(state, d / 'nan.pt')
    (d / 'text.pt').write_text('not weights\n')
    raw = open(WEIGHTS, 'rb').read()
    (d / 'truncated.pt').write_bytes(raw[:len(raw) // 2])
    (d / 'syntax.py').write_text('model = dict(\n')
    (d / 'a_file').write_text('x')
    (d / 'folder.npz').mkdir()
    (d / 'old.npz').write_bytes(b'old result')
    return d


SAMPLE_CASES = [
    # (arguments besides the config, text of the one line)
    (['--checkpoint', '{d}/nan.pt'], 'tensor out.2.bias holds NaN or infinite values'),
    (['--checkpoint', '{d}/text.pt'], 'is not a PyTorch checkpoint'),
    (['--checkpoint', '{d}/truncated.pt'], 'truncated or corrupt'),
    (['--checkpoint', '{d}/missing.pt'], 'not found'),
    (['--grid', '{d}/old.npz'], 'unknown image extension .npz'),
    (['--grid', '{d}/grid.xyz'], 'unknown image extension .xyz'),
    (['--cfg-options', 'garbage'], 'expected KEY=VALUE'),
    (['--cfg-options', 'model.foo=1'], 'model.foo: not a setting of ConsistencyModel'),
    (['--cfg-options', 'model.unet.model_chanels=3'], "did you mean 'model_channels'"),
    (['--cfg-options', 'model.unet.model_channels=abc'], 'expected a number'),
    (['--cfg-options', 'model.unet.type=NoSuchUNet'], "did you mean 'ConsistencyUNetModel'"),
    (['--cfg-options', 'model.precond.sigma_data=0'], 'sigma_data must be a positive'),
    (['--cfg-options', 'model.denoiser.sigma_data=1'], "an old name, now 'precond'"),
    (['--cfg-options', 'model.precond.rho=-7'], 'rho must be a positive number'),
    (['--cfg-options', 'model.precond.sigma_min=100'], 'sigma_min < sigma_max'),
    (['--cfg-options', 'model.seed=abc'], 'seed must be an integer'),
    (['--cfg-options', 'model.batch_size=0'], 'batch size must be >= 1'),
    (['--seed', '100000000000000000000'], 'seed must be in [0, 2**63)'),
    (['--num-samples', '1000000000'], 'more than this machine'),
    (['--device', 'tpu'], '--device tpu: not a device'),
    (['--sampler', 'trigflow', '--steps', '3'], 'needs trig_ts'),
    (['--labels', ''], "labels '' is empty; give class labels (e.g. 3 or 1,145), or omit "
     '--labels'),
]


@pytest.mark.parametrize('args,text', SAMPLE_CASES, ids=[t for _, t in SAMPLE_CASES])
def test_sample_refuses_in_one_line(files, args, text):
    out = files / 'old.npz'
    proc = cli('sample', C, '--out', out, *[a.format(d=files) for a in args])
    assert_one_line(proc, text)
    assert out.read_bytes() == b'old result'  # the user's file is untouched


@pytest.mark.parametrize('config,text', [
    ('{d}/syntax.py', 'syntax.py:1: syntax error'),
    (osp.join(ROOT, 'configs', '_base_', 'default_runtime.py'), 'defines no model'),
    (osp.join(ROOT, 'configs', 'consistency_models', 'metafile.yml'), 'is not a config'),
    ('{d}/none.py', 'config file not found'),
])
def test_bad_configs(files, config, text):
    proc = cli('sample', config.format(d=files), '--out', files / 'never.npz')
    assert_one_line(proc, text)
    assert not (files / 'never.npz').exists()


@pytest.mark.parametrize('out,text', [
    ('{d}/a_file/x.npz', 'is a file, not a folder'),
    ('{d}/folder.npz', 'is a folder'),
    ('{d}/x.png', 'must be an .npz file'),
])
def test_bad_outputs_are_refused_before_sampling(files, out, text):
    proc = cli('sample', C, '--out', out.format(d=files))
    assert_one_line(proc, text)
    assert 'sampling' not in proc.stderr  # refused before the work


@pytest.mark.slow
def test_export_weights_protects_its_input_and_outputs(files, tmp_path):
    ck = tmp_path / 'ck.pt'
    ck.write_bytes(open(WEIGHTS, 'rb').read())
    before = ck.read_bytes()
    assert_one_line(cli('export_weights', ck, ck), 'is the CHECKPOINT this run reads')
    assert ck.read_bytes() == before
    out = tmp_path / 'out.pt'
    out.write_bytes(b'keep')
    assert_one_line(cli('export_weights', ck, out), 'exists; give another name, or --force')
    assert out.read_bytes() == b'keep'
    assert cli('export_weights', ck, out, '--force').returncode == 0
    assert_one_line(cli('export_weights', tmp_path / 'none.pth', tmp_path / 'o.pt'),
                    'checkpoint not found')
    assert_one_line(cli('export_weights', files / 'nan.pt', tmp_path / 'o.pt'), 'NaN')
    assert not (tmp_path / 'o.pt').exists()


def test_edit_bad_patch_size(files, tmp_path):
    img = osp.join(ROOT, 'demo', 'editing')
    proc = cli('edit', C, '--task', 'superres', '--input', img, '--patch-size', '0',
               '--out-dir', tmp_path / 'out')
    assert_one_line(proc, '--patch-size 0: must divide the image size 16')
    assert not (tmp_path / 'out').exists()


def test_edit_refuses_more_points_than_memory(tmp_path):
    proc = cli('edit', C, '--task', 'interpolate', '--num-points', '1000000000', '--labels',
               '1,2', '--out-dir', tmp_path / 'out')
    assert_one_line(proc, '--num-points 1000000000: about')
    assert 'more than this machine' in proc.stderr and not (tmp_path / 'out').exists()


def test_unexpected_errors_are_one_line_with_debug_for_the_traceback(files):
    env = dict(os.environ, MMAGIC_CM_DEBUG='1')
    proc = cli('sample', C, '--out', files / 'never.npz', '--cfg-options', 'garbage', env=env)
    assert proc.returncode == 2 and 'Traceback' in proc.stderr  # --debug shows it


@pytest.mark.slow
def test_ctrl_c_exits_130_in_one_line_keeping_the_old_output(files):
    out = files / 'old.npz'
    # Ctrl-C as in a terminal: SIGINT's default action in the child, whatever
    # this test process inherited or set (an ignored signal stays ignored in
    # a child across exec)
    proc = subprocess.Popen(
        [sys.executable, osp.join(ROOT, 'tools', 'sample.py'), C, '--out', str(out),
         '--num-samples', '3000000', '--generator', 'determ-indiv', '--batch-size', '64'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    err = ''
    while time.time() < deadline:  # wait for the progress bar: the work has begun
        line = proc.stderr.readline()
        err += line
        if 'sampling' in line or not line:
            break
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    try:
        _, rest = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        with open(f'/proc/{proc.pid}/status') as f:  # why it is still running
            state = [line.strip() for line in f if line.startswith(('State', 'Sig', 'Threads'))]
        proc.kill()
        pytest.fail(f'no exit 120 s after SIGINT: {state}; {err[-1000:]}')
    err += rest
    assert proc.returncode == 130, err[-2000:]
    assert 'Traceback' not in err and 'interrupted' in err.splitlines()[-1]
    assert out.read_bytes() == b'old result'
    assert not [p for p in os.listdir(files) if p.endswith('.tmp')]


@pytest.mark.parametrize('option,text', [
    ('train_dataloader.batch_size=0', 'batch_size=0: must be >= 1'),
    ('optim_wrapper.optimizer.lr=-1', 'lr=-1: must be a positive number'),
    ('train_dataloader.dataset.split=val', "split='val'"),
    ('train_cfg.max_iters=0', 'max_iters=0: must be a positive'),
    ('garbage', 'expected KEY=VALUE'),
])
def test_training_mistakes_are_refused_and_leave_no_work_dir(tmp_path, option, text):
    work = tmp_path / 'work'
    assert_one_line(cli('train', C, '--work-dir', work, '--cfg-options', option), text)
    assert not work.exists()


# ------------------------------------------------------------------ damaged output folders
DIGITS = ['--num-samples', '8', '--batch-size', '4', '--generator', 'determ-indiv',
          '--no-progress']


def npz_arrays(path):
    with np.load(path) as data:
        return [data[k].tobytes() for k in data.files]


@pytest.mark.parametrize('text,message', [
    ('{"key": ', 'is not valid JSON (JSONDecodeError'),
    ('[]', "not a sharded run's description (found a JSON list"),
    ('{"key": "x"}', "not a sharded run's description (found keys 'key'"),
])
def test_sharded_run_refuses_a_malformed_run_json(tmp_path, text, message):
    out = tmp_path / 'o.npz'
    run = tmp_path / 'o.npz.shards' / 'run.json'
    run.parent.mkdir()
    run.write_text(text)
    proc = cli('sample', C, '--out', out, *DIGITS, '--shard-size', '4')
    assert_one_line(proc, message)
    line = proc.stderr.splitlines()[-1]
    assert line.startswith(f'error: {run} is not') and line.endswith(
        f'delete {run.parent} to start over, or write to another --out')
    assert run.read_text() == text and not out.exists()
    assert os.listdir(run.parent) == ['run.json']


@pytest.mark.slow
def test_a_corrupt_shard_is_named_and_drawn_again(tmp_path):
    out = tmp_path / 's.npz'
    args = ['sample', C, '--out', out, *DIGITS, '--shard-size', '4']
    # uninterrupted; equal to the unsharded run's, as tests/tools/test_dist_sample.py shows
    assert cli(*args, '--keep-shards').returncode == 0
    whole = npz_arrays(out)
    out.unlink()
    shard = tmp_path / 's.npz.shards' / 'shard_00000.npz'
    with np.load(shard) as data:
        images = data['images'].tobytes()
    raw = bytearray(shard.read_bytes())
    at = raw.find(images)  # savez stores the arrays uncompressed
    raw[at + len(images) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(zipfile.BadZipFile, match='Bad CRC-32'):
        npz_arrays(shard)  # the damage is one the zip's CRC finds
    proc = cli(*args)
    assert proc.returncode == 0 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    named = [line for line in proc.stderr.splitlines() if 'shard_00000.npz' in line]
    assert named == [f"warning: {shard} is truncated or corrupt (BadZipFile: Bad CRC-32 for "
                     "file 'images.npy'); drawing it again"]
    assert 'resuming: 1 of 2 shards' in proc.stdout  # only the damaged one was drawn again
    assert npz_arrays(out) == whole
    assert os.listdir(tmp_path) == ['s.npz']


@pytest.mark.slow
def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()
    stale = tmp_path / f'.o.npz.{dead.pid}.abcd1234.tmp'
    stale.write_bytes(b'half')
    other = tmp_path / 'tmpabcd1234.tmp'  # not named for o.npz: not ours to remove
    other.write_bytes(b'keep')
    proc = cli('sample', C, '--out', tmp_path / 'o.npz', *DIGITS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(os.listdir(tmp_path)) == ['o.npz', 'tmpabcd1234.tmp']


def test_a_second_writer_is_refused_and_the_output_kept(files):
    out = files / 'old.npz'
    lock = lock_path(str(out))
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another writer of OUT, writing now
        proc = cli('sample', C, '--out', out, *DIGITS)
        assert_one_line(proc, f'another process is writing {out} (lock {lock}); wait for it')
        assert out.read_bytes() == b'old result' and osp.exists(lock)
    finally:
        os.close(fd)
        os.unlink(lock)


@pytest.mark.parametrize('out,text', [
    ('{d}/a_file', 'a_file is a file; give a folder'),
    ('.', 'is the current folder or holds it'),
])
def test_edit_out_dir_that_cannot_be_replaced(files, out, text):
    before = sorted(os.listdir(files))
    proc = cli('edit', C, '--task', 'colorize', '--input', osp.join(ROOT, 'demo', 'editing',
                                                                    'digits'),
               '--labels', '3', '--out-dir', out.format(d=files), cwd=files)
    assert_one_line(proc, text)
    assert sorted(os.listdir(files)) == before and (files / 'a_file').read_text() == 'x'


def test_training_refuses_a_truncated_20th_image(tmp_path):
    from PIL import Image
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in range(25):
        Image.new('RGB', (16, 16), (i, 0, 0)).save(folder / f'{i:02d}.png')
    raw = (folder / '19.png').read_bytes()
    (folder / '19.png').write_bytes(raw[:len(raw) // 2])
    work = tmp_path / 'work'
    proc = cli('train', C, '--work-dir', work, '--cfg-options',
               'train_dataloader.dataset.type=BasicImageDataset',
               f'train_dataloader.dataset.data_root={folder}',
               'train_dataloader.dataset.data_prefix.gt=')
    assert_one_line(proc, '1 unreadable image of 25 in dataset folder')
    assert '19.png (' in proc.stderr and 'remove or replace it' in proc.stderr
    assert not work.exists()


def test_a_damaged_shipped_weight_file_is_refused(files, tmp_path):
    """A copy of the shipped folder with a flipped byte, standing in for the real one."""
    shipped = tmp_path / 'digits'
    shipped.mkdir()
    for name in ('cd_digits16_ema.pt', 'SHA256SUMS'):
        (shipped / name).write_bytes(open(osp.join(osp.dirname(WEIGHTS), name), 'rb').read())
    raw = bytearray((shipped / 'cd_digits16_ema.pt').read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (shipped / 'cd_digits16_ema.pt').write_bytes(bytes(raw))
    code = ('import runpy, sys; import mmagic_cm.files.checkpoint as c; '
            f'c.SHIPPED_WEIGHTS_DIR = {str(shipped)!r}; sys.argv = sys.argv[1:]; '
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.run(
        [sys.executable, '-c', code, osp.join(ROOT, 'tools', 'sample.py'), C, '--checkpoint',
         str(shipped / 'cd_digits16_ema.pt'), '--out', str(files / 'old.npz')],
        capture_output=True, text=True, timeout=300)
    assert_one_line(proc, 'cd_digits16_ema.pt is damaged: its SHA-256 is ')
    assert 'reinstall the package' in proc.stderr
    assert (files / 'old.npz').read_bytes() == b'old result'
