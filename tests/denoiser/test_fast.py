"""The fast sampling paths agree with the float32 eager path.

Tolerances (images in [-1, 1]; PSNR with peak-to-peak 2):

* channels_last, float32: max abs difference <= 1e-5 (layout only);
* bf16 (trunk cast once, with or without channels_last): PSNR >= 35 dB on
  the tiny random-weight UNets and on the shipped digits model, the issue's
  bound for the ImageNet-64 model (measured: ~85 dB tiny, see README Speed);
* ``norm='fused'`` / ``'dtype'`` (opt-in GroupNorm paths, bf16): PSNR >= 35
  dB as bf16; 'fused' float32 within 1e-4 of the default (rounding only);
* torch.compile (float32): max abs difference <= 1e-4 (skipped without a
  C++ compiler; ~20 s here). The bf16 + channels_last compile, another
  ~25 s, runs only with ``MMAGIC_CM_TEST_COMPILE=1``.
"""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmagic_cm.denoiser.fast import (
    CompileError,
    InferenceUNets,
    cast_trunk_copy,
    check_compile_available,
)
from mmagic_cm.evaluation import psnr as batch_psnr
from mmagic_cm.models import ConsistencyModel
from mmagic_cm.registry import MODELS
from mmagic_cm.sampling.noise import get_generator
from mmagic_cm.testing import ROOT, reference_model, reference_unet

PSNR_MIN_DB = 35.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(batch_psnr(a.reshape(1, -1), b.reshape(1, -1)))


def draw(model: ConsistencyModel, labels, **settings) -> torch.Tensor:
    n = 4
    noise = torch.randn(n, *model.image_shape, generator=torch.Generator().manual_seed(3))
    y = None if labels is None else torch.tensor(labels)
    return model.sample_batch(n, get_generator('determ', n, 1), y, noise=noise, **settings)


@pytest.fixture(params=[('tiny_cond', 0, [3, 997, 5, 1]), ('tiny_uncond', 1, None)],
                ids=['tiny_cond', 'tiny_uncond'])
def tiny(request):
    arch, seed, labels = request.param
    return reference_model(arch, seed, boundary_condition=True), labels


def test_channels_last_fp32_matches_eager(tiny):
    model, labels = tiny
    ref = draw(model, labels, channels_last=False)
    fast = draw(model, labels, channels_last=True)
    assert 0 < (fast - ref).abs().max() <= 1e-5  # another layout: rounding differs a little
    assert torch.equal(draw(model, labels), fast)  # channels_last is the default
    assert all(v.is_contiguous() for v in model.state_dict().values())  # checkpoints: NCHW
    # back to the plain layout, in place: the same images as before
    assert torch.equal(draw(model, labels, channels_last=False), ref)
    conv = model.unet.input_blocks[0][0].weight
    assert conv.is_contiguous() and torch.equal(model.state_dict()['unet.input_blocks.0.0.weight'],
                                                conv)


@pytest.mark.parametrize('channels_last', [False, True])
def test_bf16_matches_fp32(tiny, channels_last):
    model, labels = tiny
    ref = draw(model, labels)
    fast = draw(model, labels, dtype='bf16', channels_last=channels_last)
    assert fast.dtype == torch.float32
    assert psnr(fast, ref) >= PSNR_MIN_DB
    assert not torch.equal(fast, ref)  # it did run in bf16


def test_multistep_bf16_matches_fp32():
    model = reference_model('tiny_cond', 0, boundary_condition=True)
    kw = dict(sampler='multistep', ts='0,22,39', steps=40)
    ref = draw(model, [1, 2, 3, 4], **kw)
    fast = draw(model, [1, 2, 3, 4], dtype='bf16', channels_last=True, **kw)
    assert psnr(fast, ref) >= PSNR_MIN_DB


def test_bf16_digits_model_psnr():
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'consistency_models',
                                   'consistency_models_cd_digits-onestep-16x16.py'))
    cfg.model.model_path = osp.join(ROOT, cfg.model.model_path)
    model = MODELS.build(cfg.model).eval()
    labels = list(range(10)) * 2
    gen = get_generator('determ', 20, 0)
    ref = model.sample_batch(20, gen, torch.tensor(labels))
    gen.set_done_samples(0)
    fast = model.sample_batch(20, gen, torch.tensor(labels), dtype='bf16',
                              channels_last=True)
    assert psnr(fast, ref) >= PSNR_MIN_DB


