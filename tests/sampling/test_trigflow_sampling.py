"""The trigflow sampler: sCM's one- and two-step sampling in TrigFlow times."""
import math

import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.denoiser.precond import Denoiser
from mmagic_cm.sampling import SamplingSettings
from mmagic_cm.sampling.noise import get_generator
from mmagic_cm.sampling.samplers import karras_sample, sampling_sigmas
from mmagic_cm.testing import tiny_ect_denoiser


def test_two_steps_follow_the_trigflow_formula():
    """x0 = f(x_T, t_max); x_t = cos t x0 + sin t σ_d z at t = 1.1; x0' = f(x_t, t),
    with f in TrigFlow coordinates, equals the sampler in EDM coordinates."""
    den, _, y = tiny_ect_denoiser()
    net = den.net.eval()
    d = Denoiser(net, KarrasPrecond(), clip=True)
    gen = get_generator('determ', 6, seed=3)
    out = karras_sample(lambda x, s: d(x, s, y=y), (6, 3, 8, 8), gen, sampler='trigflow',
                        steps=2)
    gen = get_generator('determ', 6, seed=3)
    z0 = gen.randn(6, 3, 8, 8)
    z1 = gen.randn(6, 3, 8, 8)
    x0 = d(80 * z0, torch.full((6, ), 80.0), y=y)
    t = 1.1
    x_t = math.cos(t) * x0 + math.sin(t) * 0.5 * z1
    sigma = 0.5 * math.tan(t)
    expected = d(x_t / math.cos(t), torch.full((6, ), sigma), y=y)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_one_step_is_the_onestep_sampler():
    den, _, y = tiny_ect_denoiser()
    d = Denoiser(den.net.eval(), KarrasPrecond(), clip=True)
    outs = [karras_sample(lambda x, s: d(x, s, y=y), (6, 3, 8, 8),
                          get_generator('determ', 6, seed=1), sampler=name, steps=1)
            for name in ('trigflow', 'onestep')]
    torch.testing.assert_close(*outs, rtol=0, atol=1e-6)  # the same single call


def test_levels_and_settings():
    sigmas = sampling_sigmas('trigflow', 3, trig_ts=(1.3, 0.8), sigma_data=0.5)
    torch.testing.assert_close(sigmas, torch.tensor(
        [80.0, 0.5 * math.tan(1.3), 0.5 * math.tan(0.8), 0.0], dtype=torch.float64))
    assert SamplingSettings(sampler='trigflow', steps=2).trig_ts == (1.1, )
    with pytest.raises(ValueError, match='needs trig_ts'):
        SamplingSettings(sampler='trigflow', steps=3)
    with pytest.raises(ValueError, match='decrease strictly'):
        SamplingSettings(sampler='trigflow', steps=2, trig_ts='1.7')


def test_trigflow_renoises_by_sigma_without_the_sigma_min_shift():
    """x_t' = x0 + σ' z exactly: with unit 'noise', the second input is σ'
    itself (CD/CT's sqrt(σ'² - σ_min²) is 2e-6 smaller at σ' = 0.98)."""
    from mmagic_cm.sampling.samplers import sample_trigflow
    calls = []

    def denoiser(x, sigma):
        calls.append((x.clone(), float(sigma[0])))
        return torch.zeros_like(x)

    sigma = 0.5 * math.tan(1.1)
    out = sample_trigflow(denoiser, torch.zeros(1, 3, 4, 4, dtype=torch.float64),
                          [80.0, sigma, 0.0], torch.ones_like)
    assert [s for _, s in calls] == [80.0, sigma]
    assert torch.equal(calls[1][0], torch.full((1, 3, 4, 4), sigma, dtype=torch.float64))
    assert torch.equal(out, torch.zeros_like(out))
