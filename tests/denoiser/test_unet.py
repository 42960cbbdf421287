"""The ADM UNet against the original code: forward values, keys and shapes."""
import numpy as np
import pytest
import torch

from mmagic_cm.denoiser.unet import AttentionBlock, ConsistencyUNetModel, unet_config_from_flags
from mmagic_cm.testing import arch_keys, load_ref, reference_unet

SEEDS = {'tiny_cond': 0, 'tiny_uncond': 1, 'tiny_learn_sigma': 2}


@pytest.mark.parametrize('arch', sorted(SEEDS))
def test_forward_matches_original(arch):
    ref, _ = load_ref('unet_forward.npz')
    unet = reference_unet(arch, SEEDS[arch])
    y = ref.get(f'{arch}/y')
    with torch.no_grad():
        out = unet(torch.from_numpy(ref[f'{arch}/x']), torch.from_numpy(ref[f'{arch}/t']),
                   y=None if y is None else torch.from_numpy(y))
    expected = ref[f'{arch}/out']
    assert out.shape == expected.shape
    assert np.abs(expected).max() > 0.1  # the reference is not degenerate
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize('arch', ['imagenet64', 'lsun256', 'tiny_cond', 'tiny_uncond'])
def test_state_dict_keys_and_shapes_match_original(arch):
    """Built without allocating: the meta device."""
    info = arch_keys()[arch]
    cfg = unet_config_from_flags(info['kwargs'])
    cfg.pop('type')
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**cfg)
    ours = [(k, list(v.shape)) for k, v in unet.state_dict().items()]
    assert ours == [(k, list(s)) for k, s in info['state_dict']]
    assert sum(p.numel() for p in unet.parameters()) == info['num_params']
    assert all(p.is_meta for p in unet.parameters())


def test_released_parameter_counts():
    assert arch_keys()['imagenet64']['num_params'] == 295_899_267
    assert arch_keys()['lsun256']['num_params'] == 526_304_771


def test_flash_qkv_order_matters():
    """Reading qkv in the legacy per-head order gives another result."""
    unet = reference_unet('tiny_cond', 0)
    attn = next(m for m in unet.modules() if isinstance(m, AttentionBlock))
    x = torch.randn(1, attn.qkv.in_channels, 8, 8)
    with torch.no_grad():
        ours = attn(x)
        b, c, h, w = x.shape
        qkv = attn.qkv(attn.norm(x)).reshape(b * attn.num_heads, 3 * c // attn.num_heads, -1)
        q, k, v = qkv.chunk(3, dim=1)  # legacy (heads, 3, d) order
        a = torch.softmax(q.transpose(1, 2) @ k / (c // attn.num_heads)**0.5, -1)
        legacy = x + attn.proj_out((a @ v.transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w))
    assert not torch.allclose(ours, legacy, atol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match='use_new_attention_order'):
        ConsistencyUNetModel(image_size=16, channel_mult='1,2', use_new_attention_order=True)
    with pytest.raises(ValueError, match='channel_mult'):
        ConsistencyUNetModel(image_size=48)
    with pytest.raises(ValueError, match='num_head_channels'):
        ConsistencyUNetModel(image_size=16, model_channels=32, channel_mult='1,2',
                             attention_resolutions='8', num_head_channels=24)
    unet = ConsistencyUNetModel(image_size=16, model_channels=32, channel_mult='1,2',
                                attention_resolutions='8', num_res_blocks=1)
    with pytest.raises(ValueError, match='class-conditional'):
        unet(torch.zeros(1, 3, 16, 16), torch.zeros(1), y=torch.zeros(1, dtype=torch.long))


def test_init_weights_materialises_meta_model():
    cfg = unet_config_from_flags(arch_keys()['tiny_cond']['kwargs'])
    cfg.pop('type')
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**cfg)
    unet.init_weights()
    assert not any(p.is_meta for p in unet.parameters())
    assert torch.all(unet.out[-1].weight == 0)  # zero-initialised output conv
    assert unet.time_embed[0].weight.std() > 0
