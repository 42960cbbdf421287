"""sCM (sCT, sCD) in TrigFlow: the time derivative, the EDM <-> TrigFlow conversion,
the objectives at a perfect consistency function, bad input."""
import math

import pytest
import torch
from torch import nn

from mmagic_cm.denoiser import KarrasPrecond, TrigFlowPrecond, trigflow_network
from mmagic_cm.denoiser.precond import Denoiser, append_dims
from mmagic_cm.denoiser.unet import ConsistencyUNetModel
from mmagic_cm.testing import seeded_state_dict, tiny_ect_denoiser
from mmagic_cm.training.dropout import SharedDropout
from mmagic_cm.training.objectives import EasyConsistencyTuning
from mmagic_cm.training.scm import (
    ContinuousConsistencyDistillation,
    ContinuousConsistencyTraining,
    time_derivative,
)

T = [0.05, 0.3, 0.7, 1.0, 1.3, 1.52]


def derivative_error(net, dtype, h, train=False):
    """max |JVP - central difference| / max |JVP| of cos t sin t dF/dt."""
    _, x, y = tiny_ect_denoiser()
    net = net.to(dtype).train(train)
    fn = trigflow_network(KarrasPrecond(), net, y=y)
    t = torch.tensor(T, dtype=dtype)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    shared = SharedDropout(net)
    with torch.no_grad():
        with shared.record():
            fn(x.to(dtype), t)
        with shared.replay():
            exact = time_derivative(fn, x.to(dtype), t, v, 0.5, 'jvp')
            approx = time_derivative(fn, x.to(dtype), t, v, 0.5, 'finite-difference', h)
    return float((exact - approx).abs().max() / exact.abs().max())


def test_jvp_equals_a_central_difference():
    """Through the whole ADM UNet (attention, GroupNorm, class embedding): the
    fp64 difference converges at O(h^2); fp32 agrees within 1% at h = 3e-5."""
    net = tiny_ect_denoiser()[0].net
    assert derivative_error(net, torch.float64, 1e-6) < 1e-5
    assert derivative_error(net, torch.float32, 3e-5) < 1e-2


def test_jvp_with_shared_dropout_masks():
    """Training mode (dropout 0.3): the JVP and the two difference passes replay
    the recorded masks, so they still agree."""
    net = tiny_ect_denoiser()[0].net
    assert derivative_error(net, torch.float64, 1e-6, train=True) < 1e-5


def test_edm_network_is_a_trigflow_network_exactly():
    """EDM's D(x_σ, σ) equals TrigFlow's cos t x_t - sin t σ_d F(x_t/σ_d, t) with
    x_t = cos t x_σ, t = arctan(σ/σ_d), F = -F_edm (fp64, random weights)."""
    den, x, y = tiny_ect_denoiser()
    net = den.net.double().eval()
    edm = KarrasPrecond(sigma_data=0.5)
    sigma = torch.tensor([0.01, 0.2, 0.5, 1.0, 5.0, 80.0], dtype=torch.float64)
    x_sigma = x.double() + append_dims(sigma, 4) * torch.randn_like(x.double())
    with torch.no_grad():
        d_edm = Denoiser(net, edm).forward_with_output(x_sigma, sigma, y=y)[1]  # fp64
        t = torch.atan(sigma / 0.5)
        cos, sin = append_dims(torch.cos(t), 4), append_dims(torch.sin(t), 4)
        x_t = cos * x_sigma
        f_trig = cos * x_t - sin * 0.5 * trigflow_network(edm, net, y=y)(x_t / 0.5, t)
    torch.testing.assert_close(f_trig, d_edm, rtol=1e-12, atol=1e-12)


def test_trigflow_precond_is_the_trigflow_consistency_function():
    den, x, y = tiny_ect_denoiser()
    net = den.net.double().eval()
    pre = TrigFlowPrecond(sigma_data=0.5, time_scale=1000)
    t = torch.tensor(T, dtype=torch.float64)
    x_t = x.double()
    with torch.no_grad():
        cos, sin = append_dims(torch.cos(t), 4), append_dims(torch.sin(t), 4)
        f = cos * x_t - sin * 0.5 * net(x_t / 0.5, 1000 * t, y=y)
        d = Denoiser(net, pre).forward_with_output(x_t / cos, 0.5 * torch.tan(t), y=y)[1]
    torch.testing.assert_close(d, f, rtol=1e-10, atol=1e-10)
    zero = torch.zeros(6, dtype=torch.float64)
    assert torch.equal(Denoiser(net, pre).forward_with_output(x_t, zero, y=y)[1], x_t)


class PerfectNet(nn.Module):
    """The network whose D(x, σ) is one image x0 at every σ: the exact
    consistency function (and denoiser) of a one-image data set."""

    def __init__(self, x0, precond):
        super().__init__()
        self.x0, self.precond = x0, precond
        self.anchor = nn.Parameter(torch.zeros(()))  # something to differentiate

    def forward(self, x_in, time, y=None):
        if isinstance(self.precond, TrigFlowPrecond):
            sigma = 0.5 * torch.tan(time / self.precond.time_scale)
        else:
            sigma = torch.exp(time / 250)
        c_skip, c_out, c_in = (append_dims(s, 4) for s in self.precond.scalings(sigma))
        return (self.x0 - c_skip * x_in / c_in) / c_out + self.anchor


