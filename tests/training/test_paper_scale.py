"""The ImageNet-64 paper-scale recipes: the references' settings in their
configs, the inverse-square-root lr decay, per-resolution dropout, a tiny run
with their training settings, and the finite-difference tangent diagnostic."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.denoiser.unet import ConsistencyUNetModel
from mmagic_cm.registry import MODELS
from mmagic_cm.testing import ROOT, TINY_CONFIGS, run_tool, tiny_ect_denoiser
from mmagic_cm.training.optim import InverseSquareRootLR

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')
SCT = osp.join(CONFIGS, 'consistency_models_sct_imagenet1k-64x64.py')
SCD = osp.join(CONFIGS, 'consistency_models_scd_imagenet1k-64x64.py')
ECT = osp.join(CONFIGS, 'consistency_models_ect_imagenet1k-64x64.py')
LOWFREQ = osp.join(CONFIGS, 'consistency_models_edm-lowfreq_imagenet1k-64x64.py')
RELEASED_EDM = 'https://openaipublic.blob.core.windows.net/consistency/edm_imagenet64_ema.pt'


def lrs(steps, **kwargs):
    """The lr each of ``steps`` iterations runs with (base lr 1)."""
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    sched = InverseSquareRootLR(opt, **kwargs)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    return out, opt, sched


def test_inverse_square_root_lr_by_hand():
    """FastGen's LambdaInverseSquareRootScheduler / locuslab/ect's
    learning_rate_schedule: 1 up to decay_steps, then sqrt(decay_steps / n)."""
    got, _, _ = lrs(17, decay_steps=4)
    assert got[:5] == [1.0] * 5
    assert got[9] == pytest.approx(2 / 3) and got[16] == pytest.approx(0.5)
    assert got[5] == pytest.approx(math.sqrt(4 / 5))
    ramp, _, _ = lrs(6, decay_steps=0, warmup_steps=4)
    assert ramp == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1])
    both, _, _ = lrs(10, decay_steps=4, warmup_steps=2)
    assert both[1] == pytest.approx(0.5) and both[8] == pytest.approx(math.sqrt(0.5))
    with pytest.raises(ValueError, match='decay_steps'):
        lrs(1, decay_steps=-1)


def test_inverse_square_root_lr_resumes_exactly():
    straight, _, _ = lrs(12, decay_steps=3)
    _, opt, sched = lrs(7, decay_steps=3)
    opt2 = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    resumed = InverseSquareRootLR(opt2, decay_steps=3)  # built first, as mmengine's runner
    opt2.load_state_dict(opt.state_dict())
    resumed.load_state_dict(sched.state_dict())
    after = []
    for _ in range(5):
        after.append(opt2.param_groups[0]['lr'])
        opt2.step()
        resumed.step()
    assert after == pytest.approx(straight[7:])


def test_sct_and_scd_configs_carry_fastgens_imagenet_recipe():
    """fastgen/configs/experiments/EDM/config_scd_in64.py and methods/config_scm.py."""
    lowfreq = Config.fromfile(LOWFREQ).model
    assert lowfreq.precond.time_scale == 0.25 and lowfreq.train_cfg.init_from == RELEASED_EDM
    for path in (SCT, SCD):
        cfg = Config.fromfile(path)
        ow = cfg.optim_wrapper
        assert ow.type == 'BF16AutocastOptimWrapper' and ow.clip_grad == dict(max_norm=10.0)
        assert ow.optimizer == dict(type='Adam', lr=7e-5, betas=(0.9, 0.99), eps=1e-11,
                                    weight_decay=0.0)
        assert cfg.param_scheduler == [dict(type='InverseSquareRootLR', decay_steps=35000,
                                            warmup_steps=0, by_epoch=False)]
        assert cfg.train_cfg.max_iters == 600000 and cfg.train_dataloader.batch_size * 8 == 1024
        tc = cfg.model.train_cfg
        assert tuple(tc.ema_rates) == (0.9999, 0.99995, 0.9996)
        assert (tc.tangent, tc.tangent_fp32, tc.tangent_warmup) == ('jvp', True, 10000)
        assert (tc.tangent_norm, tc.tangent_norm_const) == ('rms', 0.1)
        assert tc.prior_weighting and tc.adaptive_weighting and tc.p_mean == -1.0
        assert cfg.model.precond.time_scale == 0.25  # the low-frequency teacher's
    sct, scd = Config.fromfile(SCT).model, Config.fromfile(SCD).model
    assert sct.train_cfg.p_std == 1.8 and scd.train_cfg.p_std == 1.6
    assert sct.train_cfg.init_from == lowfreq.model_path
    assert scd.train_cfg.init_from is None and scd.train_cfg.teacher.path == lowfreq.model_path
    assert scd.unet.dropout == 0.0 and scd.train_cfg.teacher.dropout == 0.0


def test_ect_config_carries_locuslabs_imagenet_recipe():
    """locuslab/ect branch imgnet: run_imgnet_ecm.sh, ct_train.py (edm2-img64-s)."""
    cfg = Config.fromfile(ECT)
    tc = cfg.model.train_cfg
    assert (tc.p_mean, tc.p_std, tc.q, tc.c, tc.k, tc.b) == (-0.8, 1.6, 4.0, 0.06, 8.0, 1.0)
    assert (tc.mapping, tc.weighting, tc.scalings) == ('sigmoid', 'snrpk', 'edm')
    assert tc.double * 128 == 500 * 6400  # a stage every 500 ticks of 6.4k images
    assert cfg.train_cfg.max_iters * 128 == 12_800_000
    assert cfg.train_dataloader.batch_size * 8 == 128
    assert cfg.optim_wrapper.optimizer == dict(type='Adam', lr=1e-3, betas=(0.9, 0.99),
                                               eps=1e-8, weight_decay=0.0)
    assert cfg.param_scheduler[0].type == 'InverseSquareRootLR'
    assert cfg.param_scheduler[0].decay_steps == 2000
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert model.objective.weighting == 'snrpk' and model.objective.scalings == 'edm'
    # dropout 0.4 at 16x16 and 8x8 only (their dropres=16)
    rates = {m.p for m in model.unet.modules() if isinstance(m, torch.nn.Dropout)}
    assert rates == {0.0, 0.4}


def test_dropout_resolutions():
    """A resampling block counts at its output resolution (EDM2's dropout_res)."""
    kw = dict(image_size=8, in_channels=3, model_channels=32, num_res_blocks=1,
              attention_resolutions='4', channel_mult='1,2', num_heads=2,
              use_scale_shift_norm=True, resblock_updown=True, dropout=0.4)

    def rates(unet):
        def p(block):
            return block.out_layers[2].p
        return ([p(b[0]) for b in unet.input_blocks[1:]], p(unet.middle_block[0]),
                [[p(m) for m in b if hasattr(m, 'out_layers')] for b in unet.output_blocks])

    ins, mid, outs = rates(ConsistencyUNetModel(**kw, dropout_resolutions='4'))
    # input: block at 8, down 8 -> 4, block at 4; output: 2 blocks at 4 (+ up 4 -> 8), 2 at 8
    assert ins == [0.0, 0.4, 0.4] and mid == 0.4
    assert outs == [[0.4], [0.4, 0.0], [0.0], [0.0]]
    ins, mid, outs = rates(ConsistencyUNetModel(**kw))  # the original: everywhere
    assert set(ins) == {0.4} and mid == 0.4 and {p for b in outs for p in b} == {0.4}
    plain = ConsistencyUNetModel(**kw)
    same = ConsistencyUNetModel(**kw, dropout_resolutions=[8, 4])
    assert [k for k in plain.state_dict()] == [k for k in same.state_dict()]


def write_config(path, base, **entries):
    text = [f'_base_ = [{base!r}]']
    text += [f'{k} = {v!r}' for k, v in entries.items()]
    path.write_text('\n'.join(text) + '\n')
    return str(path)


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    """A tiny EDM 'teacher' with random weights."""
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'cm_tiny_train_sct.py'))
    path = tmp_path_factory.mktemp('teacher') / 'edm_tiny.pt'
    torch.save(MODELS.build(dict(cfg.model.unet)).state_dict(), path)
    return str(path)


