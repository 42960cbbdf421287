"""Test support: deterministic random weights, the parity fixtures, running tools.

Parity fixtures are made by running the original consistency-models code on
weights that both sides can regenerate from a seed and the list of parameter
names and shapes, so no weight file needs to be committed.
"""
from __future__ import annotations

import json
import math
import os.path as osp
from collections import OrderedDict
from functools import cache
from typing import Iterable, Mapping, Sequence, Tuple

import torch


def seeded_state_dict(
    named_shapes: Iterable[Tuple[str, Sequence[int]]] | Mapping[str, Sequence[int]],
    seed: int = 0,
) -> OrderedDict[str, torch.Tensor]:
    """Build a float32 state dict of random values, reproducible from ``seed``.

    One ``torch.Generator`` seeded with ``seed`` draws ``randn`` for every
    entry in the given order. Tensors with two or more dims are scaled by
    ``1/sqrt(fan_in)`` (fan_in = product of all dims but the first) so that
    activations stay O(1) through a deep UNet; 1-D tensors (biases, norm
    weights) by 0.1. The order and this rule are the whole contract: layers
    the original initialises to zero get random values too, so every weight
    shows up in the outputs that parity tests compare.

    Args:
        named_shapes: ``(name, shape)`` pairs or a mapping, in state-dict order.
        seed: seed of the generator.

    Returns:
        OrderedDict name -> float32 CPU tensor.
    """
    items = named_shapes.items() if isinstance(named_shapes, Mapping) else named_shapes
    gen = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape in items:
        shape = tuple(int(s) for s in shape)
        value = torch.randn(shape, generator=gen, dtype=torch.float32)
        if len(shape) >= 2:
            value /= math.sqrt(max(1, math.prod(shape[1:])))
        else:
            value *= 0.1
        out[name] = value
    return out


# ------------------------------------------------------------------ test helpers
# The parity fixtures (made by running the original code,
# tools/reference/make_fixtures.py) live in the repository's tests/fixtures.
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
REF = osp.join(ROOT, 'tests', 'fixtures', 'reference')
TINY_CONFIGS = osp.join(ROOT, 'tests', 'configs')


@cache
def load_ref(name: str):
    """``(arrays, meta)`` of a reference .npz fixture."""
    import numpy as np
    with np.load(osp.join(REF, name)) as data:
        arrays = {k: data[k] for k in data.files if k != 'meta'}
        meta = json.loads(str(data['meta']))
    return arrays, meta


@cache
def arch_keys():
    """Architectures of the fixtures: flags and state-dict shapes."""
    with open(osp.join(REF, 'arch_keys.json')) as f:
        return json.load(f)


def reference_weights(arch: str, seed: int):
    """The seeded weights the fixtures used, in the original's key order."""
    return seeded_state_dict([(k, s) for k, s in arch_keys()[arch]['state_dict']], seed)


def reference_unet(arch: str, seed: int):
    """Our UNet for a fixture architecture, holding the fixture's weights."""
    from ..denoiser.unet import ConsistencyUNetModel, unet_config_from_flags
    cfg = unet_config_from_flags(arch_keys()[arch]['kwargs'])
    cfg.pop('type')
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**cfg)
    unet.load_state_dict(reference_weights(arch, seed), strict=True, assign=True)
    return unet.eval()


def reference_model(arch: str, seed: int, boundary_condition: bool, **settings):
    """A ConsistencyModel around :func:`reference_unet`: a consistency model's
    boundary-condition scalings (the original's ``distillation=True``), or an
    EDM teacher's."""
    from ..denoiser import KarrasPrecond
    from ..models import ConsistencyModel
    precond = KarrasPrecond(sigma_min=0.002, sigma_max=80.0,
                            boundary_condition=boundary_condition)
    return ConsistencyModel(reference_unet(arch, seed), precond,
                            training_mode='consistency' if boundary_condition else 'edm',
                            **settings).eval()


def assert_images_close(ours, ref, max_fraction: float = 1e-3) -> None:
    """The parity criterion for uint8 images: off by at most 1 level, on <= 0.1% of values."""
    import numpy as np
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.uint8
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1, f'max difference {diff.max()} levels'
    assert (diff > 0).mean() <= max_fraction, f'{(diff > 0).mean():.4%} of values differ'


def run_tool(name: str, argv: Sequence[str]) -> int:
    """Run ``tools/<name>.py`` (or ``demo/<name>.py``) in this process, as its
    command line would with ``argv``; returns its exit status.

    The script is executed from its file (``runpy``), not imported: nothing
    is added to ``sys.path``.
    """
    import runpy
    for folder in ('tools', 'demo'):
        path = osp.join(ROOT, folder, f'{name}.py')
        if osp.isfile(path):
            break
    else:
        raise FileNotFoundError(f'no tools/{name}.py or demo/{name}.py')
    namespace = runpy.run_path(path, run_name=f'mmagic_cm_tool_{name}')
    return namespace['main'](list(argv))


