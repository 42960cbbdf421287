r"""Regenerate the numerical reference fixtures used by the parity tests.

This script runs the *original* OpenAI consistency-models code (PyTorch) and
records what it computes, so that the ``mmagic_cm`` reimplementation can be
checked against it without the original code being present at test time.
Nothing of the original repository is committed here: check it out separately
(https://github.com/openai/consistency_models) and point ``--cm-repo`` at it::

    PYTHONPATH=. python tools/reference/make_fixtures.py --cm-repo CM_REPO \
        --out tests/fixtures/reference

The original package imports a few dependencies that are unavailable or not
wanted on a CPU-only machine. Small stand-ins are registered in
``sys.modules`` before it is imported:

* ``flash_attn.flash_attention.FlashAttention``: plain float32 softmax
  attention with scale ``1/sqrt(head_dim)`` on ``(batch, seq, 3, heads, dim)``
  input, returning ``(batch, seq, heads, dim)``;
* ``mpi4py`` (``MPI``) and ``blobfile``: only imported by ``cm.dist_util``,
  never used because no distributed setup or checkpoint loading happens;
* ``piq.LPIPS``: raises if instantiated; no ``KarrasDenoiser`` here is built
  with ``loss_norm="lpips"`` (the only norm that instantiates it).

Every model is built with ``cm.script_util.create_model`` and its weights are
replaced by :func:`mmagic_cm.testing.seeded_state_dict` (loaded strictly), so
the tests can rebuild identical weights from a seed. All computations run in
float32 on the CPU.

Outputs (all under ``--out``): ``unet_forward.npz``, ``denoiser.npz``,
``generators.npz``, ``samplers.npz``, ``released_arch_samples.npz``,
``training_losses.npz``, ``editing.npz``, ``arch_keys.json`` and
``meta.json``. Every npz also holds its metadata as a JSON string under the
key ``meta``; ``meta.json`` collects all of them. ``--skip-released`` skips
``released_arch_samples.npz``; ``--only-training`` writes
``training_losses.npz`` alone and ``--only-editing`` ``editing.npz`` alone;
either keeps the entries of the files not rewritten in ``meta.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import time
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mmagic_cm.testing.reference import DENOISER_KWARGS, Reference  # noqa: F401

SEED = 42
LABELS = [3, 997]

TINY_ARCHS: Dict[str, Dict[str, Any]] = {
    'tiny_cond':
    dict(
        image_size=16,
        num_channels=32,
        num_res_blocks=1,
        channel_mult='1,2',
        attention_resolutions='8',
        num_heads=4,
        num_head_channels=16,
        num_heads_upsample=-1,
        class_cond=True,
        use_scale_shift_norm=True,
        resblock_updown=True,
        learn_sigma=False,
        dropout=0.0,
        use_checkpoint=False,
        use_fp16=False,
        use_new_attention_order=False,
    ),
}
TINY_ARCHS['tiny_uncond'] = dict(
    TINY_ARCHS['tiny_cond'],
    class_cond=False,
    use_scale_shift_norm=False,
    resblock_updown=False,
    num_head_channels=-1,
    num_heads=2,
)
TINY_ARCHS['tiny_learn_sigma'] = dict(TINY_ARCHS['tiny_uncond'], learn_sigma=True)
TINY_SEEDS = {'tiny_cond': 0, 'tiny_uncond': 1, 'tiny_learn_sigma': 2}

RELEASED_ARCHS: Dict[str, Dict[str, Any]] = {
    'imagenet64':
    dict(
        image_size=64,
        num_channels=192,
        num_res_blocks=3,
        channel_mult='',
        attention_resolutions='32,16,8',
        num_heads=4,
        num_head_channels=64,
        num_heads_upsample=-1,
        class_cond=True,
        use_scale_shift_norm=True,
        resblock_updown=True,
        learn_sigma=False,
        dropout=0.0,
        use_checkpoint=False,
        use_fp16=False,
        use_new_attention_order=False,
    ),
    'lsun256':
    dict(
        image_size=256,
        num_channels=256,
        num_res_blocks=2,
        channel_mult='',
        attention_resolutions='32,16,8',
        num_heads=4,
        num_head_channels=64,
        num_heads_upsample=-1,
        class_cond=False,
        use_scale_shift_norm=False,
        resblock_updown=True,
        learn_sigma=False,
        dropout=0.0,
        use_checkpoint=False,
        use_fp16=False,
        use_new_attention_order=False,
    ),
}
RELEASED_SEEDS = {'imagenet64': 0, 'lsun256': 1}

def f32(tensor: torch.Tensor) -> np.ndarray:
    """Detach a tensor to a float32 numpy array."""
    return tensor.detach().cpu().float().numpy()


def to_uint8_nhwc(x0: torch.Tensor) -> np.ndarray:
    """Quantise samples in [-1, 1] the way ``scripts/image_sample.py`` does."""
    img = ((x0 + 1) * 127.5).clamp(0, 255).to(torch.uint8)
    return img.permute(0, 2, 3, 1).contiguous().numpy()


def save_npz(path: Path, arrays: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    """Save arrays compressed, with ``meta`` as a JSON string under ``meta``."""
    arrays = dict(arrays)
    arrays['meta'] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(path, **arrays)
    print(f'wrote {path} ({path.stat().st_size / 1024:.1f} KiB)', flush=True)


def randn_seeded(shape, seed: int) -> torch.Tensor:
    """``torch.randn`` from a fresh CPU generator seeded with ``seed``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def make_generator(ref: Reference, name: str, num_samples: int, seed: int):
    """Return the original generator; for ``dummy`` seed the global RNG first."""
    if name == 'dummy':
        torch.manual_seed(seed)
    # The original prints a "Distributed not initialised" warning per generator.
    with contextlib.redirect_stdout(io.StringIO()):
        return ref.get_generator(name, num_samples, seed)


