"""sCM (sCT, sCD) properties that wrong math breaks, independent of the FastGen
fixture: the tangent vanishes at the exact consistency function of several
distinct Gaussian data sets with its exact teacher (warm-up 1, adaptive
weighting on) while its two terms do not; the update moves F along +g with a
per-sample size prior(t)·e^{-u}; the warm-up; the normalisation; the time
distribution; the adaptive weighting's optimum."""
import math

import pytest
import torch
from torch import nn

import mmagic_cm.training.scm as scm_module
from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.denoiser.precond import append_dims
from mmagic_cm.training.scm import (
    AdaptiveWeight,
    ContinuousConsistencyDistillation,
    ContinuousConsistencyTraining,
)

SD = 0.5
S = 0.3  # the data's standard deviation around each class mean (not σ_d)


def edm_scalings(sigma):
    """Plain EDM c_skip, c_out, c_in (Karras et al. 2022), written out here."""
    return (SD**2 / (sigma**2 + SD**2), sigma * SD / (sigma**2 + SD**2).sqrt(),
            1 / (sigma**2 + SD**2).sqrt())


class EDMTarget(nn.Module):
    """The network (time input 250 ln σ) whose plain-EDM D(x, σ) is ``target(x, σ, y)``;
    ``anchor`` is a parameter added to its output, to read gradients off."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x_in, time, y=None):
        sigma = torch.exp(time / 250)
        c_skip, c_out, c_in = (append_dims(s, x_in.ndim) for s in edm_scalings(sigma))
        x = x_in / c_in
        return (self.target(x, sigma, y) - c_skip * x) / c_out + self.anchor


def gaussian_data(n=6):
    """Distinct class means μ_y (images in [-0.8, 0.8]); each class is N(μ_y, S² I)."""
    gen = torch.Generator().manual_seed(0)
    means = torch.rand(10, 3, 8, 8, generator=gen, dtype=torch.float64) * 1.6 - 0.8
    labels = torch.tensor([0, 3, 5, 7, 9, 2])[:n]
    images = means[labels] + S * torch.randn(n, 3, 8, 8, generator=gen, dtype=torch.float64)
    return means, labels, images


def exact_denoiser(means):
    def d(x, sigma, y):
        mu = means[y]
        return mu + S**2 / (S**2 + append_dims(sigma, x.ndim)**2) * (x - mu)
    return d


def exact_consistency(means):
    """f(x_σ, σ) = μ + S / sqrt(S² + σ²) (x - μ): the probability-flow ODE's end at σ = 0."""
    def f(x, sigma, y):
        mu = means[y]
        return mu + S / (S**2 + append_dims(sigma, x.ndim)**2).sqrt() * (x - mu)
    return f


def seeded_weight_net():
    net = AdaptiveWeight()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in net.mlp.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net.double()


class Spy:
    """Records the arguments and result of ``scm_tangent``."""

    def __init__(self, monkeypatch):
        self.real = scm_module.scm_tangent
        monkeypatch.setattr(scm_module, 'scm_tangent', self)

    def __call__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.g = self.real(*args, **kwargs)
        return self.g


def run(objective, net, images, labels, step, seed=0):
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        return objective(net, images, labels, step=step)
    finally:
        torch.set_default_dtype(torch.float32)


@pytest.mark.parametrize('tangent', ['jvp', 'finite-difference'])
def test_scd_is_zero_at_the_exact_consistency_function_of_gaussian_data(tangent, monkeypatch):
    """Six distinct Gaussian data sets (one per label), the teacher their exact
    denoiser, the student their exact consistency function: the tangent g is 0
    (the consistency function is constant along the teacher's ODE) though its
    two terms are not (they cancel to 1e-5 of their size); the unweighted loss and the network's
    gradient vanish; warm-up 1 (step >= tangent_warmup), adaptive weighting on."""
    means, labels, images = gaussian_data()
    objective = ContinuousConsistencyDistillation(
        KarrasPrecond(), teacher=dict(path='unused.pt'), tangent=tangent, fd_step=1e-5,
        tangent_warmup=1, adaptive_weighting=True)
    objective.weight_net = seeded_weight_net()
    monkeypatch.setattr(objective.frozen, 'get',
                        lambda device: EDMTarget(exact_denoiser(means)))
    spy = Spy(monkeypatch)
    student = EDMTarget(exact_consistency(means))
    out = run(objective, student, images, labels, step=4)
    assert out['tangent_warmup'].item() == 1.0
    F_minus, dF, x_t, dxdt, t, sd = spy.args[:6]  # noqa: N806
    cos, sin = append_dims(torch.cos(t), 4), append_dims(torch.sin(t), 4)
    first = cos * cos * (sd * F_minus - dxdt)
    second = cos * sin * x_t + sd * dF

    def rms(v):
        return v.flatten(1).pow(2).mean(1).sqrt()

    assert (rms(first) > 3e-3).all() and (rms(second) > 3e-3).all()
    tol = 1e-5 if tangent == 'jvp' else 1e-3
    assert (rms(first + second) < tol * rms(first)).all()
    assert spy.g.abs().max() < tol
    assert out['unweighted'] < tol**2
    out['loss'].sum().backward()
    assert abs(float(student.anchor.grad)) < 10 * tol
    # the loss is u(t) alone: its gradient in u is 1 per sample
    assert objective.weight_net.mlp[-1].bias.grad.item() == pytest.approx(len(images),
                                                                          rel=1e-4)


class FreeF(nn.Module):
    """F is a free parameter per sample (no dependence on x or t: dF/dt = 0)."""

    def __init__(self, values):
        super().__init__()
        self.values = nn.Parameter(values.clone())

    def forward(self, x_in, time, y=None):
        return -self.values + 0 * x_in  # an EDM network's F_trig is -F_edm: F = values


