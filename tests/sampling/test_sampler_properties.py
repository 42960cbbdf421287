"""Samplers against properties of Karras et al. (2022) and sCM (Lu & Song 2025),
independent of the parity fixtures: Heun's churn γ = S_churn / N and its noise,
Heun's second order on an ODE with a known solution, the ancestral step's
variance, the two-step TrigFlow level, consistency sampling's re-noising."""
import math

import pytest
import torch

from mmagic_cm.sampling import get_generator
from mmagic_cm.sampling.samplers import (
    get_ancestral_step,
    karras_sample,
    sample_consistency,
    sample_heun,
    sampling_sigmas,
)

S = 0.3  # Gaussian data N(μ, S²): its denoiser and ODE are known exactly


def gaussian(shape=(4, 3, 16, 16)):
    mu = torch.rand(shape, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64) * 1.6 - 0.8

    def denoiser(x, sigma):
        return mu + S**2 / (S**2 + sigma.view(-1, 1, 1, 1)**2) * (x - mu)
    return mu, denoiser


def recording(calls):
    """A denoiser that returns 0 and appends each (x, σ) it is called with."""
    def denoiser(x, sigma):
        calls.append((x.clone(), float(sigma[0])))
        return torch.zeros_like(x)
    return denoiser


@pytest.mark.parametrize('s_churn,steps', [(10.0, 40), (80.0, 40), (5.0, 18)])
def test_heun_churn_is_s_churn_over_the_number_of_steps(s_churn, steps):
    """γ_i = min(S_churn / N, √2 - 1) for σ_i in [S_tmin, S_tmax] (Algorithm 2),
    and the added noise has variance σ̂² - σ²."""
    seen = []
    karras_sample(lambda x, s: torch.zeros_like(x), (2, 3, 16, 16),
                  get_generator('determ', 2, seed=0), sampler='heun', steps=steps,
                  s_churn=s_churn, s_tmin=0.05, s_tmax=50.0,
                  callback=lambda d: seen.append((float(d['sigma']), float(d['sigma_hat']))))
    gamma = min(s_churn / steps, math.sqrt(2) - 1)
    churned = 0
    for sigma, sigma_hat in seen:
        expected = gamma if 0.05 <= sigma <= 50.0 else 0.0
        assert sigma_hat / sigma - 1 == pytest.approx(expected, rel=1e-5, abs=1e-7)
        churned += expected > 0
    assert 0 < churned < len(seen)


def test_heun_churn_noise_has_the_added_variance():
    """From x = 0 at σ = 10, the churned first step adds noise of standard
    deviation sqrt(σ̂² - σ²) (the callback's x is the churned one)."""
    sigmas = torch.tensor([10.0, 5.0, 0.0])
    x0 = torch.zeros(1, 3, 64, 64)
    seen = []
    sample_heun(lambda x, s: torch.zeros_like(x), x0.clone(), sigmas,
                get_generator('determ', 1, seed=1).randn_like, s_churn=2.0,
                callback=lambda d: seen.append((d['x'].clone(), float(d['sigma_hat']))))
    x_hat, sigma_hat = seen[0]
    gamma = min(2.0 / 2, math.sqrt(2) - 1)
    assert sigma_hat == pytest.approx(10.0 * (1 + gamma))
    assert float(x_hat.std()) == pytest.approx(math.sqrt(sigma_hat**2 - 100.0), rel=0.03)


def test_heun_converges_at_second_order():
    """The probability-flow ODE of Gaussian data (x - μ) / sqrt(S² + σ²) = const,
    from σ = 2 to 0.1: doubling the steps cuts Heun's error ~4x."""
    mu, denoiser = gaussian()
    x = mu + 2.0 * torch.randn(mu.shape, generator=torch.Generator().manual_seed(1),
                               dtype=torch.float64)
    exact = mu + math.sqrt((S**2 + 0.01) / (S**2 + 4.0)) * (x - mu)
    errors = []
    for n in (8, 16, 32):
        sigmas = torch.linspace(2.0, 0.1, n + 1, dtype=torch.float64)
        out = sample_heun(denoiser, x.clone(), sigmas, torch.randn_like)  # no churn
        errors.append(float((out - exact).abs().max()))
    assert 3.3 < errors[0] / errors[1] < 4.7 and 3.3 < errors[1] / errors[2] < 4.7, errors


