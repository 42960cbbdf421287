"""Karras preconditioning and schedule against the original code."""
import numpy as np
import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond, get_sigmas_karras, karras_sigma
from mmagic_cm.testing import load_ref, reference_unet


@pytest.mark.parametrize('boundary', [False, True])
def test_scalings_match_original(boundary):
    ref, _ = load_ref('denoiser.npz')
    den = KarrasPrecond(boundary_condition=boundary)
    sigmas = torch.from_numpy(ref['sigmas'])
    name = 'get_scalings_for_boundary_condition' if boundary else 'get_scalings'
    for value, key in zip(den.scalings(sigmas), ('c_skip', 'c_out', 'c_in')):
        np.testing.assert_array_equal(value.numpy(), ref[f'{name}/{key}'])


def test_boundary_condition_is_identity_at_sigma_min():
    den = KarrasPrecond(boundary_condition=True)
    c_skip, c_out, _ = den.scalings(torch.tensor([0.002]))
    assert c_skip.item() == 1.0 and c_out.item() == 0.0


@pytest.mark.parametrize('key,args', [
    ('karras_n1', (1, 0.002, 80.0)), ('karras_n2', (2, 0.002, 80.0)),
    ('karras_n40', (40, 0.002, 80.0)), ('karras_n201', (201, 0.002, 80.0)),
    ('karras_n10_min0.01_max50', (10, 0.01, 50.0))])
def test_karras_sigmas_match_original(key, args):
    ref, _ = load_ref('denoiser.npz')
    np.testing.assert_array_equal(get_sigmas_karras(*args).numpy(), ref[f'sigmas_karras/{key}'])


def test_karras_sigma_float64_grid_point():
    assert karras_sigma(0, 40) == pytest.approx(80.0, rel=1e-15)
    assert karras_sigma(39, 40) == pytest.approx(0.002, rel=1e-12)


@pytest.mark.parametrize('distill', [0, 1])
def test_denoise_matches_original(distill):
    ref, _ = load_ref('denoiser.npz')
    unet = reference_unet('tiny_cond', 0)
    den = KarrasPrecond(boundary_condition=bool(distill))
    with torch.no_grad():
        out, denoised = den.denoise(unet, torch.from_numpy(ref['denoise/x_t']),
                                    torch.from_numpy(ref['denoise/sigmas']),
                                    y=torch.from_numpy(ref['denoise/y']))
    np.testing.assert_allclose(out.numpy(), ref[f'denoise/distill{distill}/model_output'],
                               rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(denoised.numpy(), ref[f'denoise/distill{distill}/denoised'],
                               rtol=1e-4, atol=2e-5)


def test_bad_sigma_range():
    with pytest.raises(ValueError, match='sigma_min'):
        KarrasPrecond(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match='n=0'):
        get_sigmas_karras(0)
