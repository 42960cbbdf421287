"""EDM's preconditioning by what it is for (Karras et al. 2022, appendix B.6),
measured on Gaussian data, independent of the parity fixtures: c_in gives the
network unit-variance input, c_skip is the least-squares (Wiener) gain of
clean on noisy data, and c_out makes the network's target unit-variance."""
import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond

SIGMAS = [0.002, 0.1, 0.5, 2.0, 80.0]


@pytest.mark.parametrize('sigma_data', [0.5, 0.2])
@pytest.mark.parametrize('sigma', SIGMAS)
def test_edm_scalings_on_gaussian_data(sigma, sigma_data):
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(400_000, generator=gen, dtype=torch.float64) * sigma_data
    x = y + sigma * torch.randn(400_000, generator=gen, dtype=torch.float64)
    c_skip, c_out, c_in = (float(c) for c in KarrasPrecond(sigma_data=sigma_data)
                           .get_scalings(torch.tensor([sigma], dtype=torch.float64)))
    assert float((c_in * x).var()) == pytest.approx(1.0, rel=0.01)
    wiener = float((x * y).mean() / (x * x).mean())  # argmin_k E (y - k x)^2
    assert c_skip == pytest.approx(wiener, rel=0.01, abs=1e-4)
    assert float(((y - c_skip * x) / c_out).var()) == pytest.approx(1.0, rel=0.01)
