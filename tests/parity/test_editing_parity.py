"""Inpainting, colorization and super-resolution against the original's
``iterative_inpainting``, ``iterative_colorization`` and ``iterative_superres``
(fixtures: tools/reference/make_fixtures.py --only-editing)."""
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.denoiser.unet import ConsistencyUNetModel, unet_config_from_flags
from mmagic_cm.editing import algorithms
from mmagic_cm.editing.operators import Colorize, Inpaint, SuperResolution
from mmagic_cm.models import ConsistencyModel
from mmagic_cm.sampling import get_generator
from mmagic_cm.testing import load_ref, seeded_state_dict

# the original's functions, as this fixture ran them; the edited images
# agree to float32 rounding over 3 consistency steps (8e-7 measured)
ATOL = 5e-6


def edit_model(size: int) -> ConsistencyModel:
    _, meta = load_ref('editing.npz')
    cfg = unet_config_from_flags(meta['archs'][str(size)])
    cfg.pop('type')
    with torch.device('meta'):
        unet = ConsistencyUNetModel(**cfg)
    # our state-dict order is the original's (checked on the fixture archs in
    # test_unet.py), so the seeded weights are the fixture's
    weights = seeded_state_dict([(k, v.shape) for k, v in unet.state_dict().items()],
                                meta['weight_seed'])
    unet.load_state_dict(weights, strict=True, assign=True)
    return ConsistencyModel(unet, KarrasPrecond(boundary_condition=True)).eval()


class Rows:
    """The generator's draws for a subset of a batch's rows (images are
    independent in a batch, so the fixture's rows can be recomputed alone)."""

    def __init__(self, generator, batch: int, rows):
        self.generator, self.batch, self.rows = generator, batch, list(rows)

    def randn(self, *shape, **kwargs):
        return self.generator.randn(self.batch, *shape[1:], **kwargs)[self.rows]

    def randn_like(self, x):
        return self.randn(*x.shape, dtype=x.dtype, device=x.device)


def run_case(name: str):
    ref, meta = load_ref('editing.npz')
    case = meta['cases'][name]
    size, rows = case['size'], case['rows']
    model = edit_model(size)
    coarse = torch.from_numpy(ref['coarse'])
    images = F.interpolate(coarse, size=size, mode='bilinear', align_corners=False)
    images = images.mul(0.5).clamp(-0.95, 0.95)[rows]
    labels = torch.from_numpy(ref['labels'])[rows]
    gen = Rows(get_generator(case['generator'], case['num_samples'], case['generator_seed']),
               case['num_samples'], rows)
    x = gen.randn(len(rows), 3, size, size) * 80.0
    settings = model.settings(clip_denoised=True, dtype='fp32')
    denoiser = partial(model.sampling_denoiser(settings), y=labels)
    kwargs = dict(steps=case['steps'])
    if case['task'] == 'inpaint':
        mask = np.unpackbits(ref[f'{name}/mask'], axis=-1)[rows]
        mask = torch.from_numpy(mask).float()[:, None]
        return ref, algorithms.inpaint(denoiser, images, mask, x, case['ts'], gen, **kwargs)
    fn = getattr(algorithms, case['task'])
    return ref, fn(denoiser, images, x, case['ts'], gen, **kwargs)


@pytest.mark.parametrize('name', ['colorize/determ-indiv', 'superres/determ-indiv'])
def test_colorize_and_superres_match_original(name):
    ref, (edited, observed) = run_case(name)
    np.testing.assert_allclose(observed.numpy(), ref[f'{name}/observed'], rtol=0, atol=1e-6)
    np.testing.assert_allclose(edited.numpy(), ref[f'{name}/edited'], rtol=0, atol=ATOL)


def test_inpainting_matches_original():
    name = 'inpaint/determ-indiv'
    ref, (edited, observed) = run_case(name)
    mask = np.unpackbits(ref[f'{name}/mask'], axis=-1)[[0, 7]]
    assert 0.5 < mask[0].mean() < 0.95 and mask[1].mean() == pytest.approx(1 - mask[0].mean())
    assert torch.all(observed[:, :, ~torch.from_numpy(mask).bool()[0]][0] == -1)
    np.testing.assert_allclose(F.avg_pool2d(edited, 4).numpy(), ref[f'{name}/edited_pool4'],
                               rtol=0, atol=ATOL)
    np.testing.assert_allclose(edited[..., 96:160, 96:160].numpy(), ref[f'{name}/edited_crop'],
                               rtol=0, atol=ATOL)


def test_operators_are_projections():
    """replace(known, x0) keeps exactly the known part: idempotent, and
    observe(replace(known, x0)) == observe(known)."""
    gen = torch.Generator().manual_seed(0)
    known = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    x0 = torch.rand(2, 3, 16, 16, generator=gen) * 2 - 1
    mask = (torch.rand(16, 16, generator=gen) > 0.5).float()
    for op in (Inpaint(mask), Colorize(), SuperResolution(4)):
        mixed = op.replace(op.observe(known), x0)
        if not isinstance(op, Inpaint):  # inpainting's observe fills with -1
            torch.testing.assert_close(op.observe(mixed), op.observe(known), atol=1e-6,
                                       rtol=0)
        torch.testing.assert_close(op.replace(op.observe(known), mixed), mixed, atol=1e-6,
                                   rtol=0)
    # inpainting: kept pixels from known, the rest from x0
    mixed = Inpaint(mask).replace(known, x0)
    assert torch.equal(mixed[..., mask.bool()], known[..., mask.bool()])
    assert torch.equal(mixed[..., ~mask.bool()], x0[..., ~mask.bool()])