# --------------------------------------------------------------------------
# Fixture groups.
# --------------------------------------------------------------------------
def make_unet_forward(ref: Reference, out: Path) -> Dict[str, Any]:
    """Forward pass of the three tiny archs on seeded input."""
    arrays: Dict[str, np.ndarray] = {}
    meta: Dict[str, Any] = {
        'archs': TINY_ARCHS,
        'weight_seeds': TINY_SEEDS,
        'x': 'torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(123))',
        't': 'float32 [250 * ln(80), 250 * ln(0.5)]',
        'y': f'{LABELS} (int64) for class_cond archs, else None',
    }
    x = randn_seeded((2, 3, 16, 16), 123)
    t = torch.tensor([250 * math.log(80.0), 250 * math.log(0.5)], dtype=torch.float32)
    for name, arch in TINY_ARCHS.items():
        model = ref.build(arch, TINY_SEEDS[name])
        y = torch.tensor(LABELS) if arch['class_cond'] else None
        with torch.no_grad():
            result = model(x, t, y=y)
        arrays[f'{name}/x'] = f32(x)
        arrays[f'{name}/t'] = f32(t)
        if y is not None:
            arrays[f'{name}/y'] = y.numpy()
        arrays[f'{name}/out'] = f32(result)
    save_npz(out / 'unet_forward.npz', arrays, meta)
    return meta


def make_denoiser(ref: Reference, out: Path) -> Dict[str, Any]:
    """Scalings, Karras schedules and ``denoise`` outputs."""
    arrays: Dict[str, np.ndarray] = {}
    sigmas = torch.tensor([0.002, 0.01, 0.1, 0.5, 1.0, 5.0, 20.0, 80.0], dtype=torch.float32)
    arrays['sigmas'] = f32(sigmas)
    diffusion = ref.diffusion(distillation=True)
    for fn_name in ('get_scalings', 'get_scalings_for_boundary_condition'):
        c_skip, c_out, c_in = getattr(diffusion, fn_name)(sigmas)
        arrays[f'{fn_name}/c_skip'] = f32(c_skip)
        arrays[f'{fn_name}/c_out'] = f32(c_out)
        arrays[f'{fn_name}/c_in'] = f32(c_in)

    schedules = {
        'karras_n1': (1, 0.002, 80.0),
        'karras_n2': (2, 0.002, 80.0),
        'karras_n40': (40, 0.002, 80.0),
        'karras_n201': (201, 0.002, 80.0),
        'karras_n10_min0.01_max50': (10, 0.01, 50.0),
    }
    for key, (n, smin, smax) in schedules.items():
        arrays[f'sigmas_karras/{key}'] = f32(ref.get_sigmas_karras(n, smin, smax, 7.0))

    model = ref.build(TINY_ARCHS['tiny_cond'], TINY_SEEDS['tiny_cond'])
    x_t = randn_seeded((2, 3, 16, 16), 7) * 10
    den_sigmas = torch.tensor([80.0, 0.7], dtype=torch.float32)
    y = torch.tensor(LABELS)
    arrays['denoise/x_t'] = f32(x_t)
    arrays['denoise/sigmas'] = f32(den_sigmas)
    arrays['denoise/y'] = y.numpy()
    for distillation in (False, True):
        tag = f'distill{int(distillation)}'
        with torch.no_grad():
            model_output, denoised = ref.diffusion(distillation).denoise(
                model, x_t, den_sigmas, y=y)
        arrays[f'denoise/{tag}/model_output'] = f32(model_output)
        arrays[f'denoise/{tag}/denoised'] = f32(denoised)

    meta = {
        'denoiser_kwargs': DENOISER_KWARGS,
        'scalings': 'get_scalings/* and get_scalings_for_boundary_condition/* of `sigmas` '
        '(they do not depend on distillation)',
        'sigmas_karras': {k: dict(n=v[0], sigma_min=v[1], sigma_max=v[2], rho=7.0)
                          for k, v in schedules.items()},
        'denoise': {
            'arch': 'tiny_cond',
            'weight_seed': TINY_SEEDS['tiny_cond'],
            'x_t': 'torch.randn(2, 3, 16, 16, generator=Generator().manual_seed(7)) * 10',
            'sigmas': [80.0, 0.7],
            'y': LABELS,
            'tags': {'distill0': 'distillation=False', 'distill1': 'distillation=True'},
        },
    }
    save_npz(out / 'denoiser.npz', arrays, meta)
    return meta