@pytest.mark.parametrize('recipe', ['sct', 'ect'])
def test_tiny_run_with_the_paper_scale_training_settings(tmp_path, teacher_file, recipe):
    """The tiny digits run with the ImageNet config's optimizer wrapper (bf16
    autocast, clipping), lr schedule and objective settings: it trains, the lr
    decays as scheduled and the gradient norm is logged (clipping on)."""
    big = Config.fromfile(SCT if recipe == 'sct' else ECT)
    train_cfg = {k: v for k, v in big.model.train_cfg.items()
                 if k not in ('init_from', 'ema_rates')}
    train_cfg['init_from'] = teacher_file
    if recipe == 'sct':
        train_cfg['tangent_warmup'] = 2
    else:
        train_cfg['double'] = 2
    scheduler = dict(big.param_scheduler[0], decay_steps=2)
    config = write_config(
        tmp_path / 'tiny.py', osp.join(TINY_CONFIGS, f'cm_tiny_train_{recipe}.py'),
        model=dict(train_cfg=train_cfg),
        optim_wrapper=dict(big.optim_wrapper, clip_grad=dict(max_norm=10.0)),
        param_scheduler=[scheduler])
    assert run_tool('train', [config, '--work-dir', str(tmp_path / 'run')]) == 0
    ckpt = torch.load(tmp_path / 'run' / 'iter_6.pth', map_location='cpu', weights_only=True)
    lr0 = big.optim_wrapper.optimizer.lr
    logged = ckpt['message_hub']['log_scalars']
    used = logged['train/lr']['log'].tolist()  # the lr of each iteration (logged every one)
    assert used == pytest.approx([lr0] * 3 + [lr0 / math.sqrt(n / 2) for n in (3, 4, 5)])
    assert 'train/grad_norm' in logged


def test_tangent_agreement_of_a_low_and_a_high_frequency_time_input():
    """The diagnostic of tools/tangent_error.py on the tiny seeded UNet: with
    ln σ / 4 finite differences agree with the JVP; with 250 ln σ they do not."""
    from mmagic_cm.training.diagnostics import summarize, tangent_agreement
    den, images, labels = tiny_ect_denoiser()
    low = tangent_agreement(den.net, KarrasPrecond(time_scale=0.25), images, labels,
                            times=(0.3, 1.2), steps=(1e-3, ))
    high = tangent_agreement(den.net, KarrasPrecond(), images, labels, times=(0.3, 1.5),
                             steps=(0.02, ))
    assert summarize(low, (1e-3, ))['cos_g@0.001'] > 0.9999
    assert summarize(low, (1e-3, ))['rel_err_dF@0.001'] < 1e-3
    assert summarize(high, (0.02, ))['rel_err_dF@0.02'] > 0.5
    assert min(r['cos_g@0.02'] for r in high) < 0.5
    assert den.net.training  # left as it was


def test_tangent_error_tool(capsys):
    assert run_tool('tangent_error', ['--tiny', '--time-scale', '0.25', '--times', '0.5',
                                      '--steps', '0.001']) == 0
    out = capsys.readouterr().out
    assert 'time input 0.25 ln sigma' in out and 'cos_g@0.001 1.000' in out
