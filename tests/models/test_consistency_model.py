"""``ConsistencyModel`` as an mmengine model: settings, DataSamples, dtypes."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.models import ConsistencyModel
from mmagic_cm.registry import MODELS
from mmagic_cm.sampling import resolve_dtype
from mmagic_cm.testing import ROOT, TINY_CONFIGS


def build(name='cm_tiny_cond.py', **overrides):
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, name))
    cfg.model.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


def test_forward_returns_mmagic_datasamples():
    model = build()
    samples = model(dict(num_batches=3, labels='king penguin'))
    assert len(samples) == 3
    for s in samples:
        assert s.fake_img.shape == (3, 16, 16)
        assert 0 <= s.fake_img.min() and s.fake_img.max() <= 255
        assert s.gt_label.label.tolist() == [145]
    tensor = model(dict(num_batches=2, labels=[1, 2]), mode='tensor')
    assert tensor.shape == (2, 3, 16, 16) and tensor.abs().max() <= 1


def test_forward_uses_the_global_rng_and_gives_bgr():
    model = build()
    torch.manual_seed(3)
    a = model(dict(num_batches=2, labels=7))
    b = model(dict(num_batches=2, labels=7))
    assert not torch.equal(a[0].fake_img, b[0].fake_img)  # new images every call
    torch.manual_seed(3)
    again = model(dict(num_batches=2, labels=7))
    assert torch.equal(a[0].fake_img, again[0].fake_img)
    rgb = model(dict(num_batches=2, labels=7, noise=a[0].noise[None].repeat(2, 1, 1, 1)),
                mode='tensor')
    expected = ((rgb[0] + 1) * 127.5).clamp(0, 255)
    assert torch.allclose(a[0].fake_img, expected.flip(0))


def test_forward_takes_labels_from_data_samples():
    from mmagic.structures import DataSample
    model = build()
    data_samples = []
    for label in (5, 9):
        ds = DataSample()
        ds.set_gt_label(torch.tensor([label]))
        data_samples.append(ds)
    out = model(dict(num_batches=2), data_samples)
    assert [o.gt_label.label.item() for o in out] == [5, 9]


def test_unconditional_datasamples_have_no_label():
    samples = build('cm_tiny_uncond.py')(dict(num_batches=2))
    assert len(samples) == 2 and 'gt_label' not in samples[0]


def test_random_labels_are_seeded():
    model = build()
    assert model.sample_labels(None, 4, seed=3) == model.sample_labels(None, 4, seed=3)
    assert model.sample_labels(None, 4, seed=3) != model.sample_labels(None, 4, seed=4)


def test_sample_with_overrides_and_labels():
    model = build()
    images, labels = model.sample(3, labels='1,2,3', batch_size=2, sampler='multistep',
                                  ts='0,5,9', steps=10)
    assert images.shape == (3, 16, 16, 3) and labels.tolist() == [1, 2, 3]


@pytest.mark.parametrize('settings,message', [
    (dict(sampler='multistep', ts=None), 'multistep needs ts'),
    (dict(sampler='nope'), "unknown sampler 'nope'"),
    (dict(batch_size=0), 'batch size must be >= 1'),
    (dict(generator='x'), "unknown generator 'x'"),
    (dict(dtype='fp8'), "unknown dtype 'fp8'"),
])
def test_bad_settings_fail_at_build(settings, message):
    with pytest.raises(ValueError, match=message):
        build(**settings)


def test_unknown_override():
    with pytest.raises(ValueError, match='unknown sampling setting'):
        build().settings(sigma=3)


def test_bf16_on_cpu_is_close_to_fp32():
    model = build()
    gen_args = dict(num_samples=2, labels='3,997')
    fp32, _ = model.sample(**gen_args)
    bf16, _ = model.sample(dtype='bf16', **gen_args)
    diff = (fp32.astype(float) - bf16.astype(float))
    mse = (diff**2).mean()
    psnr = 10 * torch.log10(torch.tensor(255.0**2 / max(mse, 1e-12))).item()
    assert psnr > 25, psnr


def test_resolve_dtype():
    assert resolve_dtype('bf16', 'cpu') == torch.bfloat16
    assert resolve_dtype(None, 'cpu') == torch.float32
    with pytest.raises(ValueError, match='fp16 needs a CUDA device'):
        resolve_dtype('fp16', 'cpu')


def test_old_config_words_are_refused_naming_the_new_ones():
    """``denoiser=``, ``KarrasDenoiser`` and ``distillation=`` are gone: a
    config that still writes them is told the new word."""
    from mmagic_cm.apis.build import check_model_config
    from mmagic_cm.denoiser.precond import build_precond
    old = dict(type='KarrasPrecond', sigma_min=0.002, sigma_max=80.0)
    with pytest.raises(ValueError, match="model.denoiser: an old name, now 'precond'"):
        build(precond=None, denoiser=old)
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'cm_tiny_cond.py')).model.to_dict()
    with pytest.raises(ValueError, match="model.denoiser: an old name, now 'precond'"):
        check_model_config(dict(cfg, denoiser=old))
    with pytest.raises(ValueError, match="KarrasDenoiser: an old name, now 'KarrasPrecond'"):
        build(precond=dict(old, type='KarrasDenoiser'))
    with pytest.raises(ValueError, match="KarrasDenoiser: an old name, now 'KarrasPrecond'"):
        check_model_config(dict(cfg, precond=dict(old, type='KarrasDenoiser')))
    with pytest.raises(ValueError, match="distillation: an old name, now 'boundary_condition'"):
        build_precond(dict(distillation=True))


def test_edm_teacher_uses_plain_scalings():
    teacher = build(training_mode='edm', sampler='heun', steps=4)
    assert not teacher.precond.boundary_condition
    assert isinstance(teacher, ConsistencyModel)
    images, _ = teacher.sample(2, labels=1)
    assert images.shape == (2, 16, 16, 3)


def test_training_copies_are_made_when_training_starts_not_at_build():
    """A model built from a training config only to sample holds one UNet;
    the target and EMA copies appear when training starts or a training
    checkpoint arrives, in the checkpoint format of earlier releases."""
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'consistency_models',
                                   'consistency_models_cd_digits-onestep-16x16.py'))
    model = MODELS.build(cfg.model)
    assert model.trainable and not hasattr(model, 'ema_unets')
    assert not any(k.startswith(('target_unet.', 'ema_unets.')) for k in model.state_dict())
    assert model.weights_pending  # model_path: read if it samples before training
    model.init_weights()  # the start of training (the teacher, then the copies)
    state = model.state_dict()
    assert any(k.startswith('target_unet.') for k in state)
    assert any(k.startswith('ema_unets.ema_0p999.module.') for k in state)
    assert not model.weights_pending
    fresh = MODELS.build(cfg.model)
    fresh.load_state_dict(state)  # a training checkpoint makes room for its copies
    assert set(fresh.state_dict()) == set(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_a_load_without_unet_weights_leaves_model_path_pending():
    cfg = Config.fromfile(osp.join(TINY_CONFIGS, 'cm_tiny_cond.py'))
    model = MODELS.build(dict(cfg.model, model_path='/nonexistent/never-read.pt'))
    model.load_state_dict({}, strict=False)
    assert model.weights_pending


def test_unknown_train_cfg_key_is_one_line_with_the_close_match():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'consistency_models',
                                   'consistency_models_ct_digits-onestep-16x16.py'))
    cfg.model.train_cfg['lss'] = cfg.model.train_cfg.pop('loss')
    with pytest.raises(ValueError, match=r"train_cfg\.lss: not a setting of "
                       r"ConsistencyTraining .*did you mean 'loss'"):
        MODELS.build(cfg.model)


def test_init_weights_of_a_sampling_model_without_weights():
    """Random init of a sampling-only model with no ``model_path`` (mmengine's
    runner calls it): it initialises the UNet and leaves MMagic's preprocessor
    unbuilt (mmengine asks every submodule for its private init record)."""
    from mmagic_cm.models.preprocessor import DeferredPreprocessor
    model = build(model_path=None)
    assert isinstance(model.data_preprocessor, DeferredPreprocessor)
    model.init_weights()
    assert model.data_preprocessor.built is None
    assert not hasattr(model.data_preprocessor, '_params_init_info')
    images, _ = model.sample(2, labels=[1, 2], batch_size=2)
    assert images.shape == (2, 16, 16, 3)