def free_setup(monkeypatch, scale=1.0, **kwargs):
    means, labels, images = gaussian_data()
    gen = torch.Generator().manual_seed(1)
    net = FreeF(scale * torch.randn(images.shape, generator=gen, dtype=torch.float64))
    objective = ContinuousConsistencyTraining(KarrasPrecond(), **kwargs)
    if hasattr(objective, 'weight_net'):
        objective.weight_net = seeded_weight_net()
    return objective, net, images, labels, Spy(monkeypatch)


def test_update_moves_f_along_the_tangent_with_the_weighted_size(monkeypatch):
    """sCM's gradient is -prior(t) e^{-u(t)} (2/M) g ∂F/∂θ: a descent step moves
    each F_i along +g_i (cosine 1), by a size whose ratio to σ_i^-1 e^{-u_i} is
    the same 2/M for every sample."""
    objective, net, images, labels, spy = free_setup(monkeypatch, tangent_warmup=10)
    out = run(objective, net, images, labels, step=4)
    out['loss'].sum().backward()
    g = spy.g.double()
    descent = -net.values.grad  # -dL/dF (F_trig = -F_edm = values)
    cosine = (descent * g).flatten(1).sum(1) / (descent.flatten(1).norm(dim=1)
                                                * g.flatten(1).norm(dim=1))
    torch.testing.assert_close(cosine, torch.ones_like(cosine), rtol=0, atol=1e-6)
    t = spy.args[4]
    sigma = SD * torch.tan(t)
    with torch.no_grad():
        u = objective.weight_net(torch.log(sigma)).double()
    size = descent.flatten(1).norm(dim=1) / g.flatten(1).norm(dim=1)
    m = images[0].numel()
    torch.testing.assert_close(size * sigma * torch.exp(u), torch.full_like(size, 2 / m),
                               rtol=1e-5, atol=0)
    assert u.abs().min() > 0.05  # the adaptive weight is not trivially 0


def test_warmup_ramps_the_second_term(monkeypatch):
    """At step 0 of a warm-up only the first term, -cos² t (σ_d F - dx/dt), is
    in g (F constant: dF/dt = 0); half-way the logged weight is 1/2."""
    objective, net, images, labels, spy = free_setup(monkeypatch, tangent_warmup=10)
    out = run(objective, net, images, labels, step=0)
    assert out['tangent_warmup'].item() == 0.0
    F_minus, _, _, dxdt = spy.args[:4]  # noqa: N806
    first = -(SD * F_minus - dxdt)
    cosine = (first * spy.g).flatten(1).sum(1) / (first.flatten(1).norm(dim=1)
                                                  * spy.g.flatten(1).norm(dim=1))
    torch.testing.assert_close(cosine, torch.ones_like(cosine), rtol=0, atol=1e-6)
    assert run(objective, net, images, labels, step=5)['tangent_warmup'].item() == 0.5
    assert run(objective, net, images, labels, step=50)['tangent_warmup'].item() == 1.0


def test_tangent_is_normalised(monkeypatch):
    """g / (rms(g) + c): the normalised tangent has rms below 1 however large the
    raw one (F of size 100 here: rms(g) = r / (r + 0.1) near 1)."""
    objective, net, images, labels, spy = free_setup(monkeypatch, scale=100.0,
                                                     tangent_warmup=10)
    run(objective, net, images, labels, step=10)
    rms = spy.g.flatten(1).pow(2).mean(1).sqrt()
    assert (rms < 1).all() and (rms > 0.9).all(), rms


def test_time_distribution_is_lognormal_in_sigma():
    """t = arctan(σ / σ_d) with ln σ ~ N(p_mean, p_std²): σ_d tan t has that log-mean
    and log-std (40k draws)."""
    objective = ContinuousConsistencyTraining(KarrasPrecond(), p_mean=-1.0, p_std=1.4)
    torch.manual_seed(0)
    t = objective.sample_t(40_000, 'cpu').double()
    assert ((t > 0) & (t < math.pi / 2)).all()
    log_sigma = torch.log(SD * torch.tan(t))
    assert float(log_sigma.mean()) == pytest.approx(-1.0, abs=0.03)
    assert float(log_sigma.std()) == pytest.approx(1.4, abs=0.03)


@pytest.mark.parametrize('prior', [True, False])
def test_adaptive_weighting_is_minimised_at_the_log_of_the_weighted_loss(prior, monkeypatch):
    """loss(u) = l e^{-u} + u is smallest at u = ln l: with u a constant (the
    MLP's bias b), the gradient in b vanishes at b = ln l, for every l."""
    objective, net, images, labels, spy = free_setup(monkeypatch, tangent_warmup=10,
                                                     prior_weighting=prior)
    nn.init.zeros_(objective.weight_net.mlp[-1].weight)  # u = b for every t
    bias = objective.weight_net.mlp[-1].bias
    for i in range(len(images)):  # one sample at a time, the same draws each run
        with torch.no_grad():
            bias.zero_()
        one = FreeF(net.values[i:i + 1].detach())
        weighted = run(objective, one, images[i:i + 1], labels[i:i + 1], step=3,
                       seed=i)['loss'].item()  # u = 0: the weighted loss l
        assert weighted > 0
        with torch.no_grad():
            bias.fill_(math.log(weighted))
        objective.weight_net.zero_grad()
        out = run(objective, one, images[i:i + 1], labels[i:i + 1], step=3, seed=i)['loss']
        out.sum().backward()
        assert abs(float(bias.grad)) < 1e-6
        assert out.item() == pytest.approx(1 + math.log(weighted), rel=1e-6, abs=1e-9)
