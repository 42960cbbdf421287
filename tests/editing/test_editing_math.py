"""Editing math against properties (no model needed): slerp stays on the sphere
at the right angles, interpolation's noises keep their size, the operators
keep what they promise, stroke-guided generation noises the painting to σ."""
import math

import numpy as np
import pytest
import torch

from mmagic_cm.editing import Colorize, SuperResolution, algorithms
from mmagic_cm.editing.operators import LUMA_WEIGHTS, Inpaint
from mmagic_cm.sampling import get_generator

SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


def pair(seed, shape=(1, 3, 16, 16), opposite=False):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(shape, generator=gen)
    b = torch.randn(shape, generator=gen)
    if opposite:  # nearly antiparallel, the same norm: a dot product of -0.9 |a|²
        b = -a + 0.5 * b
        b = b * a.norm() / b.norm()
    return a, b


def angle(u, v):
    u, v = u.double().flatten().numpy(), v.double().flatten().numpy()
    return math.acos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))


@pytest.mark.parametrize('opposite', [False, True])
@pytest.mark.parametrize('seed', SEEDS)
def test_slerp_of_unit_vectors_stays_on_the_sphere(seed, opposite):
    """Unit a and b: every point of the path has norm 1 and makes the angle
    alpha·θ with a (θ their angle), whatever the sign of their dot product."""
    a, b = pair(seed, opposite=opposite)
    a, b = a / a.norm(), b / b.norm()
    theta = angle(a, b)
    if opposite:
        assert float((a * b).sum()) < -0.5
    alphas = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
    path = algorithms.slerp(a, b, alphas)
    norms = path.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms), rtol=0, atol=1e-5)
    for alpha, point in zip(alphas.tolist(), path):
        assert angle(point, a) == pytest.approx(alpha * theta, abs=1e-4)


@pytest.mark.parametrize('opposite', [False, True])
@pytest.mark.parametrize('seed', SEEDS)
def test_interpolation_noises_keep_their_size(seed, opposite):
    """Standard-normal noises of norm ~√d (their dot product of either sign): the
    path's noises have norms between the end points' (on the chord the midpoint
    would have 0.71x, or ~0.2x for nearly opposite noises)."""
    a, b = pair(seed, opposite=opposite)
    images, noises = algorithms.interpolate(
        lambda x, sigma: torch.zeros_like(x), a, b, torch.linspace(0, 1, 5),
        get_generator('dummy'))
    norms = noises.flatten(1).norm(dim=1)
    lo, hi = sorted([float(a.norm()), float(b.norm())])
    assert (norms > 0.99 * lo).all() and (norms < 1.01 * hi).all(), norms
    torch.testing.assert_close(noises[0], a[0])
    torch.testing.assert_close(noises[-1], b[0])


def test_colorize_keeps_the_luma_and_frees_the_chroma():
    """The kept part is the BT.601 luma direction: images with the same luma
    (R, G, B moved along a chroma direction orthogonal to the luma weights)
    observe the same; a grey level change is observed in full."""
    op = Colorize()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    w = torch.tensor(LUMA_WEIGHTS)
    chroma = torch.linalg.cross(w, torch.tensor([1.0, 0.0, 0.0]))  # ⟂ w
    moved = x + 0.3 * chroma.view(1, 3, 1, 1)
    torch.testing.assert_close(op.observe(moved), op.observe(x), atol=1e-6, rtol=0)
    unit = (w / w.norm()).view(1, 3, 1, 1)
    torch.testing.assert_close(op.observe(x + 0.2 * unit) - op.observe(x),
                               0.2 * unit.expand_as(x), atol=1e-6, rtol=0)
    # replace: the luma of the result is the known image's, the chroma the model's
    known = torch.rand(2, 3, 4, 4, generator=gen) * 2 - 1
    mixed = op.replace(known, x)

    def luma(v):
        return (v * w.view(1, 3, 1, 1)).sum(1)

    torch.testing.assert_close(luma(mixed), luma(known), atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed - x, unit * ((known - x) * unit).sum(1, keepdim=True),
                               atol=1e-6, rtol=0)


def test_superres_and_inpaint_replace_the_known_part_only():
    gen = torch.Generator().manual_seed(1)
    known = torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1
    x0 = torch.rand(2, 3, 8, 8, generator=gen) * 2 - 1
    mixed = SuperResolution(4).replace(known, x0)
    pool = torch.nn.functional.avg_pool2d
    torch.testing.assert_close(pool(mixed, 4), pool(known, 4), atol=1e-6, rtol=0)
    # inside each patch the model's detail (x0 minus its patch mean) is kept

    def up(v):
        return pool(v, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)

    torch.testing.assert_close(mixed - up(mixed), x0 - up(x0), atol=1e-6, rtol=0)
    mask = torch.zeros(8, 8)
    mask[:, :3] = 1
    mixed = Inpaint(mask).replace(known, x0)
    assert torch.equal(mixed[..., :3], known[..., :3])
    assert torch.equal(mixed[..., 3:], x0[..., 3:])


@pytest.mark.parametrize('sigma', [0.3, 2.0, 20.0])
def test_stroke_noises_the_painting_to_sigma(sigma):
    """SDEdit: the first denoiser call sees the painting plus noise of standard
    deviation σ, at noise level σ."""
    strokes = torch.zeros(2, 3, 32, 32)
    strokes[:, 0, 8:24, 8:24] = 0.8
    calls = []

    def denoiser(x, s):
        calls.append((x.clone(), s.clone()))
        return x.clamp(-1, 1)

    algorithms.stroke(denoiser, strokes, sigma, get_generator('determ', 2, seed=0))
    x, s = calls[0]
    assert torch.allclose(s, torch.full_like(s, sigma))
    assert float((x - strokes).std()) == pytest.approx(sigma, rel=0.05)
    assert float((x - strokes).mean()) == pytest.approx(0.0, abs=0.05 * sigma)
