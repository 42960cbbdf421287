"""The Karras et al. (2022) noise levels by their defining properties (the
parity fixtures compare them with the original code as well)."""
import pytest
import torch

from mmagic_cm.denoiser.sigmas import get_sigmas_karras


@pytest.mark.parametrize('n,rho', [(2, 7.0), (18, 7.0), (40, 7.0), (11, 3.0)])
def test_karras_levels_end_at_the_limits_and_are_even_in_the_rho_th_root(n, rho):
    """σ_0 = σ_max, σ_{n-1} = σ_min, a 0 appended, and σ_i^(1/ρ) evenly spaced."""
    sigmas = get_sigmas_karras(n, 0.002, 80.0, rho).double()
    assert sigmas.shape == (n + 1, ) and float(sigmas[-1]) == 0
    assert float(sigmas[0]) == pytest.approx(80.0, rel=1e-6)
    assert float(sigmas[n - 1]) == pytest.approx(0.002, rel=1e-5)
    steps = torch.diff(sigmas[:n]**(1 / rho))
    torch.testing.assert_close(steps, steps.mean().expand_as(steps), rtol=1e-4, atol=0)


def test_karras_levels_known_numbers():
    """σ_max = 128 = 2^7, σ_min = 1, ρ = 7: the roots are 2, 1.5, 1, so the
    middle level is 1.5^7 = 17.0859375."""
    sigmas = get_sigmas_karras(3, 1.0, 128.0, 7.0)
    assert sigmas.tolist() == pytest.approx([128.0, 17.0859375, 1.0, 0.0], rel=1e-6)


@pytest.mark.parametrize('steps', [2, 18, 40, 201])
def test_grid_points_are_the_karras_levels(steps):
    """karras_sigma(i, N) (multistep ts, CD/CT training indices) is level i of the
    N-level schedule: σ_max at 0, σ_min at N - 1."""
    from mmagic_cm.denoiser.sigmas import karras_sigma
    assert karras_sigma(0, steps) == pytest.approx(80.0, rel=1e-12)
    assert karras_sigma(steps - 1, steps) == pytest.approx(0.002, rel=1e-12)
    grid = karras_sigma(torch.arange(steps, dtype=torch.float64), steps)
    torch.testing.assert_close(grid.float(), get_sigmas_karras(steps)[:steps], rtol=1e-5,
                               atol=0)