def test_trunk_copy_shares_float32_parts_and_casts_convs():
    unet = reference_unet('tiny_cond', 0)
    copy = cast_trunk_copy(unet, torch.bfloat16)
    assert copy.compute_dtype == torch.bfloat16 and unet.compute_dtype == torch.float32
    assert copy.time_embed[0].weight is unet.time_embed[0].weight
    assert copy.out[-1].weight is unet.out[-1].weight  # output conv stays float32
    assert copy.input_blocks[0][0].weight.dtype == torch.bfloat16
    norms = [m for m in copy.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    assert all(p.dtype == torch.float32 for p in unet.parameters())


def test_weights_change_rebuilds_the_copy():
    model = reference_model('tiny_cond', 0, boundary_condition=True)
    labels = [1, 2, 3, 4]
    before = draw(model, labels, dtype='bf16')
    with torch.no_grad():
        for p in model.unet.parameters():
            p.mul_(0.5)
    after = draw(model, labels, dtype='bf16')
    ref = draw(model, labels)
    assert psnr(after, ref) >= PSNR_MIN_DB
    assert psnr(before, ref) < psnr(after, ref) - 20  # the stale copy would not match


def test_autocast_for_other_unets():
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x, t):
            return self.conv(x)

    cache = InferenceUNets()
    module, autocast = cache.get(Plain(), torch.bfloat16)
    assert autocast == torch.bfloat16 and isinstance(module, Plain)


def test_settings_are_validated(tiny):
    model, _ = tiny
    assert model.settings(channels_last='on', compile='false')['channels_last'] is True
    with pytest.raises(ValueError, match='channels_last must be true or false'):
        model.settings(channels_last='maybe')
    with pytest.raises(ValueError, match='fp16 needs a CUDA device'):
        draw(model, None if model.num_classes is None else [1, 2, 3, 4], dtype='fp16')


def test_compile_without_compiler_is_a_clear_error(tiny, monkeypatch):
    from torch._inductor import cpp_builder, exc
    model, labels = tiny

    def no_compiler():
        raise exc.InvalidCxxCompiler()

    monkeypatch.setattr(cpp_builder, 'get_cpp_compiler', no_compiler)
    with pytest.raises(CompileError, match='C\\+\\+ compiler'):
        draw(model, labels, compile=True)


def _have_compiler() -> bool:
    try:
        check_compile_available('cpu')
    except CompileError:
        return False
    return True


@pytest.mark.skipif(not _have_compiler(), reason='torch.compile needs a C++ compiler')
def test_compile_matches_eager():
    """About 20 s on 1 CPU thread (the tiny UNet compiles once)."""
    model = reference_model('tiny_cond', 0, boundary_condition=True)
    labels = [3, 997, 5, 1]
    ref = draw(model, labels)
    fast = draw(model, labels, compile=True)
    assert (fast - ref).abs().max() <= 1e-4


@pytest.mark.skipif(os.environ.get('MMAGIC_CM_TEST_COMPILE') != '1',
                    reason='a second compile (bf16); set MMAGIC_CM_TEST_COMPILE=1')
def test_compile_bf16_channels_last_matches_fp32():
    model = reference_model('tiny_cond', 0, boundary_condition=True)
    labels = [3, 997, 5, 1]
    ref = draw(model, labels)
    fast = draw(model, labels, compile=True, dtype='bf16', channels_last=True)
    assert psnr(fast, ref) >= PSNR_MIN_DB

def test_bf16_defaults_to_channels_last_and_leaves_the_fp32_unet():
    model = reference_model('tiny_cond', 0, boundary_condition=True)
    before = {k: v.clone() for k, v in model.unet.state_dict().items()}
    draw(model, [1, 2, 3, 4], dtype='bf16')
    assert list(model._inference_unets._cache) == [(torch.bfloat16, True, False, 'fp32')]
    copy, autocast = model._inference_unets._cache[(torch.bfloat16, True, False, 'fp32')]
    assert autocast is None
    conv = copy.input_blocks[1][0].in_layers[-1].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    for k, v in model.unet.state_dict().items():  # float32, default layout, same values
        assert v.dtype == before[k].dtype and v.is_contiguous() and torch.equal(v, before[k])
    assert 'fast' not in str(list(model.state_dict()))  # no copies in the state dict