@pytest.mark.parametrize('recipe', ['ect', 'sct', 'scd', 'sct-trigflow', 'sct-fd'])
def test_each_objective_is_zero_at_the_exact_consistency_function(recipe, monkeypatch):
    x0 = torch.linspace(-0.9, 0.9, 3 * 8 * 8).reshape(1, 3, 8, 8).double()
    images = x0.repeat(6, 1, 1, 1)
    if recipe == 'ect':
        precond = KarrasPrecond(boundary_condition=True)
        objective = EasyConsistencyTuning(precond, double=1)
    elif recipe == 'scd':
        precond = KarrasPrecond()
        objective = ContinuousConsistencyDistillation(
            precond, teacher=dict(path='unused.pt'), adaptive_weighting=False)
        monkeypatch.setattr(objective.frozen, 'get', lambda device: PerfectNet(x0, precond))
    else:
        precond = TrigFlowPrecond() if recipe == 'sct-trigflow' else KarrasPrecond()
        objective = ContinuousConsistencyTraining(
            precond, adaptive_weighting=False,
            tangent='finite-difference' if recipe == 'sct-fd' else 'jvp', fd_step=1e-6)
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        loss = objective(PerfectNet(x0, precond), images, None, step=3)['loss']
    finally:
        torch.set_default_dtype(torch.float32)
    assert loss.abs().max() < 1e-6, loss


def test_bf16_autocast_on_the_cpu():
    den, x, y = tiny_ect_denoiser()
    objective = ContinuousConsistencyTraining(KarrasPrecond(), tangent_warmup=10)
    with torch.autocast('cpu', torch.bfloat16):
        torch.manual_seed(0)
        out = objective(den.net, x, y, step=5)
    out['loss'].mean().backward()
    assert torch.isfinite(out['loss']).all()
    assert den.net.out[2].weight.grad.abs().sum() > 0
    assert objective.weight_net.mlp[-1].weight.grad.abs().sum() > 0  # u(t) learns


class NoForwardRule(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match='boundary-condition'):
        ContinuousConsistencyTraining(KarrasPrecond(boundary_condition=True))
    with pytest.raises(ValueError, match="'jvp', 'finite-difference'|jvp, finite-difference"):
        ContinuousConsistencyTraining(KarrasPrecond(), tangent='autograd')
    with pytest.raises(ValueError, match='teacher'):
        ContinuousConsistencyDistillation(KarrasPrecond())

    def fn(x_in, t):
        return NoForwardRule.apply(x_in) * append_dims(t, 4)

    x = torch.randn(2, 3, 4, 4)
    with pytest.raises(RuntimeError, match="tangent='finite-difference'"):
        time_derivative(fn, x, torch.tensor([0.5, 1.0]), x, 0.5, 'jvp')
    # the finite difference runs where JVP cannot
    approx = time_derivative(fn, x, torch.tensor([0.5, 1.0]), x, 0.5, 'finite-difference')
    assert torch.isfinite(approx).all()


def test_nan_tangent_stops_training():
    den, x, y = tiny_ect_denoiser()
    objective = ContinuousConsistencyTraining(KarrasPrecond())
    x = x.clone()
    x[0, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='tangent is not finite.*kept'):
        objective(den.net, x, y, step=5)


def test_pixel_norm_option_leaves_the_released_architecture_alone():
    kw = dict(image_size=8, model_channels=32, num_res_blocks=1, attention_resolutions='4',
              channel_mult='1,2', num_classes=10, use_scale_shift_norm=True)
    plain, normed = ConsistencyUNetModel(**kw), ConsistencyUNetModel(
        pixel_norm_scale_shift=True, **kw)
    assert plain.state_dict().keys() == normed.state_dict().keys()  # no new weights
    weights = seeded_state_dict([(k, v.shape) for k, v in plain.state_dict().items()], 3)
    plain.load_state_dict(weights)
    normed.load_state_dict(weights)
    x, t, y = torch.randn(2, 3, 8, 8), torch.tensor([10.0, 500.0]), torch.tensor([1, 2])
    assert not torch.allclose(plain(x, t, y=y), normed(x, t, y=y))
    with pytest.raises(ValueError, match='use_scale_shift_norm'):
        ConsistencyUNetModel(pixel_norm_scale_shift=True,
                             **dict(kw, use_scale_shift_norm=False))
    assert math.isclose(TrigFlowPrecond(time_scale=250).time_input(
        torch.tensor(0.5)).item(), 250 * math.pi / 4, rel_tol=1e-6)


def test_finite_difference_steps_stay_inside_the_time_range():
    """Near t = 0 and π/2 the step shrinks: an EDM network's time input ln(σ_d tan t)
    does not exist outside (0, π/2)."""
    den, x, y = tiny_ect_denoiser()
    fn = trigflow_network(KarrasPrecond(), den.net.eval(), y=y)
    t = torch.tensor([1e-3, 0.02, 0.5, 1.0, 1.56, math.pi / 2 - 1e-3])
    with torch.no_grad():
        d = time_derivative(fn, x / 0.5, t, torch.randn_like(x), 0.5, 'finite-difference', 0.05)
    assert torch.isfinite(d).all()


def test_tangent_runs_in_float32_under_autocast():
    """FastGen's choice: under bf16 autocast the JVP runs in float32 (it equals
    the JVP without autocast), unless tangent_fp32=False."""
    den, x, y = tiny_ect_denoiser()
    fn = trigflow_network(KarrasPrecond(), den.net.eval(), y=y)
    t = torch.tensor([0.3, 0.7, 1.0, 1.3, 0.5, 0.9])[:len(x)]
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        exact = time_derivative(fn, x, t, v, 0.5, 'jvp')
        with torch.autocast('cpu', torch.bfloat16):
            kept = time_derivative(fn, x, t, v, 0.5, 'jvp')
            low = time_derivative(fn, x, t, v, 0.5, 'jvp', fp32=False)
    assert kept.dtype == torch.float32
    torch.testing.assert_close(kept, exact, rtol=1e-5, atol=1e-6)
    assert (low.float() - exact).abs().max() > 10 * (kept - exact).abs().max()