def make_generators(ref: Reference, out: Path) -> Dict[str, Any]:
    """Draw sequences from the three original generator kinds."""
    arrays: Dict[str, np.ndarray] = {}
    for name in ('dummy', 'determ', 'determ-indiv'):
        gen = make_generator(ref, name, 4, 5)
        arrays[f'{name}/randn_0'] = f32(gen.randn(2, 3, 4, 4))
        arrays[f'{name}/randn_1'] = f32(gen.randn(2, 3, 4, 4))
        arrays[f'{name}/randint'] = gen.randint(0, 10, (2, )).numpy()
        arrays[f'{name}/randn_like'] = f32(gen.randn_like(torch.zeros(2, 3, 4, 4)))
    for name in ('determ', 'determ-indiv'):
        gen = make_generator(ref, name, 4, 5)
        gen.set_done_samples(2)
        arrays[f'{name}/done2_randn'] = f32(gen.randn(2, 3, 4, 4))
    gen = make_generator(ref, 'determ-indiv', 3, 42)
    arrays['determ-indiv_n3_s42/randn'] = f32(gen.randn(3, 3, 2, 2))
    meta = {
        'sequence': ('NAME/randn_0 = g.randn(2,3,4,4); NAME/randn_1 = g.randn(2,3,4,4); '
                     'NAME/randint = g.randint(0,10,(2,)); '
                     'NAME/randn_like = g.randn_like(zeros(2,3,4,4)); in this order on one '
                     'generator get_generator(NAME, num_samples=4, seed=5); for dummy '
                     'torch.manual_seed(5) is called first'),
        'done2': ('NAME/done2_randn: fresh get_generator(NAME, 4, 5), set_done_samples(2), '
                  'then randn(2,3,4,4)'),
        'determ-indiv_n3_s42/randn': "get_generator('determ-indiv', 3, 42).randn(3,3,2,2)",
    }
    save_npz(out / 'generators.npz', arrays, meta)
    return meta


def sample_case(ref: Reference, model: nn.Module, image_size: int, batch: int,
                labels: Optional[list], distillation: bool, sampler: str, steps: int,
                generator: str, seed: int = SEED, num_samples: Optional[int] = None,
                ts: Optional[tuple] = None, **churn) -> tuple:
    """Run the original ``karras_sample`` once; return (x0, uint8 NHWC, kwargs)."""
    num_samples = batch if num_samples is None else num_samples
    model_kwargs = {} if labels is None else {'y': torch.tensor(labels)}
    gen = make_generator(ref, generator, num_samples, seed)
    kwargs = dict(steps=steps, clip_denoised=True, sampler=sampler, sigma_min=0.002,
                  sigma_max=80.0, ts=ts, **churn)
    with torch.no_grad():
        x0 = ref.karras_sample(
            ref.diffusion(distillation), model, shape=(batch, 3, image_size, image_size),
            model_kwargs=model_kwargs, device='cpu', generator=gen, **kwargs)
    record = dict(kwargs, shape=[batch, 3, image_size, image_size], labels=labels,
                  distillation=distillation, generator=generator, generator_seed=seed,
                  num_samples=num_samples, ts=None if ts is None else list(ts))
    return x0, to_uint8_nhwc(x0), record