# ------------------------------------------------------------------ ECT parity
#: loss cases of the ECT fixture (tools/reference/make_ect_fixtures.py runs
#: locuslab/ect's ECMLoss on them): mappings, stages (r = 0 included), c
ECT_CASES = {
    'sigmoid_stage0': dict(seed=1, stage=0, mapping='sigmoid', q=2.0, k=8.0, b=1.0, c=0.0,
                           p_mean=-1.1, p_std=2.0),
    'sigmoid_stage3': dict(seed=2, stage=3, mapping='sigmoid', q=2.0, k=8.0, b=1.0, c=0.0,
                           p_mean=-1.1, p_std=2.0),
    'const_stage1_c': dict(seed=3, stage=1, mapping='const', q=4.0, k=8.0, b=1.0, c=0.06,
                           p_mean=-0.8, p_std=1.6),
    'sigmoid_stage6_c': dict(seed=4, stage=6, mapping='sigmoid', q=2.0, k=4.0, b=2.0, c=0.1,
                             p_mean=-1.1, p_std=2.0),
}


def tiny_ect_denoiser():
    """``(denoiser, images, labels)`` of the ECT fixture: a seeded 8x8
    class-conditional UNet with dropout 0.3 in training mode, inside the
    boundary-condition preconditioning; 6 seeded images in [-1, 1]."""
    from ..denoiser import KarrasPrecond
    from ..denoiser.precond import Denoiser
    from ..denoiser.unet import ConsistencyUNetModel
    unet = ConsistencyUNetModel(
        image_size=8, in_channels=3, model_channels=32, num_res_blocks=1,
        attention_resolutions="4", channel_mult="1,2", num_classes=10, num_heads=2,
        use_scale_shift_norm=True, resblock_updown=True, dropout=0.3)
    unet.load_state_dict(seeded_state_dict(
        [(k, v.shape) for k, v in unet.state_dict().items()], seed=7))
    unet.train()
    precond = KarrasPrecond(sigma_min=0.002, sigma_max=80.0, boundary_condition=True)
    gen = torch.Generator().manual_seed(11)
    images = torch.rand(6, 3, 8, 8, generator=gen) * 2 - 1
    labels = torch.tensor([0, 3, 5, 7, 9, 2])
    return Denoiser(unet, precond), images, labels


# ------------------------------------------------------------------ sCM parity
#: cases of the sCM fixture (tools/reference/make_scm_fixtures.py runs NVlabs
#: FastGen's sCM loss on them): sCT and sCD, inside and after the tangent
#: warm-up, with and without the prior and adaptive weightings
SCM_CASES = {
    'sct_warmup': dict(seed=1, step=3, warmup=10, cd=False, prior=True, adaptive=True,
                       tangent=True),
    'sct_full': dict(seed=2, step=12, warmup=10, cd=False, prior=True, adaptive=True,
                     tangent=False),
    'scd_warmup': dict(seed=3, step=5, warmup=10, cd=True, prior=True, adaptive=True,
                       tangent=True),
    'sct_plain': dict(seed=4, step=7, warmup=10, cd=False, prior=False, adaptive=False,
                      tangent=False),
}
#: the sCM fixture's time distribution: ln σ ~ N(p_mean, p_std²) (FastGen's defaults)
SCM_P_MEAN, SCM_P_STD = -1.0, 1.4


def tiny_scm_setup():
    """``(net, teacher, weight_net, images, labels)`` of the sCM fixture, float64,
    eval mode: the 8x8 UNet of :func:`tiny_ect_denoiser` (seed 7), a teacher
    with the same architecture (seed 8), an adaptive-weight MLP whose output
    layer is seeded (u(t) is not 0), its 6 images and labels (the same under
    any default dtype)."""
    from ..denoiser.unet import ConsistencyUNetModel
    from ..training.scm import AdaptiveWeight
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        den, images, labels = tiny_ect_denoiser()
    finally:
        torch.set_default_dtype(default)
    net = den.net.double().eval()
    teacher = ConsistencyUNetModel(
        image_size=8, in_channels=3, model_channels=32, num_res_blocks=1,
        attention_resolutions="4", channel_mult="1,2", num_classes=10, num_heads=2,
        use_scale_shift_norm=True, resblock_updown=True, dropout=0.0)
    teacher.load_state_dict(seeded_state_dict(
        [(k, v.shape) for k, v in teacher.state_dict().items()], seed=8))
    weight_net = AdaptiveWeight()
    weight_net.load_state_dict(seeded_state_dict(
        [(k, v.shape) for k, v in weight_net.state_dict().items() if k != 'freqs'], seed=9)
        | {'freqs': weight_net.freqs}, strict=True)
    return (net, teacher.double().eval().requires_grad_(False), weight_net.double(),
            images.double(), labels)
