"""Raw ``.pt`` <-> diffusers conversion: mapping, outputs, pipeline, CLI."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmagic_cm.conversion.diffusers_unet as convert_module
from mmagic_cm.conversion.checkpoint_files import our_unet
from mmagic_cm.conversion.diffusers_unet import (
    build_diffusers_unet,
    diffusers_scheduler_config,
    diffusers_state_dict_to_unet,
    diffusers_unet_config,
    load_diffusers_folder,
    output_difference,
    save_diffusers_folder,
    unet_config_from_diffusers,
    unet_state_dict_to_diffusers,
)
from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.denoiser.unet import unet_config_from_flags
from mmagic_cm.files.checkpoint import CheckpointError, read_checkpoint
from mmagic_cm.sampling import get_generator
from mmagic_cm.testing import (
    ROOT,
    arch_keys,
    reference_model,
    reference_unet,
    reference_weights,
    run_tool,
)

BASE = osp.join(ROOT, 'configs', 'consistency_models', '_base_')
DENOISER = dict(sigma_min=0.002, sigma_max=80.0, sigma_data=0.5, rho=7.0)


def arch_cfg(arch):
    return unet_config_from_flags(arch_keys()[arch]['kwargs'])


def base_unet_cfg(name):
    return Config.fromfile(osp.join(BASE, name)).model.unet.to_dict()


def shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


def assert_identical(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize('arch', ['tiny_cond', 'tiny_uncond'])
def test_round_trip_is_bit_identical(arch, tmp_path):
    cfg, state = arch_cfg(arch), reference_weights(arch, 0)
    converted = unet_state_dict_to_diffusers(state, cfg)
    assert sum(v.numel() for v in converted.values()) == sum(v.numel() for v in state.values())
    assert_identical(diffusers_state_dict_to_unet(converted, cfg), state)
    # through the files, with the UNet config read back from unet/config.json
    save_diffusers_folder(str(tmp_path / 'pipe'), state, cfg, DENOISER)
    back, back_cfg = load_diffusers_folder(str(tmp_path / 'pipe'))
    assert_identical(back, state)
    assert diffusers_unet_config(back_cfg) == diffusers_unet_config(cfg)
    assert (tmp_path / 'pipe' / 'unet' / 'diffusion_pytorch_model.safetensors').is_file()


def test_qkv_split_follows_flash_attention_order():
    cfg, state = arch_cfg('tiny_cond'), reference_weights('tiny_cond', 0)
    converted = unet_state_dict_to_diffusers(state, cfg)
    qkv = state['input_blocks.3.1.qkv.weight']  # (3C, C, 1, 1), laid out (3, heads, d)
    c = qkv.shape[1]
    for i, name in enumerate(('to_q', 'to_k', 'to_v')):
        assert torch.equal(converted[f'down_blocks.1.attentions.0.{name}.weight'],
                           qkv[i * c:(i + 1) * c, :, 0, 0])
    # folders written by old diffusers name attention query/key/value/proj_attn
    old = {k.replace('to_q', 'query').replace('to_k', 'key').replace('to_v', 'value')
           .replace('to_out.0', 'proj_attn'): v for k, v in converted.items()}
    assert_identical(diffusers_state_dict_to_unet(old, cfg), state)


@pytest.mark.parametrize('arch', ['tiny_cond', 'tiny_uncond', 'tiny_learn_sigma'])
def test_outputs_agree(arch):
    cfg = arch_cfg(arch)
    theirs = build_diffusers_unet(reference_weights(arch, 0), cfg)
    assert not any(p.is_meta for p in theirs.parameters())
    diff, scale = output_difference(reference_unet(arch, 0), theirs, cfg)
    print(f'{arch}: max abs difference {diff:.3g} (outputs up to {scale:.3g})')
    assert scale > 0.05 and diff <= 1e-5


def test_digits_config_outputs_agree():
    cfg = base_unet_cfg('cm_digits16.py')  # 10 classes, 2 res blocks, dropout
    state = read_checkpoint(osp.join(ROOT, 'mmagic_cm', 'weights', 'digits',
                                     'cd_digits16_ema.pt'))
    ours = our_unet(cfg, state)
    diff, scale = output_difference(ours, build_diffusers_unet(state, cfg), cfg)
    assert scale > 0.05 and diff <= 1e-5


@pytest.mark.parametrize('arch', ['tiny_cond', 'tiny_uncond'])
def test_pipeline_onestep_matches_ours(arch, tmp_path):
    from diffusers import ConsistencyModelPipeline
    cfg = arch_cfg(arch)
    save_diffusers_folder(str(tmp_path), reference_weights(arch, 0), cfg, DENOISER)
    pipe = ConsistencyModelPipeline.from_pretrained(str(tmp_path))
    pipe.set_progress_bar_config(disable=True)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([145, 7]) if cfg['num_classes'] else None
    # the pipeline scales latents by init_noise_sigma = sigma_max, as ours does
    images = pipe(batch_size=2, class_labels=labels, num_inference_steps=1,
                  latents=noise.clone(), output_type='pt').images * 2 - 1
    model = reference_model(arch, 0, boundary_condition=True, sampler='onestep')
    ours = model.sample_batch(2, get_generator('dummy'), labels=labels, noise=noise)
    diff = (images - ours).abs().max().item()
    print(f'{arch}: pipeline vs onestep max abs difference {diff:.3g}')
    assert ours.abs().max() > 0.1 and diff <= 1e-4


@pytest.mark.parametrize('name', ['cm_imagenet64.py', 'cm_lsun256.py'])
def test_released_architecture_mapping_is_complete(name):
    """Keys and shapes map both ways on the meta device (no weights, no forward)."""
    from diffusers import UNet2DModel

    from mmagic_cm.conversion.diffusers_unet import _meta_unet
    cfg = base_unet_cfg(name)
    ours = _meta_unet(cfg).state_dict()
    config = diffusers_unet_config(cfg)
    with torch.device('meta'):
        theirs = UNet2DModel(**config).state_dict()
    assert shapes(unet_state_dict_to_diffusers(ours, cfg)) == shapes(theirs)
    back = diffusers_state_dict_to_unet(theirs, cfg)
    assert list(back) == list(ours) and shapes(back) == shapes(ours)
    assert diffusers_unet_config(unet_config_from_diffusers(config)) == config
    if name == 'cm_imagenet64.py':
        assert sum(v.numel() for v in ours.values()) == 295_899_267
        assert config['num_class_embeds'] == 1000 and config['attention_head_dim'] == 64
        assert config['resnet_time_scale_shift'] == 'scale_shift'
        assert config['down_block_types'][0] == 'ResnetDownsampleBlock2D'
    else:
        assert config['num_class_embeds'] is None
        assert config['resnet_time_scale_shift'] == 'default'
    # what makes the numerics match (time embedding, norms, attention norm)
    assert config['flip_sin_to_cos'] is True and config['freq_shift'] == 0
    assert config['norm_eps'] == 1e-5 and config['attn_norm_num_groups'] == 32


@pytest.mark.parametrize('change,field', [
    (dict(channel_mult='2,2'), 'channel_mult'),
    (dict(conv_resample=False, resblock_updown=False), 'conv_resample'),
    (dict(attention_resolutions='16,8', num_heads=2, num_head_channels=-1),
     'num_head_channels'),
    (dict(type='OtherUNet'), 'type'),
])
def test_unsupported_configs_name_the_field(change, field):
    cfg = dict(arch_cfg('tiny_uncond'), **change)
    with pytest.raises(ValueError, match=field):
        diffusers_unet_config(cfg)


def test_scheduler_config_and_learn_sigma(tmp_path):
    sched = diffusers_scheduler_config(dict(DENOISER, sigma_max=40.0), num_train_timesteps=201)
    assert sched['sigma_max'] == 40.0 and sched['num_train_timesteps'] == 201
    assert sched['clip_denoised'] is True and sched['sigma_data'] == 0.5
    with pytest.raises(ValueError, match='EDM'):
        diffusers_scheduler_config(KarrasPrecond(boundary_condition=False))
    with pytest.raises(ValueError, match='learn_sigma'):
        save_diffusers_folder(str(tmp_path / 'x'), reference_weights('tiny_learn_sigma', 0),
                              arch_cfg('tiny_learn_sigma'), DENOISER)
    with pytest.raises(CheckpointError, match='missing keys'):
        diffusers_state_dict_to_unet({}, arch_cfg('tiny_cond'))


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def tiny_pt(tmp_path):
    path = tmp_path / 'tiny_cond.pt'
    torch.save(reference_weights('tiny_cond', 0), path)
    return str(path)


def test_cli_both_directions(tiny_cond_config, tiny_pt, tmp_path, capsys):
    folder, back = str(tmp_path / 'pipe'), str(tmp_path / 'back.pt')
    assert run_tool('convert_checkpoint', [tiny_cond_config, tiny_pt, folder]) == 0
    out = capsys.readouterr().out
    assert 'wrote diffusers folder' in out and 'max abs difference' in out
    assert sorted(os.listdir(folder)) == ['model_index.json', 'scheduler', 'unet']
    assert run_tool('convert_checkpoint', [tiny_cond_config, folder, back]) == 0
    assert 'wrote raw UNet state dict' in capsys.readouterr().out
    assert_identical(torch.load(back, weights_only=True), torch.load(tiny_pt, weights_only=True))
    # fp16 output, replacing the folder; no temporary files are left anywhere
    assert run_tool('convert_checkpoint', [tiny_cond_config, tiny_pt, folder, '--dtype',
                                           'fp16', '--force', '--no-check']) == 0
    assert 'check skipped' in capsys.readouterr().out
    state, _ = load_diffusers_folder(folder)
    assert state['time_embed.0.weight'].dtype == torch.float16
    assert sorted(os.listdir(tmp_path)) == ['back.pt', 'pipe', 'tiny_cond.pt']


def _write_config(path, base, **model):
    fields = ', '.join(f'{k}={v!r}' for k, v in model.items())
    path.write_text(f'_base_ = [{base!r}]\nmodel = dict({fields})\n')
    return str(path)


def test_cli_bad_inputs(tiny_cond_config, tiny_uncond_config, tiny_pt, tmp_path, capsys,
                        monkeypatch):
    def fails(argv, text):
        before = sorted(os.listdir(tmp_path))
        assert run_tool('convert_checkpoint', argv) == 2
        err = capsys.readouterr().err
        assert err.startswith('error: ') and text in err and err.count('\n') == 1, err
        assert sorted(os.listdir(tmp_path)) == before  # nothing left behind

    out = str(tmp_path / 'out')
    fails([tiny_cond_config, str(tmp_path / 'missing.pt'), out], 'SRC not found')
    fails([str(tmp_path / 'missing.py'), tiny_pt, out], 'config file not found')
    fails([tiny_uncond_config, tiny_pt, out], 'does not fit this model')
    fails([tiny_cond_config, tiny_pt, str(tmp_path)], 'exists; pass --force')
    with monkeypatch.context() as patch:  # a mapping bug: the wrong time embedding
        patch.setitem(convert_module._FIXED_DIFFUSERS_SETTINGS, 'freq_shift', 1)
        fails([tiny_cond_config, tiny_pt, out], 'check failed')
    edm = _write_config(tmp_path / 'edm.py', tiny_cond_config, training_mode='edm')
    fails([edm, tiny_pt, out], "training_mode='edm'")
    # the other direction
    folder = str(tmp_path / 'pipe')
    assert run_tool('convert_checkpoint', [tiny_cond_config, tiny_pt, folder, '--no-check']) == 0
    capsys.readouterr()
    fails([tiny_uncond_config, folder, out + '.pt'], 'does not fit this model')
    # same shapes, other heads
    heads = _write_config(tmp_path / 'heads.py', tiny_cond_config, unet=dict(num_head_channels=32))
    fails([heads, folder, out + '.pt'], 'attention_head_dim=16 vs 32')
    fails([tiny_cond_config, folder, out + '.pt', '--ema', '0.999'], '--ema applies')