def make_samplers(ref: Reference, out: Path) -> Dict[str, Any]:
    """All samplers of ``karras_sample`` on the tiny archs."""
    models = {name: ref.build(TINY_ARCHS[name], TINY_SEEDS[name])
              for name in ('tiny_cond', 'tiny_uncond')}
    labels = {'tiny_cond': LABELS, 'tiny_uncond': None}
    churn = dict(s_churn=3.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)
    cases: Dict[str, Dict[str, Any]] = {}
    for arch in ('tiny_cond', 'tiny_uncond'):
        for gen in ('dummy', 'determ', 'determ-indiv'):
            cases[f'{arch}/onestep/{gen}'] = dict(
                arch=arch, distillation=True, sampler='onestep', steps=40, generator=gen)
    for ts, steps in (((0, 22, 39), 40), ((0, 106, 200), 201), ((0, 5, 9), 10)):
        for gen in ('determ', 'determ-indiv'):
            name = f'tiny_cond/multistep_{"-".join(map(str, ts))}_steps{steps}/{gen}'
            cases[name] = dict(arch='tiny_cond', distillation=True, sampler='multistep',
                               steps=steps, ts=ts, generator=gen)
    edm = dict(arch='tiny_cond', distillation=False, steps=6, generator='determ')
    cases['tiny_cond/heun/determ'] = dict(edm, sampler='heun', s_churn=0.0)
    cases['tiny_cond/heun_churn3/determ'] = dict(edm, sampler='heun', **churn)
    cases['tiny_cond/heun_churn0.6/determ'] = dict(edm, sampler='heun', s_churn=0.6)
    cases['tiny_cond/euler/determ'] = dict(edm, sampler='euler')
    cases['tiny_cond/ancestral/determ'] = dict(edm, sampler='ancestral')
    cases['tiny_cond/dpm/determ'] = dict(edm, sampler='dpm', s_churn=0.0)
    cases['tiny_cond/dpm_churn3/determ'] = dict(edm, sampler='dpm', s_churn=3.0)
    cases['tiny_cond/progdist/determ'] = dict(edm, sampler='progdist')
    uncond = dict(edm, arch='tiny_uncond', generator='determ-indiv')
    cases['tiny_uncond/heun/determ-indiv'] = dict(uncond, sampler='heun', s_churn=0.0)
    cases['tiny_uncond/ancestral/determ-indiv'] = dict(uncond, sampler='ancestral')

    arrays: Dict[str, np.ndarray] = {}
    records: Dict[str, Any] = {}
    for name, case in cases.items():
        case = dict(case)
        arch = case.pop('arch')
        x0, img, record = sample_case(ref, models[arch], 16, 2, labels[arch], **case)
        arrays[f'{name}/x0'] = f32(x0)
        arrays[f'{name}/img'] = img
        records[name] = dict(record, arch=arch, weight_seed=TINY_SEEDS[arch])
    meta = {
        'archs': {k: TINY_ARCHS[k] for k in models},
        'cases': records,
        'keys': 'CASE/x0 float32 NCHW karras_sample output; CASE/img uint8 NHWC as '
        'scripts/image_sample.py computes it',
        'unlisted_kwargs': 'karras_sample defaults: rho=7.0, s_churn=0, s_tmin=0, '
        's_tmax=inf, s_noise=1 unless given in the case',
    }
    save_npz(out / 'samplers.npz', arrays, meta)
    return meta


#: colorization and super-resolution run at 64 px; inpainting at 256 px,
#: where the original's mask (the letter S drawn at (50, 0) in a 250 pt font)
#: lies inside the image; five levels put the middle block's attention at
#: 16 x 16, which keeps that run cheap.
EDIT_ARCHS = {
    64: dict(TINY_ARCHS['tiny_cond'], image_size=64, attention_resolutions='32'),
    256: dict(TINY_ARCHS['tiny_cond'], image_size=256, num_channels=32,
              channel_mult='1,1,1,2,2', attention_resolutions='16'),
}
EDIT_SEED = 5
EDIT_CROP = slice(96, 160)


