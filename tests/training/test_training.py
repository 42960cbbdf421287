"""Training through mmengine: tools/train.py, resume, schedules, bad input, DDP
(FSDP: test_fsdp.py)."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool
from mmagic_cm.training.schedules import ImprovedSchedule, OriginalSchedule, lognormal_indices

CT = osp.join(TINY_CONFIGS, 'cm_tiny_train_ct.py')
CD = osp.join(TINY_CONFIGS, 'cm_tiny_train_cd.py')
EDM = osp.join(TINY_CONFIGS, 'cm_tiny_train_edm.py')
#: the continuous-time recipes (tiny): ECT, sCT from the teacher's weights, sCD
RECENT = {m: osp.join(TINY_CONFIGS, f'cm_tiny_train_{m}.py') for m in ('ect', 'sct', 'scd')}


def teacher_options(mode, teacher_file):
    key = 'teacher.path' if mode in ('cd', 'scd') else 'init_from'
    return ['--cfg-options', f'model.train_cfg.{key}={teacher_file}']


def run_train(config, work_dir, *extra):
    return run_tool('train', [config, '--work-dir', str(work_dir), *extra])


def load_state(path):
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    """A tiny 'EDM teacher' (random weights) in the released raw format."""
    torch.manual_seed(0)
    cfg = Config.fromfile(EDM)
    unet = MODELS.build(dict(cfg.model.unet))
    path = tmp_path_factory.mktemp('teacher') / 'edm_tiny.pt'
    torch.save(unet.state_dict(), path)
    return str(path)


def test_improved_schedule():
    s = ImprovedSchedule(s0=10, s1=1280, total_steps=8000)
    assert s.k_prime == 1000
    assert [s(k)[1] for k in (0, 999, 1000, 2000, 6999, 7000, 7999)] == [
        11, 11, 21, 41, 641, 1281, 1281]
    assert all(s(k)[0] == 0.0 for k in (0, 5000))


def test_original_progressive_schedule_hand_values():
    s = OriginalSchedule('adaptive', 'progressive', start_ema=0.95, start_scales=2,
                         end_scales=150, total_steps=10000)
    mu, n = s(0)
    assert n == 2 and mu == pytest.approx(0.95**2)  # N(0) = 1 + 1; mu = exp(2 ln .95 / 1)
    assert s(10000)[1] == 151
    with pytest.raises(ValueError, match='not a schedule of the original'):
        OriginalSchedule('adaptive', 'fixed')


def test_lognormal_indices_follow_the_discretised_lognormal():
    idx = lognormal_indices(41, 20000, 0.002, 80.0, 7.0, generator=torch.Generator()
                            .manual_seed(0))
    assert idx.min() >= 0 and idx.max() <= 39
    sigmas = (80**(1 / 7) + idx.double() / 40 * (0.002**(1 / 7) - 80**(1 / 7)))**7
    # median of log sigma near P_mean = -1.1 (the grid is coarse: loose bound)
    assert abs(float(torch.log(sigmas).median()) + 1.1) < 0.6


@pytest.mark.slow
def test_train_runs_and_lowers_the_loss_on_a_fixed_batch(tmp_path):
    assert run_train(EDM, tmp_path) == 0
    cfg = Config.fromfile(EDM)
    cfg.model.model_path = None
    model = MODELS.build(cfg.model)
    model.init_weights()
    from mmagic_cm.datasets import load_digits_arrays
    from mmagic_cm.evaluation.digits import to_model_input
    images, labels = load_digits_arrays(16, 'train')
    x, y = to_model_input(images[:16]), torch.from_numpy(labels[:16])  # the trained batch

    def fixed_loss(m):
        m.train_step_count.zero_()
        with torch.no_grad():
            return float(m.training_loss(x, y)['loss'])

    before = fixed_loss(model)
    model.load_state_dict(load_state(tmp_path / 'iter_40.pth')['state_dict'])
    assert fixed_loss(model) < 0.7 * before


@pytest.mark.parametrize('mode', ['cd', *(pytest.param(m, marks=pytest.mark.slow)
                                          for m in ('ect', 'sct', 'scd'))])
def test_resume_continues_exactly(tmp_path, teacher_file, mode):
    config = CD if mode == 'cd' else RECENT[mode]
    opts = teacher_options(mode, teacher_file)
    assert run_train(config, tmp_path / 'straight', *opts) == 0
    assert run_train(config, tmp_path / 'split', *opts, 'train_cfg.max_iters=3') == 0
    assert run_train(config, tmp_path / 'split', '--resume', *opts) == 0
    a = load_state(tmp_path / 'straight' / 'iter_6.pth')
    b = load_state(tmp_path / 'split' / 'iter_6.pth')
    assert int(a['state_dict']['train_step_count']) == 6
    assert set(a['state_dict']) == set(b['state_dict'])
    if mode == 'cd':
        assert any(k.startswith('target_unet.') for k in a['state_dict'])
    if mode in ('sct', 'scd'):  # the learned weighting u(t) is trained and saved
        assert any(k.startswith('weight_net.') for k in a['state_dict'])
    assert any(k.startswith('ema_unets.') for k in a['state_dict'])
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    for sa, sb in zip(a['optimizer']['state'].values(), b['optimizer']['state'].values()):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k]))


def test_resume_follows_a_schedule_changed_in_the_config(tmp_path, capsys):
    """A run saved under one schedule and resumed with a longer one ends as a
    run of the longer one from the start (the first 3 iterations share their
    rates); mmengine alone would go on with the saved schedulers."""
    constant = "dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=3)"
    for name, extra in [('short', ''), ('long', ", dict(type='CosineAnnealingLR', "
                                                 "eta_min=1e-5, by_epoch=False, begin=3, end=6)")]:
        (tmp_path / f'{name}.py').write_text(
            f"_base_ = [{CT!r}]\nparam_scheduler = [{constant}{extra}]\n")
    long_cfg, short_cfg = str(tmp_path / 'long.py'), str(tmp_path / 'short.py')
    assert run_train(long_cfg, tmp_path / 'straight') == 0
    assert run_train(short_cfg, tmp_path / 'split', '--cfg-options', 'train_cfg.max_iters=3') == 0
    assert run_train(long_cfg, tmp_path / 'split', '--resume') == 0
    a = load_state(tmp_path / 'straight' / 'iter_6.pth')
    b = load_state(tmp_path / 'split' / 'iter_6.pth')
    assert a['optimizer']['param_groups'][0]['lr'] < 0.5e-3  # the cosine ran (from 1e-3)
    assert b['optimizer']['param_groups'][0]['lr'] == a['optimizer']['param_groups'][0]['lr']
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    logs = [open(osp.join(d, f)).read() for d, _, fs in os.walk(tmp_path / 'split')
            for f in fs if f.endswith('.log')]
    assert sum("resuming with the config's" in log for log in logs) == 1


def test_follow_config_schedule_leaves_an_unchanged_schedule_alone(tmp_path):
    from mmagic_cm.training.optim import follow_config_schedule
    assert run_train(CT, tmp_path, '--cfg-options', 'train_cfg.max_iters=3') == 0
    ck = torch.load(tmp_path / 'iter_3.pth', map_location='cpu', weights_only=True)
    saved = Config.fromfile(CT).param_scheduler  # no 'end': the run's max_iters, 3
    before = [dict(s) for s in ck['param_schedulers']]
    assert follow_config_schedule(ck, saved, 3) is None and ck['param_schedulers'] == before
    assert follow_config_schedule(ck, [dict(s, end=3) for s in saved], 6) is None
    per_epoch = [dict(type='ConstantLR', factor=0.5)]  # mmengine's default: by_epoch=True
    assert 'resuming with the checkpoint' in follow_config_schedule(ck, per_epoch, 6)
    assert ck['param_schedulers'] == before
    # the same schedule written differently is rebuilt into the very state saved
    same = [dict(s, verbose=False) for s in saved]
    assert "resuming with the config's" in follow_config_schedule(ck, same, 3)
    assert ck['param_schedulers'] == before
    # a longer run: the scheduler without an 'end' gets the new max_iters
    assert "resuming with the config's" in follow_config_schedule(ck, saved, 6)
    assert ck['param_schedulers'][0]['end'] == 6 and before[0]['end'] == 3


def test_cd_starts_from_the_teacher_and_ct_trains(tmp_path, teacher_file):
    opts = ['--cfg-options', f'model.train_cfg.teacher.path={teacher_file}',
            'train_cfg.max_iters=1']
    assert run_train(CD, tmp_path / 'cd', *opts) == 0
    assert run_train(CT, tmp_path / 'ct') == 0
    state = load_state(tmp_path / 'ct' / 'iter_6.pth')['state_dict']
    assert not any(k.startswith('target_unet.') for k in state)  # improved: no EMA target


def test_training_checkpoint_samples_with_its_ema(tmp_path):

    assert run_train(CT, tmp_path) == 0
    out = tmp_path / 's.npz'
    assert run_tool('sample', [CT, '--checkpoint', str(tmp_path / 'iter_6.pth'), '--out',
                             str(out), '--num-samples', '2', '--labels', '3',
                             '--no-progress']) == 0
    assert np.load(out)['arr_0'].shape == (2, 16, 16, 3)


def test_missing_teacher_is_one_line(tmp_path, capsys):
    rc = run_train(CD, tmp_path, '--cfg-options', 'model.train_cfg.teacher.path=/no/edm.pt')
    err = capsys.readouterr().err.strip()
    assert rc == 2 and 'teacher checkpoint not found: /no/edm.pt' in err and '\n' not in err


@pytest.mark.parametrize('content', ['empty', 'unreadable'])
def test_bad_image_folder(tmp_path, capsys, content):
    folder = tmp_path / 'images'
    folder.mkdir()
    if content == 'unreadable':
        (folder / 'broken.png').write_bytes(b'not a png')
    rc = run_train(CT, tmp_path / 'work', '--cfg-options',
                   'train_dataloader.dataset.type=BasicImageDataset',
                   f'train_dataloader.dataset.data_root={folder}',
                   'train_dataloader.dataset.data_prefix.gt=')
    err = capsys.readouterr().err
    assert rc == 2
    assert ('holds no images' if content == 'empty' else 'unreadable image') in err


def test_nan_loss_stops_and_keeps_checkpoints(tmp_path, capsys):
    rc = run_train(EDM, tmp_path, '--cfg-options', 'optim_wrapper.optimizer.lr=1e12',
                   'default_hooks.checkpoint.interval=1', 'train_cfg.max_iters=40')
    err = capsys.readouterr().err
    assert rc == 1 and 'the training loss is' in err and 'Checkpoints already saved' in err
    saved = sorted(p for p in os.listdir(tmp_path) if p.endswith('.pth'))
    assert saved and load_state(tmp_path / saved[0])['state_dict']


def test_resume_from_another_config_is_refused(tmp_path, capsys):
    assert run_train(CT, tmp_path) == 0
    before = sorted(os.listdir(tmp_path))
    rc = run_train(EDM, tmp_path, '--resume')
    err = capsys.readouterr().err
    assert rc == 2 and 'was saved by another config' in err
    assert sorted(os.listdir(tmp_path)) == before  # nothing lost or added


@pytest.mark.slow
def test_two_process_gloo_run(tmp_path):
    env = dict(os.environ, MASTER_PORT='29517', OMP_NUM_THREADS='1', PYTHON=sys.executable)
    proc = subprocess.run(
        ['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), CT, '2', '--work-dir',
         str(tmp_path), '--cfg-options', 'train_cfg.max_iters=3'],
        capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_state(tmp_path / 'iter_3.pth')
    assert int(state['state_dict']['train_step_count']) == 3
    log = open(next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
                    if f.endswith('.log'))).read()
    assert 'Distributed training: True' in log and "backend='gloo'" in log


@pytest.mark.slow
def test_lpips_with_local_weights_and_offline_error(tmp_path, monkeypatch):
    from torchvision.models import vgg16

    from mmagic_cm.files.checkpoint import CheckpointError
    from mmagic_cm.training.lpips import VGG16_URL, LPIPSLoss
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'hub'))
    with pytest.raises(CheckpointError) as err:
        LPIPSLoss()(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    assert VGG16_URL in str(err.value) and 'vgg_path=PATH' in str(err.value)
    torch.manual_seed(0)
    features = {f'features.{k}': v for k, v in vgg16(weights=None).features.state_dict().items()}
    torch.save(features, tmp_path / 'vgg16.pth')
    lpips = LPIPSLoss(vgg_path=str(tmp_path / 'vgg16.pth'))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    d = lpips(x, x.flip(0))
    assert d.shape == (2, ) and torch.all(d > 0)
    assert torch.allclose(lpips(x, x), torch.zeros(2))


def test_amp_bf16_on_cpu(tmp_path):
    assert run_train(EDM, tmp_path, '--amp', 'bf16', '--cfg-options',
                     'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2') == 0
    cfg_text = open(next(osp.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
                         if f.endswith('.py'))).read()
    assert "type='BF16AutocastOptimWrapper'" in cfg_text


def test_amp_fp16_needs_cuda(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip('CUDA is available')
    assert run_train(EDM, tmp_path, '--amp', 'fp16') == 2
    assert '--amp fp16 needs CUDA' in capsys.readouterr().err


@pytest.mark.slow
def test_copied_and_moved_work_dirs_resume_from_their_own_files(tmp_path, teacher_file):
    """last_checkpoint holds an absolute path: a copy must not resume from the
    original's files, a moved dir must not fail; a truncated newest checkpoint
    is skipped for the previous good one, with a warning naming both."""
    import shutil
    opts = ['--cfg-options', f'model.train_cfg.teacher.path={teacher_file}']
    assert run_train(CD, tmp_path / 'straight', *opts) == 0
    assert run_train(CD, tmp_path / 'a', *opts, 'train_cfg.max_iters=3') == 0
    shutil.copytree(tmp_path / 'a', tmp_path / 'copy')
    (tmp_path / 'a' / 'iter_3.pth').write_bytes(b'the original is gone')
    assert run_train(CD, tmp_path / 'copy', '--resume', *opts) == 0
    shutil.move(tmp_path / 'copy', tmp_path / 'moved')
    os.remove(tmp_path / 'moved' / 'iter_6.pth')  # back to iteration 3, moved
    raw = open(tmp_path / 'moved' / 'iter_3.pth', 'rb').read()
    assert run_train(CD, tmp_path / 'moved', '--resume', *opts) == 0
    a = load_state(tmp_path / 'straight' / 'iter_6.pth')['state_dict']
    b = load_state(tmp_path / 'moved' / 'iter_6.pth')['state_dict']
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    # a truncated newest checkpoint: the previous good one, named in a warning
    from mmagic_cm.training.checks import resume_checkpoint
    (tmp_path / 'moved' / 'iter_6.pth').write_bytes(raw[:len(raw) // 2])
    assert resume_checkpoint(str(tmp_path / 'moved')) == str(tmp_path / 'moved' / 'iter_3.pth')
