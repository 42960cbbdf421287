"""Diffusers folders read back by diffusers itself (0.24's own loaders): the
scheduler of the CT configs samples on their grids, and folders with the old
attention names load into the same network in diffusers and here."""
import json
import os.path as osp

import pytest
import torch

from mmagic_cm.conversion.checkpoint_files import our_unet
from mmagic_cm.conversion.diffusers_unet import (
    load_diffusers_folder,
    output_difference,
    unet_state_dict_to_diffusers,
)
from mmagic_cm.denoiser.sigmas import ts_to_sigmas
from mmagic_cm.denoiser.unet import unet_config_from_flags
from mmagic_cm.testing import ROOT, arch_keys, reference_weights, run_tool

diffusers = pytest.importorskip('diffusers')

CONFIGS = osp.join(ROOT, 'configs', 'consistency_models')


def tiny_cfg(arch):
    return unet_config_from_flags(arch_keys()[arch]['kwargs'])


@pytest.mark.parametrize('config,arch,steps,ts', [
    ('consistency_models_ct_imagenet1k-64x64.py', 'tiny_cond', 201, (0, 106, 200)),
    ('consistency_models_ct_LSUN-bedroom-256x256.py', 'tiny_uncond', 151, (0, 67, 150)),
])
def test_ct_scheduler_samples_on_the_configs_grid(config, arch, steps, ts, tmp_path, capsys):
    """tools/convert_checkpoint.py with the CT config (a tiny UNet in place of
    the released one): diffusers' CMStochasticIterativeScheduler, loaded from
    the folder, has the config's grid size and, given the paper's two-step
    timesteps, walks the same noise levels as the config's multistep sampler."""
    cfg_path = tmp_path / 'ct_tiny.py'
    unet = dict(tiny_cfg(arch), _delete_=True)
    cfg_path.write_text(f'_base_ = [{osp.join(CONFIGS, config)!r}]\n'
                        f'model = dict(unet={unet!r})\n')
    weights = tmp_path / 'tiny.pt'
    torch.save(reference_weights(arch, 0), weights)
    folder = tmp_path / 'pipe'
    assert run_tool('convert_checkpoint', [str(cfg_path), str(weights), str(folder)]) == 0
    capsys.readouterr()
    with open(folder / 'scheduler' / 'scheduler_config.json') as f:
        assert json.load(f)['num_train_timesteps'] == steps
    scheduler = diffusers.CMStochasticIterativeScheduler.from_pretrained(
        str(folder), subfolder='scheduler')
    assert scheduler.config.num_train_timesteps == steps
    # diffusers counts timesteps from the clean end: ts (0, i, N-1) is [i, 0]
    scheduler.set_timesteps(timesteps=[ts[1], 0])
    ours = ts_to_sigmas(ts, steps)
    torch.testing.assert_close(scheduler.sigmas.double(), ours, rtol=1e-6, atol=1e-6)


def test_old_attention_names_load_as_diffusers_loads_them(tmp_path):
    """A folder written by an old diffusers (attention query/key/value/proj_attn,
    4-D 1x1 weights): diffusers' own UNet2DModel.from_pretrained converts the
    names itself; our reading of the same folder gives our UNet the same outputs."""
    from mmagic_cm.conversion.diffusers_unet import diffusers_unet_config
    cfg = tiny_cfg('tiny_cond')
    state = reference_weights('tiny_cond', 0)
    new = unet_state_dict_to_diffusers(state, cfg)
    old = {}
    for key, value in new.items():
        for now, before in (('to_q', 'query'), ('to_k', 'key'), ('to_v', 'value'),
                            ('to_out.0', 'proj_attn')):
            if '.attentions.' in key and f'.{now}.' in key:
                key = key.replace(f'.{now}.', f'.{before}.')
        old[key] = value.clone()
    assert any('.query.' in k for k in old) and any('.proj_attn.' in k for k in old)
    unet_dir = tmp_path / 'unet'
    unet_dir.mkdir()
    torch.save(old, unet_dir / 'diffusion_pytorch_model.bin')
    config = dict(diffusers_unet_config(cfg), _class_name='UNet2DModel')
    (unet_dir / 'config.json').write_text(json.dumps(config))
    theirs = diffusers.UNet2DModel.from_pretrained(str(unet_dir)).eval()
    loaded, loaded_cfg = load_diffusers_folder(str(tmp_path))
    ours = our_unet(loaded_cfg, loaded)
    diff, scale = output_difference(ours, theirs, cfg)
    assert scale > 0.05 and diff <= 1e-5, (diff, scale)