@contextlib.contextmanager
def fallback_font():
    """Let ``ImageFont.truetype('arial.ttf', size)`` fall back to PIL's bundled
    font when Arial is not installed (the original's inpainting mask is the
    letter S drawn with it; the fixture records the mask actually used)."""
    from PIL import ImageFont
    truetype = ImageFont.truetype

    def truetype_or_default(font=None, size=10, *args, **kwargs):
        try:
            return truetype(font, size, *args, **kwargs)
        except OSError:
            return ImageFont.load_default(size=size)

    ImageFont.truetype = truetype_or_default
    try:
        yield
    finally:
        ImageFont.truetype = truetype


def edit_images(coarse: torch.Tensor, size: int) -> torch.Tensor:
    """Smooth test images in [-0.95, 0.95] (never the inpainting fill, -1)."""
    images = torch.nn.functional.interpolate(coarse, size=size, mode='bilinear',
                                             align_corners=False)
    return images.mul(0.5).clamp(-0.95, 0.95)


def make_editing(ref: Reference, out: Path) -> Dict[str, Any]:
    """The original's iterative_inpainting/colorization/superres on tiny models.

    Inpainting's batch must be a multiple of 7 (its mask alternates every 7
    images between keeping the letter S and keeping the rest); 14 images
    cover both. The mask is recovered from the returned masked images: the
    inputs avoid -1, the fill value.
    """
    batch = 14
    models = {size: ref.build(arch, EDIT_SEED) for size, arch in EDIT_ARCHS.items()}
    diffusion = ref.diffusion(distillation=True)
    labels = torch.arange(batch) % 10
    coarse = randn_seeded((batch, 3, 8, 8), 7)
    cases = {
        'inpaint/determ-indiv': dict(task='inpaint', size=256, ts=(0, 12, 24, 39),
                                     generator='determ-indiv'),
        'colorize/determ-indiv': dict(task='colorize', size=64, ts=(0, 12, 24, 39),
                                      generator='determ-indiv'),
        'superres/determ-indiv': dict(task='superres', size=64, ts=(0, 12, 24, 39),
                                      generator='determ-indiv'),
    }
    # images do not interact in a batch: a few rows (both mask polarities for
    # inpainting) are enough to compare and keep the file small
    rows = [0, 7]
    arrays: Dict[str, np.ndarray] = {'coarse': f32(coarse), 'labels': labels.numpy()}
    records: Dict[str, Any] = {}
    for name, case in cases.items():
        size, model = case['size'], models[case['size']]

        def distiller(x, t, model=model):
            return diffusion.denoise(model, x, t, y=labels)[1]

        gen = make_generator(ref, case['generator'], batch, SEED)
        x = gen.randn(batch, 3, size, size) * 80.0
        with torch.no_grad(), fallback_font():
            edited, observed = ref.editing[case['task']](
                distiller, edit_images(coarse, size), x, list(case['ts']), steps=40,
                generator=gen)
        if size == 256:
            # 256 px results in full would be megabytes: keep 4x4 means of the
            # whole image and one full-resolution crop across the mask's edge
            mask = (observed != -1).all(dim=1)
            arrays[f'{name}/mask'] = np.packbits(mask.numpy(), axis=-1)
            arrays[f'{name}/edited_pool4'] = f32(F.avg_pool2d(edited[rows], 4))
            arrays[f'{name}/edited_crop'] = f32(edited[rows][..., EDIT_CROP, EDIT_CROP])
        else:
            arrays[f'{name}/edited'] = f32(edited[rows])
            arrays[f'{name}/observed'] = f32(observed[rows])
        records[name] = dict(case, ts=list(case['ts']), steps=40, generator_seed=SEED,
                             num_samples=batch, rows=rows)
    meta = {
        'archs': {str(k): v for k, v in EDIT_ARCHS.items()}, 'weight_seed': EDIT_SEED,
        'cases': records,
        'images': 'edit_images(coarse, size): bilinear upsampling of coarse = randn(14, 3, '
        '8, 8) (CPU generator seeded 7), times 0.5, clamped to [-0.95, 0.95]; labels '
        'arange(14) % 10',
        'distiller': 'KarrasDenoiser(distillation=True).denoise(model, x, t, y=labels)[1]',
        'keys': 'CASE/edited, CASE/observed: rows (cases[CASE].rows) of the two tensors the '
        'function returns for x = generator.randn(14, 3, size, size) * 80; at 256 px '
        'CASE/edited_pool4 (avg_pool2d(edited, 4)) and CASE/edited_crop (edited[..., '
        '96:160, 96:160]) instead, and CASE/mask: np.packbits over the last axis of the '
        '(14, 256, 256) kept-pixel mask',
        'font': 'arial.ttf if installed, else PIL.ImageFont.load_default(size=250)',
    }
    save_npz(out / 'editing.npz', arrays, meta)
    return meta