@pytest.mark.parametrize('sigma_from,sigma_to', [(80.0, 20.0), (1.0, 0.5), (0.3, 0.0)])
def test_ancestral_step_keeps_the_marginal_variance(sigma_from, sigma_to):
    """σ_down² + σ_up² = σ_to², and σ_up² = σ_to² (σ_from² - σ_to²) / σ_from²
    (the posterior variance of x_to given x_from for a point mass)."""
    down, up = get_ancestral_step(sigma_from, sigma_to)
    assert down**2 + up**2 == pytest.approx(sigma_to**2, abs=1e-12)
    assert up**2 == pytest.approx(sigma_to**2 * (1 - (sigma_to / sigma_from)**2), abs=1e-12)


def test_two_step_trigflow_renoises_at_t_1_1():
    """sCM's two steps: the intermediate TrigFlow time is 1.1, i.e. the EDM
    level σ with arctan(σ / σ_d) = 1.1; a denoiser that returns 0 shows the
    re-noised input's standard deviation, σ."""
    levels = sampling_sigmas('trigflow', 2, sigma_data=0.5)
    assert float(levels[0]) == 80.0 and float(levels[-1]) == 0.0
    assert math.atan(float(levels[1]) / 0.5) == pytest.approx(1.1, abs=1e-12)
    assert math.atan(float(sampling_sigmas('trigflow', 2, sigma_data=0.2)[1]) / 0.2) \
        == pytest.approx(1.1, abs=1e-12)
    calls = []
    denoiser = recording(calls)
    karras_sample(denoiser, (2, 3, 32, 32), get_generator('determ', 2, seed=2),
                  sampler='trigflow', steps=2)
    (x1, s1), (x2, s2) = calls
    assert s1 == 80.0 and s2 == pytest.approx(0.5 * math.tan(1.1))
    assert float(x2.std()) == pytest.approx(s2, rel=0.05)
    # x_t' = cos t' x0 + sin t' σ_d z is x0 + σ' z in EDM coordinates: no σ_min
    # shift (CD/CT's sqrt(σ'² - σ_min²) would be 2e-6 smaller), to float rounding
    gen = get_generator('determ', 2, seed=2)
    gen.randn(2, 3, 32, 32)  # x_T
    z = gen.randn(2, 3, 32, 32)
    torch.testing.assert_close(x2, z * s2, rtol=3e-7, atol=0)


def test_consistency_sampling_renoises_to_the_next_level_minus_sigma_min():
    """Algorithm 1: x = x0 + sqrt(σ_next² - σ_min²) z; at the last level σ_min
    nothing is added."""
    calls = []
    denoiser = recording(calls)
    out = sample_consistency(denoiser, 80 * torch.randn(2, 3, 32, 32), [80.0, 3.0, 0.002],
                             get_generator('determ', 2, seed=3).randn_like, 0.002, 80.0)
    assert float(calls[1][0].std()) == pytest.approx(math.sqrt(9.0 - 0.002**2), rel=0.05)
    assert torch.equal(out, torch.zeros_like(out))


def test_consistency_renoising_subtracts_sigma_min_exactly():
    """With unit 'noise' the re-noised input is sqrt(σ_next² - σ_min²) itself;
    a σ_min close to σ_next makes the shift large (3 -> sqrt(5))."""
    calls = []
    sample_consistency(recording(calls), torch.zeros(1, 3, 4, 4, dtype=torch.float64),
                       [80.0, 3.0, 2.0], torch.ones_like, sigma_min=2.0, sigma_max=80.0)
    assert [s for _, s in calls] == [80.0, 3.0]
    torch.testing.assert_close(calls[1][0], torch.full((1, 3, 4, 4), math.sqrt(5.0),
                                                       dtype=torch.float64))


def test_dpm_midpoints_known_numbers():
    """DPM-2's midpoint is the mean of the levels' cube roots, cubed:
    8 -> 1 gives ((2 + 1) / 2)^3 = 3.375; 1 -> 0 gives 0.5^3 = 0.125."""
    from mmagic_cm.sampling.samplers import sample_dpm
    calls = []
    sample_dpm(recording(calls), torch.zeros(1, 3, 4, 4), torch.tensor([8.0, 1.0, 0.0]),
               torch.randn_like)
    assert [s for _, s in calls] == pytest.approx([8.0, 3.375, 1.0, 0.125], rel=1e-6)


def test_sampling_starts_from_sigma_max_times_the_noise():
    """x_T = σ_max · noise (the given noise, or the generator's first draw)."""
    calls = []
    noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    karras_sample(recording(calls), (2, 3, 8, 8), get_generator('determ', 2, seed=0),
                  sampler='onestep', sigma_max=40.0, noise=noise)
    (x, sigma), = calls
    assert sigma == pytest.approx(40.0, rel=1e-6)  # the float32 Karras level
    torch.testing.assert_close(x, noise * 40.0, rtol=0, atol=0)