# ------------------------------------------------------------------ norm modes, attention
def denoised(unet, dtype=torch.float32, channels_last=True, norm='fp32', n=4, seed=3):
    """One-step D(x, 80) of ``unet`` through InferenceUNets (float32 output)."""
    from mmagic_cm.denoiser.precond import Denoiser, KarrasPrecond
    net, _ = InferenceUNets().get(unet, dtype, channels_last, False, norm)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, unet.image_size, unet.image_size, generator=gen) * 80.0
    kw = {} if unet.num_classes is None else {'y': torch.arange(n) * 37 % unet.num_classes}
    with torch.no_grad():
        return Denoiser(net, KarrasPrecond(boundary_condition=True), clip=True)(
            x, torch.full((n, ), 80.0), **kw).float()


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_group_norm_is_group_norm_in_float32(dtype, channels_last):
    from mmagic_cm.denoiser.unet import fused_group_norm
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 64, 8, 8, generator=gen) * 2 + 0.7).to(dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    w, b = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    scale, shift = torch.randn(2, 3, 64, 1, 1, generator=gen).to(dtype)
    ref = torch.nn.functional.group_norm(x.float(), 32, w, b, 1e-5)
    for out, want in ((fused_group_norm(x, 32, w, b, 1e-5), ref),
                      (fused_group_norm(x, 32, w, b, 1e-5, scale, shift),
                       ref * (1 + scale.float()) + shift.float())):
        assert out.dtype == dtype and out.shape == x.shape
        assert out.is_contiguous(memory_format=torch.channels_last if channels_last else
                                 torch.contiguous_format)  # the layout stays
        if dtype == torch.float32:
            assert (out - want).abs().max() <= 1e-5
        else:  # one rounding of the float32 result
            assert torch.allclose(out.float(), want, rtol=2 * torch.finfo(dtype).eps,
                                  atol=1e-6)


def test_fused_group_norm_as_compiled_is_the_same(monkeypatch):
    """Under torch.compile the affine is plain arithmetic (no out=): same values."""
    from mmagic_cm.denoiser import unet as unet_module
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 64, 4, 4, generator=gen).to(torch.bfloat16,
                                                   memory_format=torch.channels_last)
    w, b = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    eager = unet_module.fused_group_norm(x, 32, w, b, 1e-5)
    monkeypatch.setattr(unet_module, '_compiling', lambda: True)
    traced = unet_module.fused_group_norm(x, 32, w, b, 1e-5)
    assert traced.dtype == x.dtype and traced.is_contiguous(memory_format=torch.channels_last)
    # the same float32 arithmetic (an FMA may round the last float32 bit apart)
    assert torch.allclose(traced.float(), eager.float(), rtol=2 ** -7, atol=0)


@pytest.mark.parametrize('arch', ['tiny_cond', 'tiny_uncond'])
def test_norm_modes_psnr_and_the_trained_unet_untouched(arch):
    unet = reference_unet(arch, 0)
    ref = denoised(unet)
    fused32 = denoised(unet, norm='fused')
    assert 0 < (fused32 - ref).abs().max() <= 1e-4  # float32 rounding only
    exact = denoised(unet, torch.bfloat16)
    for norm in ('fused', 'dtype'):
        fast = denoised(unet, torch.bfloat16, norm=norm)
        assert psnr(fast, ref) >= PSNR_MIN_DB and not torch.equal(fast, exact)
    # the fused path rounds once where the original rounds three times
    assert psnr(denoised(unet, torch.bfloat16, norm='fused'), ref) >= psnr(exact, ref) - 1.0
    assert {m.mode for m in unet.modules() if hasattr(m, 'mode')} == {'fp32'}
    assert all(p.dtype == torch.float32 for p in unet.parameters())
    copy = cast_trunk_copy(unet, torch.bfloat16, True, 'dtype')
    norms = [m for m in copy.output_blocks.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and all(m.weight.dtype == torch.bfloat16 and m.mode == 'dtype' for m in norms)
    assert copy.out[0].weight.dtype == torch.float32 and copy.out[0].mode == 'fp32'


def test_norm_is_validated():
    unet = reference_unet('tiny_cond', 0)
    with pytest.raises(ValueError, match="norm='half': choose from fp32, fused, dtype"):
        InferenceUNets().get(unet, torch.bfloat16, norm='half')

    class Plain(torch.nn.Module):
        def forward(self, x, t):
            return x

    with pytest.raises(ValueError, match='needs the ADM UNet'):
        InferenceUNets().get(Plain(), torch.bfloat16, norm='fused')


@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_attention_hands_nhwc_to_the_nhwc_projection(dtype):
    """channels_last: the attention output goes to proj_out as an NHWC view (the
    same numbers as the original's NCHW reshape, which the convolution copied)."""
    from mmagic_cm.denoiser.unet import AttentionBlock
    torch.manual_seed(0)
    block = AttentionBlock(64, num_head_channels=32).eval()
    torch.nn.init.normal_(block.proj_out.weight)
    for conv in (block.qkv, block.proj_out):  # the trunk's convolutions (norms: float32)
        conv.to(dtype, memory_format=torch.channels_last)
    x = torch.randn(2, 64, 8, 8, dtype=dtype).to(memory_format=torch.channels_last)
    seen = {}
    block.proj_out.register_forward_pre_hook(lambda m, args: seen.update(h=args[0]))
    with torch.no_grad():
        out = block(x)
        b, c, height, width = x.shape
        qkv = block.qkv(block.norm(x)).reshape(b, 3, block.num_heads, c // block.num_heads, -1)
        q, k, v = qkv.permute(1, 0, 2, 4, 3).unbind(0)
        h = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        old = x + block.proj_out(h.transpose(-1, -2).reshape(b, c, height, width))
    assert seen['h'].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, old)


def test_nchw_copy_after_an_nhwc_float32_call_is_nchw():
    unet = reference_unet('tiny_cond', 0)
    nets = InferenceUNets()
    nets.get(unet, torch.float32, channels_last=True)  # converts the float32 UNet in place
    copy, _ = nets.get(unet, torch.bfloat16, channels_last=False)
    conv = copy.input_blocks[1][0].in_layers[-1].weight
    assert conv.dtype == torch.bfloat16 and conv.is_contiguous()