def state_dict_shapes(ref: Reference, arch: Dict[str, Any]) -> Dict[str, Any]:
    """Names, shapes and parameter count of the original UNet built on ``meta``."""
    with torch.device('meta'):
        model = ref.create_model(**arch)
    entries = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    return {
        'kwargs': arch,
        'state_dict': entries,
        'num_state_dict_entries': len(entries),
        'num_params': sum(p.numel() for p in model.parameters()),
        'num_state_dict_elements': sum(math.prod(s) for _, s in entries),
    }


def make_arch_keys(ref: Reference, out: Path) -> Dict[str, Any]:
    """State-dict layout of the released and the tiny architectures."""
    archs = dict(RELEASED_ARCHS, **TINY_ARCHS)
    result = {name: state_dict_shapes(ref, arch) for name, arch in archs.items()}
    path = out / 'arch_keys.json'
    path.write_text(json.dumps(result, indent=1) + '\n')
    print(f'wrote {path} ({path.stat().st_size / 1024:.1f} KiB)', flush=True)
    return {name: {k: v for k, v in item.items() if k != 'state_dict'}
            for name, item in result.items()}


def make_released(ref: Reference, out: Path) -> Dict[str, Any]:
    """Sample the full released architectures with seeded weights."""
    arrays: Dict[str, np.ndarray] = {}
    records: Dict[str, Any] = {}
    in64 = [
        ('imagenet64/onestep', dict(sampler='onestep', steps=40)),
        ('imagenet64/multistep_0-22-39_steps40', dict(sampler='multistep', steps=40,
                                                      ts=(0, 22, 39))),
        ('imagenet64/multistep_0-106-200_steps201', dict(sampler='multistep', steps=201,
                                                         ts=(0, 106, 200))),
    ]
    model = ref.build(RELEASED_ARCHS['imagenet64'], RELEASED_SEEDS['imagenet64'])
    for name, case in in64:
        start = time.time()
        x0, img, record = sample_case(ref, model, 64, 2, [145, 1], distillation=True,
                                      generator='determ', **case)
        arrays[f'{name}/x0'] = f32(x0)
        arrays[f'{name}/img'] = img
        records[name] = dict(record, arch='imagenet64',
                             weight_seed=RELEASED_SEEDS['imagenet64'])
        print(f'{name}: {time.time() - start:.1f}s', flush=True)
    del model
    gc.collect()

    model = ref.build(RELEASED_ARCHS['lsun256'], RELEASED_SEEDS['lsun256'])
    start = time.time()
    name = 'lsun256/onestep'
    _, img, record = sample_case(ref, model, 256, 1, None, distillation=True,
                                 generator='determ-indiv', sampler='onestep', steps=40)
    arrays[f'{name}/img'] = img
    records[name] = dict(record, arch='lsun256', weight_seed=RELEASED_SEEDS['lsun256'])
    print(f'{name}: {time.time() - start:.1f}s', flush=True)
    del model
    gc.collect()

    meta = {
        'archs': RELEASED_ARCHS,
        'cases': records,
        'keys': 'CASE/img uint8 NHWC (all cases); CASE/x0 float32 NCHW (imagenet64 only)',
        'note': 'float32 on CPU with the stand-in float32 attention (the released '
        'checkpoints were sampled with use_fp16=True and flash attention)',
    }
    save_npz(out / 'released_arch_samples.npz', arrays, meta)
    return meta


TRAIN_SIGMAS = dict(sigma_data=0.5, sigma_min=0.002, sigma_max=80.0, rho=7.0)
TRAIN_SEEDS = dict(model=0, target=5, teacher=7, x_start=11, noise=12, indices=21)
SCHEDULE_STEPS = [0, 1, 10, 100, 1000, 5000, 9999, 10000]
SCHEDULES: Dict[str, Dict[str, Any]] = {
    'fixed_fixed':
    dict(target_ema_mode='fixed', start_ema=0.95, scale_mode='fixed', start_scales=40,
         end_scales=40, total_steps=600000, distill_steps_per_iter=50000),
    'fixed_progressive':
    dict(target_ema_mode='fixed', start_ema=0.95, scale_mode='progressive', start_scales=2,
         end_scales=200, total_steps=10000, distill_steps_per_iter=50000),
    'adaptive_progressive':
    dict(target_ema_mode='adaptive', start_ema=0.95, scale_mode='progressive',
         start_scales=2, end_scales=150, total_steps=10000, distill_steps_per_iter=50000),
}


def make_training_losses(ref: Reference, out: Path) -> Dict[str, Any]:
    """Consistency (CT/CD) and EDM training losses, and the EMA/scales schedules."""
    arch = TINY_ARCHS['tiny_cond']
    model = ref.build(arch, TRAIN_SEEDS['model']).train()
    target = ref.build(arch, TRAIN_SEEDS['target']).train()
    teacher = ref.build(arch, TRAIN_SEEDS['teacher']).eval()
    for module in (target, teacher):
        module.requires_grad_(False)
    y = torch.tensor(LABELS)
    x_start = randn_seeded((2, 3, 16, 16), TRAIN_SEEDS['x_start']).clamp(-1, 1)
    noise = randn_seeded((2, 3, 16, 16), TRAIN_SEEDS['noise'])
    arrays: Dict[str, np.ndarray] = {
        'x_start': f32(x_start), 'noise': f32(noise), 'labels': y.numpy()}

    teacher_kwargs = dict(TRAIN_SIGMAS, distillation=False, weight_schedule='karras',
                          loss_norm='l2')
    cases: Dict[str, Dict[str, Any]] = {}
    for norm in ('l1', 'l2', 'l2-32'):
        cases[f'ct/{norm}'] = dict(num_scales=11, weight_schedule='uniform', loss_norm=norm,
                                   teacher=False)
    for norm in ('l1', 'l2', 'l2-32'):
        cases[f'cd/{norm}'] = dict(num_scales=18, weight_schedule='uniform', loss_norm=norm,
                                   teacher=True)
    cases['cd_karras/l2'] = dict(num_scales=18, weight_schedule='karras', loss_norm='l2',
                                 teacher=True)

    records: Dict[str, Any] = {}
    seed = TRAIN_SEEDS['indices']
    for name, case in cases.items():
        diffusion = ref.KarrasDenoiser(
            distillation=True, weight_schedule=case['weight_schedule'],
            loss_norm=case['loss_norm'], **TRAIN_SIGMAS)
        extra = {}
        if case['teacher']:
            extra = dict(teacher_model=teacher,
                         teacher_diffusion=ref.KarrasDenoiser(**teacher_kwargs))
        num_scales = case['num_scales']
        torch.manual_seed(seed)
        indices = torch.randint(0, num_scales - 1, (2, ))
        arrays[f'indices/num_scales{num_scales}'] = indices.numpy()
        torch.manual_seed(seed)
        terms = diffusion.consistency_losses(
            model, x_start, num_scales, model_kwargs={'y': y}, target_model=target,
            noise=noise, **extra)
        arrays[f'{name}/loss'] = f32(terms['loss'])
        records[name] = dict(
            case, distillation=True, **TRAIN_SIGMAS,
            indices_key=f'indices/num_scales{num_scales}',
            target_weight_seed=TRAIN_SEEDS['target'],
            teacher_weight_seed=TRAIN_SEEDS['teacher'] if case['teacher'] else None,
            teacher_diffusion=teacher_kwargs if case['teacher'] else None)

    edm_sigmas = torch.tensor([0.3, 7.0], dtype=torch.float32)
    edm_kwargs = dict(TRAIN_SIGMAS, distillation=False, weight_schedule='karras',
                      loss_norm='l2')
    terms = ref.KarrasDenoiser(**edm_kwargs).training_losses(
        model, x_start, edm_sigmas, model_kwargs={'y': y}, noise=noise)
    arrays['edm/sigmas'] = f32(edm_sigmas)
    arrays['edm/loss'] = f32(terms['loss'])

    arrays['schedule/steps'] = np.array(SCHEDULE_STEPS, dtype=np.int64)
    for name, kwargs in SCHEDULES.items():
        fn = ref.create_ema_and_scales_fn(**kwargs)
        pairs = [fn(step) for step in SCHEDULE_STEPS]
        arrays[f'schedule/{name}/ema'] = np.array([p[0] for p in pairs], dtype=np.float64)
        arrays[f'schedule/{name}/scales'] = np.array([p[1] for p in pairs], dtype=np.int64)

    meta = {
        'arch': 'tiny_cond',
        'arch_kwargs': arch,
        'model': f'tiny_cond weight_seed {TRAIN_SEEDS["model"]}, train mode (dropout 0)',
        'target_model': f'tiny_cond weight_seed {TRAIN_SEEDS["target"]}, train mode, '
        'requires_grad False',
        'teacher_model': f'tiny_cond weight_seed {TRAIN_SEEDS["teacher"]}, eval mode, '
        'requires_grad False (CD cases only)',
        'x_start': 'torch.randn(2, 3, 16, 16, generator=Generator().manual_seed(11))'
        '.clamp(-1, 1)',
        'noise': 'torch.randn(2, 3, 16, 16, generator=Generator().manual_seed(12)), '
        'passed as noise=',
        'labels': LABELS,
        'model_kwargs': "{'y': labels} (int64)",
        'indices': f'indices/num_scalesN = torch.manual_seed({seed}); '
        f'torch.randint(0, N - 1, (2,)) (int64); the same torch.manual_seed({seed}) is '
        'called right before each consistency_losses call, which draws them from the '
        'global RNG',
        'consistency_cases': records,
        'consistency_keys': 'CASE/loss float32 (2,): terms["loss"] of '
        'KarrasDenoiser(**kwargs).consistency_losses(model, x_start, num_scales, '
        'model_kwargs, target_model, [teacher_model, teacher_diffusion], noise=noise)',
        'edm': {
            'denoiser_kwargs': edm_kwargs,
            'sigmas': [0.3, 7.0],
            'keys': 'edm/loss float32 (2,): terms["loss"] of training_losses(model, '
            'x_start, sigmas, model_kwargs, noise=noise); edm/sigmas float32',
        },
        'schedule': {
            'fn': 'create_ema_and_scales_fn(**kwargs)(step) -> (ema, scales)',
            'steps': SCHEDULE_STEPS,
            'cases': SCHEDULES,
            'keys': 'schedule/steps int64; schedule/NAME/ema float64; '
            'schedule/NAME/scales int64',
        },
    }
    save_npz(out / 'training_losses.npz', arrays, meta)
    return meta


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cm-repo', type=Path, required=True,
                        help='checkout of openai/consistency_models')
    parser.add_argument('--out', type=Path, default=Path('tests/fixtures/reference'))
    parser.add_argument('--skip-released', action='store_true',
                        help='skip the slow samples of the full released architectures')
    parser.add_argument('--only-training', action='store_true',
                        help='write training_losses.npz only (keeps the other meta entries)')
    parser.add_argument('--only-editing', action='store_true',
                        help='write editing.npz only (keeps the other meta entries)')
    return parser.parse_args()


def main() -> None:
    """Write every fixture group and a combined ``meta.json``."""
    args = parse_args()
    ref = Reference(args.cm_repo.resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    meta: Dict[str, Any] = {
        'torch_version': torch.__version__,
        'weights': 'mmagic_cm.testing.seeded_state_dict(list of (name, shape) of '
        'create_model(**kwargs).state_dict(), seed=weight_seed), loaded strictly',
    }
    if args.only_editing:
        meta['editing.npz'] = make_editing(ref, args.out)
    elif not args.only_training:
        meta.update({
            'unet_forward.npz': make_unet_forward(ref, args.out),
            'denoiser.npz': make_denoiser(ref, args.out),
            'generators.npz': make_generators(ref, args.out),
            'samplers.npz': make_samplers(ref, args.out),
            'arch_keys.json': make_arch_keys(ref, args.out),
        })
        if not args.skip_released:
            meta['released_arch_samples.npz'] = make_released(ref, args.out)
    if not args.only_editing:
        meta['training_losses.npz'] = make_training_losses(ref, args.out)
    if not args.only_training and not args.only_editing:
        meta['editing.npz'] = make_editing(ref, args.out)
    path = args.out / 'meta.json'
    if path.exists():
        # Keep the entries of the files that were not rewritten.
        for key, value in json.loads(path.read_text()).items():
            meta.setdefault(key, value)
    path.write_text(json.dumps(meta, indent=1, sort_keys=True) + '\n')
    print(f'wrote {path}', flush=True)


if __name__ == '__main__':
    main()
