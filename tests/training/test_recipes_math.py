"""The training recipes' formulas against known numbers, closed forms and
independent constructions (not copies of the code's formulas): EMA updates,
iCT's weights and pseudo-Huber constant, the lognormal timestep distribution,
CD's teacher and its Heun step, ECT's weighting, metric and r(t) mapping."""
import math
from statistics import NormalDist
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.files.checkpoint import ema_key
from mmagic_cm.models import ConsistencyModel
from mmagic_cm.testing import tiny_ect_denoiser
from mmagic_cm.training.hooks import ConsistencyEMAHook
from mmagic_cm.training.losses import (
    PseudoHuberLoss,
    consistency_loss,
    ect_loss,
    euler_step,
    heun_step,
)
from mmagic_cm.training.objectives import (
    ConsistencyDistillation,
    ConsistencyTraining,
    EasyConsistencyTuning,
    update_ema,
)
from mmagic_cm.training.schedules import ECTSchedule, lognormal_indices

SD = 0.5  # σ_data


def karras_grid(n, sigma_min=0.002, sigma_max=80.0, rho=7.0):
    """Descending Karras grid of n points, float64, written out here."""
    i = np.arange(n, dtype=np.float64)
    hi, lo = sigma_max**(1 / rho), sigma_min**(1 / rho)
    return (hi + i / (n - 1) * (lo - hi))**rho


def edm_scalings(sigma):
    """Plain EDM (Karras et al. 2022, table 1) c_skip, c_out, c_in."""
    return (SD**2 / (sigma**2 + SD**2), sigma * SD / (sigma**2 + SD**2).sqrt(),
            1 / (sigma**2 + SD**2).sqrt())


# ------------------------------------------------------------------------- EMA
def test_one_ema_update_with_known_numbers():
    target, online = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        target.weight.copy_(torch.tensor([[1.0, 2.0]]))
        online.weight.copy_(torch.tensor([[3.0, -1.0]]))
    update_ema(target, online, 0.95)  # 95% old target, 5% online
    torch.testing.assert_close(target.weight, torch.tensor([[1.1, 1.85]]))
    torch.testing.assert_close(online.weight, torch.tensor([[3.0, -1.0]]))


def test_ct_target_moves_five_percent_toward_the_online_network():
    """The original recipe's target EMA mu = 0.95: after one step the target
    holds 95% of its old weights."""
    objective = ConsistencyTraining(KarrasPrecond(boundary_condition=True),
                                    schedule=dict(type='original', start_ema=0.95))
    online = nn.Linear(3, 3)
    objective.make_copies(online)
    before = [p.detach().clone() for p in objective.target_unet.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)  # the online network moved by 1 everywhere
    objective.after_step(online, 0)
    for old, new in zip(before, objective.target_unet.parameters()):
        torch.testing.assert_close(new, old + 0.05)


def test_sampling_ema_copies_move_at_their_rates():
    """The model's EMA copies (``ema_rates``): rate * old + (1 - rate) * online."""
    unet = dict(type='ConsistencyUNetModel', image_size=8, model_channels=32,
                num_res_blocks=1, attention_resolutions='', channel_mult='1')
    model = ConsistencyModel(unet, dict(type='KarrasPrecond'),
                             training_mode='consistency_training',
                             train_cfg=dict(ema_rates=(0.9, 0.5)),
                             data_preprocessor=nn.Identity())
    model.ensure_training_copies()
    with torch.no_grad():
        model.after_optimizer_step()  # the first update copies the online weights
        for p in model.unet.parameters():
            p.zero_()
        for ema in model.ema_unets.values():
            for p in ema.module.parameters():
                p.fill_(1.0)
        model.after_optimizer_step()
    for rate in (0.9, 0.5):  # rate * 1 (old) + (1 - rate) * 0 (online)
        values = torch.cat([p.flatten() for p in model.ema_unets[ema_key(rate)]
                            .module.parameters()])
        torch.testing.assert_close(values, torch.full_like(values, rate))


def test_ema_hook_after_two_iterations():
    """Through the training hook, as a run calls it: after the first update
    (a copy), two more with the online weights at 0 leave rate² of the old 1."""
    unet = dict(type='ConsistencyUNetModel', image_size=8, model_channels=32,
                num_res_blocks=1, attention_resolutions='', channel_mult='1')
    model = ConsistencyModel(unet, dict(type='KarrasPrecond'),
                             training_mode='consistency_training',
                             train_cfg=dict(ema_rates=(0.8, )), data_preprocessor=nn.Identity())
    runner = SimpleNamespace(model=model)
    hook = ConsistencyEMAHook()
    hook.after_train_iter(runner, 0)
    with torch.no_grad():
        for p in model.unet.parameters():
            p.zero_()
        for p in model.ema_unets[ema_key(0.8)].module.parameters():
            p.fill_(1.0)
    hook.after_train_iter(runner, 1)
    hook.after_train_iter(runner, 2)
    values = torch.cat([p.flatten() for p in model.ema_unets[ema_key(0.8)].module.parameters()])
    torch.testing.assert_close(values, torch.full_like(values, 0.64))
    assert int(model.train_step_count) == 3


# ------------------------------------------------------------------------- iCT
def test_improved_weights_are_positive_and_the_papers():
    """Song & Dhariwal 2023: λ(σ_i) = 1 / (σ_{i+1} - σ_i) on the ascending grid,
    i.e. 1 / (t - t2) > 0 for t > t2 here."""
    n = 11
    grid = karras_grid(n)
    indices = torch.arange(n - 1)
    x = torch.zeros(n - 1, 1, 2, 2)

    def ones(a, b):
        return torch.ones(len(a))

    weights = consistency_loss(lambda x, s: x, lambda x, s: x, x, n, torch.zeros_like(x),
                               indices, ones, weighting='improved')
    expected = 1 / (grid[:-1] - grid[1:])
    assert (weights > 0).all()
    np.testing.assert_allclose(weights.double().numpy(), expected, rtol=1e-4)


def test_improved_ct_loss_is_never_negative():
    den, x, y = tiny_ect_denoiser()
    objective = ConsistencyTraining(den.precond, loss='pseudo-huber', weighting='improved',
                                    schedule=dict(type='improved', s0=10, s1=20,
                                                  total_steps=10),
                                    noise_sampler=dict(type='lognormal'))
    torch.manual_seed(0)
    loss = objective(den.net, x, y, step=3)['loss']
    assert (loss >= 0).all() and loss.sum() > 0


@pytest.mark.parametrize('size,paper_c', [(32, 0.03), (64, 0.06)])
def test_pseudo_huber_constant_is_the_papers(size, paper_c):
    """c = 0.00054 √d: 0.03 for 32x32x3 (iCT paper, CIFAR-10), 0.06 for 64x64x3;
    c read back from the metric: L = sqrt(s + c²) - c  <=>  c = (s - L²) / 2L."""
    x = torch.zeros(1, 3, size, size)
    y = x.clone()
    y[0, 0, 0, 0] = 0.6
    y[0, 1, 0, 0] = 0.8  # squared distance s = 1
    loss = float(PseudoHuberLoss()(x, y))
    c = (1 - loss**2) / (2 * loss)
    assert c == pytest.approx(paper_c, rel=0.01)
    assert float(PseudoHuberLoss()(x, x)) == 0


def test_pseudo_huber_is_quadratic_near_zero_with_curvature_one_over_2c():
    """For small squared distances s, sqrt(s + c²) - c ≈ s / 2c: at the digits'
    16x16x3 (d = 768) the improved recipe's c is 0.00054 · 27.71 = 0.014965."""
    x = torch.zeros(2, 3, 16, 16)
    y = x.clone()
    y[:, 0, 0, 0] = 1e-4  # s = 1e-8
    loss = PseudoHuberLoss()(x, y)
    torch.testing.assert_close(loss, torch.full((2, ), 1e-8 / (2 * 0.014965)), rtol=1e-3,
                               atol=0)


@pytest.mark.parametrize('sigma_data', [0.5, 0.2])
def test_edm_karras_weight_is_one_over_c_out_squared(sigma_data):
    """EDM's λ(σ) = (σ² + σ_d²) / (σ σ_d)² = 1 / c_out²: the weighted loss is the
    network's F-space loss (σ = σ_d = 0.5: λ = 8)."""
    from mmagic_cm.training.losses import get_weightings
    sigmas = torch.tensor([0.002, 0.1, 0.5, 2.0, 80.0], dtype=torch.float64)
    _, c_out, _ = KarrasPrecond(sigma_data=sigma_data).get_scalings(sigmas)
    torch.testing.assert_close(get_weightings('karras', sigmas, sigma_data) * c_out**2,
                               torch.ones_like(sigmas))
    assert float(get_weightings('karras', torch.tensor([0.5]), 0.5)) == pytest.approx(8.0)


def test_lognormal_timesteps_follow_the_closed_form():
    """Index i (between σ_i > σ_{i+1}) has the lognormal mass of that interval,
    ln σ ~ N(-1.1, 2²), renormalised over the grid: frequencies of 200k draws
    against the normal CDF (``statistics.NormalDist``), and P(σ > 10)."""
    n, draws = 11, 200_000
    grid = karras_grid(n)
    cdf = NormalDist(-1.1, 2.0).cdf
    mass = np.array([cdf(math.log(grid[i])) - cdf(math.log(grid[i + 1]))
                     for i in range(n - 1)])
    p = mass / mass.sum()
    idx = lognormal_indices(n, draws, 0.002, 80.0, 7.0, p_mean=-1.1, p_std=2.0,
                            generator=torch.Generator().manual_seed(0))
    freq = np.bincount(idx.numpy(), minlength=n - 1) / draws
    np.testing.assert_allclose(freq, p, atol=5 * np.sqrt(p * (1 - p) / draws).max())
    above = grid[:-1] > 10  # intervals starting above σ = 10
    assert freq[above].sum() == pytest.approx(p[above].sum(), abs=0.003)
    assert 0.03 < p[above].sum() < 0.08


def test_lognormal_timesteps_on_ict_final_grid_are_a_truncated_lognormal():
    """On iCT's final grid (1281 points) the sampled ln σ has the mean and
    standard deviation of N(-1.1, 2²) truncated to [ln σ_min, ln σ_max]
    (scipy's truncnorm), to the grid's resolution."""
    from scipy.stats import truncnorm
    grid = karras_grid(1281)
    idx = lognormal_indices(1281, 100_000, 0.002, 80.0, 7.0, p_mean=-1.1, p_std=2.0,
                            generator=torch.Generator().manual_seed(1)).numpy()
    log_mid = (np.log(grid[idx]) + np.log(grid[idx + 1])) / 2
    a, b = (math.log(0.002) + 1.1) / 2.0, (math.log(80.0) + 1.1) / 2.0
    dist = truncnorm(a, b, loc=-1.1, scale=2.0)
    assert log_mid.mean() == pytest.approx(dist.mean(), abs=0.03)
    assert log_mid.std() == pytest.approx(dist.std(), abs=0.03)


def test_schedules_through_the_ct_objective():
    """The logged N(k) and mu(k) of a step: iCT's N(0) = s0 + 1 and N(K) = s1 + 1;
    the original adaptive target mu(k) = exp(s0 ln mu0 / N'(k)) with N'(K) = s1
    grid intervals: 0.95^(2/150) at the end."""
    den, x, y = tiny_ect_denoiser()
    improved = ConsistencyTraining(den.precond, schedule=dict(
        type='improved', s0=10, s1=1280, total_steps=8000), weighting='improved')
    torch.manual_seed(0)
    assert improved(den.net, x, y, step=0)['num_scales'].item() == 11
    assert improved(den.net, x, y, step=7999)['num_scales'].item() == 1281
    adaptive = ConsistencyTraining(den.precond, schedule=dict(
        type='original', target_ema_mode='adaptive', scale_mode='progressive',
        start_ema=0.95, start_scales=2, end_scales=150, total_steps=1000))
    adaptive.make_copies(den.net)
    out = adaptive(den.net, x, y, step=1000)
    assert out['num_scales'].item() == 151
    assert out['target_ema'].item() == pytest.approx(0.95**(2 / 150), rel=1e-6)


# -------------------------------------------------------------------------- CD
class GaussianTeacher(nn.Module):
    """The network whose plain-EDM denoiser is the exact D of Gaussian data
    N(μ_y, s² I): D(x, σ) = μ + s² / (s² + σ²) (x - μ); time input 250 ln σ."""

    def __init__(self, means, s):
        super().__init__()
        self.means, self.s = means, s

    def forward(self, x_in, time, y=None):
        sigma = torch.exp(time / 250)
        c_skip, c_out, c_in = (s.view(-1, 1, 1, 1) for s in edm_scalings(sigma))
        x = x_in / c_in
        mu = self.means[y]
        d = mu + self.s**2 / (self.s**2 + sigma.view(-1, 1, 1, 1)**2) * (x - mu)
        return (d - c_skip * x) / c_out


def gaussian_setup(n=6, s=0.3):
    gen = torch.Generator().manual_seed(5)
    means = torch.rand(10, 3, 4, 4, generator=gen, dtype=torch.float64) * 1.6 - 0.8
    labels = torch.arange(n) % 10
    return means, labels, s


def cd_objective(monkeypatch, teacher):
    objective = ConsistencyDistillation(KarrasPrecond(boundary_condition=True),
                                        teacher=dict(path='unused.pt'))
    monkeypatch.setattr(objective.frozen, 'get', lambda device='cpu': teacher)
    return objective


def test_cd_teacher_is_a_plain_edm_denoiser(monkeypatch):
    """The CD teacher's D(x, σ) is EDM's c_skip x + c_out F(c_in x, 250 ln σ),
    built here from the network, even at σ_min (where the student's
    boundary-condition scalings would give D = x)."""
    den, x, y = tiny_ect_denoiser()
    net = den.net.eval()
    teacher_d = cd_objective(monkeypatch, net).teacher_d(y, 'cpu')
    sigma = torch.tensor([0.002, 0.005, 0.1, 1.0, 10.0, 80.0])
    noisy = x + sigma.view(-1, 1, 1, 1) * torch.randn(x.shape, generator=torch.Generator()
                                                      .manual_seed(1))
    c_skip, c_out, c_in = (s.view(-1, 1, 1, 1) for s in edm_scalings(sigma))
    with torch.no_grad():
        expected = c_skip * noisy + c_out * net(c_in * noisy, 250 * torch.log(sigma), y=y)
        ours = teacher_d(noisy, sigma)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    assert (expected[0] - noisy[0]).abs().max() > 1e-4  # at σ_min the teacher denoises


def exact_gaussian_solution(x, mu, s, sigma_from, sigma_to):
    """The probability-flow ODE of N(μ, s²): (x - μ) / sqrt(s² + σ²) is constant."""
    ratio = ((s**2 + sigma_to**2) / (s**2 + sigma_from**2)).sqrt().view(-1, 1, 1, 1)
    return mu + ratio * (x - mu)


def test_heun_step_is_second_order():
    """One step of the probability-flow ODE of Gaussian data with its exact
    denoiser: Heun's error shrinks ~8x per halved step (third-order local
    error), Euler's ~4x; and Heun's is far below Euler's."""
    means, labels, s = gaussian_setup()
    mu = means[labels]
    x_start = mu + s * torch.randn(mu.shape, generator=torch.Generator().manual_seed(2),
                                   dtype=torch.float64)

    def exact_d(x, sigma):
        return mu + s**2 / (s**2 + sigma.view(-1, 1, 1, 1)**2) * (x - mu)

    t = torch.full((6, ), 1.0, dtype=torch.float64)
    x_t = x_start + t.view(-1, 1, 1, 1) * torch.randn(
        mu.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    errors = {}
    for name, step in (('heun', heun_step), ('euler', euler_step)):
        errors[name] = []
        for h in (0.2, 0.1, 0.05):
            t2 = t - h
            out = step(exact_d, x_t, t, t2, x_start)
            errors[name].append(float((out - exact_gaussian_solution(x_t, mu, s, t, t2))
                                      .abs().max()))
    heun, euler = errors['heun'], errors['euler']
    assert 6 < heun[0] / heun[1] < 10 and 6 < heun[1] / heun[2] < 10, heun
    assert 3 < euler[0] / euler[1] < 5, euler
    assert heun[2] < euler[2] / 20


def test_cd_loss_vanishes_with_an_exact_teacher_and_consistency_function(monkeypatch):
    """Gaussian data: the teacher is its exact EDM denoiser (a network inside
    the teacher's scalings), online = target = the exact consistency function
    (to σ_min). CD's loss is then Heun's local error only: tiny, and far below
    an Euler step's."""
    means, labels, s = gaussian_setup()
    objective = cd_objective(monkeypatch, GaussianTeacher(means, s))
    teacher = objective.teacher_d(labels, 'cpu')
    mu = means[labels]

    def f(x, sigma):  # the exact consistency function with f(x, σ_min) = x
        return exact_gaussian_solution(x, mu, s, sigma, torch.full_like(sigma, 0.002))

    gen = torch.Generator().manual_seed(4)
    x_start = mu + s * torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    noise = torch.randn(mu.shape, generator=gen, dtype=torch.float64)
    indices = torch.tensor([12, 16, 20, 24, 28, 32])
    metric = objective.loss_metric
    loss = consistency_loss(f, f, x_start, 40, noise, indices, metric, teacher=teacher)
    # for scale: the error of an Euler step of the same teacher
    t = torch.from_numpy(karras_grid(40)[indices.numpy()])
    t2 = torch.from_numpy(karras_grid(40)[indices.numpy() + 1])
    x_t = x_start + noise * t.view(-1, 1, 1, 1)
    with torch.no_grad():
        euler_err = metric(f(euler_step(teacher, x_t, t, t2, x_start), t2),
                           f(exact_gaussian_solution(x_t, mu, s, t, t2), t2))
    assert (loss < euler_err / 8).all(), (loss, euler_err)
    assert loss.max() < 5e-7


# ------------------------------------------------------------------------- ECT
def test_ect_loss_is_the_slope_whatever_t_and_r():
    """A network whose D(x + σ n, σ) moves linearly in σ, μ + σ k: the
    distance between the two levels is (t - r) ‖k‖ (or t ‖k‖ against the clean
    image μ at r = 0), so ECT's loss, distance / (t - r), is ‖k‖ for every
    sample, at every stage."""
    gen = torch.Generator().manual_seed(6)
    mu = torch.rand(6, 3, 4, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(6, 3, 4, 4, generator=gen, dtype=torch.float64)
    noise = torch.randn(6, 3, 4, 4, generator=gen, dtype=torch.float64)

    def online(x, sigma):
        return mu + sigma.view(-1, 1, 1, 1) * k

    t = torch.tensor([0.01, 0.1, 0.5, 2.0, 10.0, 80.0], dtype=torch.float64)
    for step in (0, 3, 12):
        r = ECTSchedule(q=2, double=4)(t, step)
        assert (r == 0).any() or step > 0
        loss = ect_loss(online, mu, t, r, noise)
        torch.testing.assert_close(loss, k.flatten(1).norm(dim=1))


def test_ect_target_at_r_zero_is_the_clean_image():
    """Where r = 0 the target is the clean image, not the network at σ = 0: a
    network off by 0.5 everywhere, μ + σ k + 0.5, has loss ‖t k + 0.5‖ / t
    there, and ‖k‖ where r > 0."""
    gen = torch.Generator().manual_seed(9)
    mu = torch.rand(6, 3, 4, 4, generator=gen, dtype=torch.float64)
    k = torch.randn(6, 3, 4, 4, generator=gen, dtype=torch.float64)

    def online(x, sigma):
        return mu + sigma.view(-1, 1, 1, 1) * k + 0.5

    t = torch.tensor([0.01, 0.1, 0.5, 2.0, 10.0, 80.0], dtype=torch.float64)
    r = ECTSchedule(q=2, double=4)(t, 0)
    zero = r == 0
    assert zero.any() and (~zero).any()
    loss = ect_loss(online, mu, t, r, torch.randn(mu.shape, generator=gen,
                                                  dtype=torch.float64))
    to_clean = (t.view(-1, 1, 1, 1) * k + 0.5).flatten(1).norm(dim=1) / t
    torch.testing.assert_close(loss, torch.where(zero, to_clean, k.flatten(1).norm(dim=1)))


def test_ect_pseudo_huber_is_zero_at_the_exact_consistency_function():
    """One image per class: D = μ at every level is exact; the loss is 0 with
    the metric's offset c > 0 too (sqrt(0 + c²) - c)."""
    mu = torch.rand(6, 3, 4, 4, generator=torch.Generator().manual_seed(7))
    t = torch.tensor([0.01, 0.1, 0.5, 2.0, 10.0, 80.0])
    r = ECTSchedule(q=2, double=4)(t, 5)
    loss = ect_loss(lambda x, sigma: mu, mu, t, r, torch.randn_like(mu), c=0.06)
    assert loss.abs().max() < 1e-6


def test_ect_sigmoid_mapping_limits():
    """r = t (1 - q^-(s+1) (1 + k sigmoid(-b t))): for large t the sigmoid
    vanishes (the constant mapping, t - r = t / q^(s+1)); for t -> 0 it is 1/2."""
    sched = ECTSchedule(q=2, double=10, mapping='sigmoid', k=8, b=1)
    for stage in (0, 3, 6):
        t = torch.tensor([60.0, 80.0])
        torch.testing.assert_close(sched(t, 10 * stage), t * (1 - 0.5**(stage + 1)))
        small = torch.tensor([1e-6])
        expected = max(0.0, 1 - 0.5**(stage + 1) * (1 + 8 / 2))
        assert float(sched(small, 10 * stage) / small) == pytest.approx(expected, abs=1e-5)


def test_ect_objective_weighting_through_the_model():
    """The ECT objective with a network whose boundary-scaled D is μ + (σ - σ_min) k:
    the loss is ‖k‖ where r > 0 and ‖k‖ (t - σ_min) / t against the clean image
    where r = 0 (t drawn first, as the objective documents)."""
    gen = torch.Generator().manual_seed(8)
    mu = torch.rand(16, 3, 4, 4, generator=gen) * 2 - 1
    k = torch.randn(16, 3, 4, 4, generator=gen) * 0.1
    precond = KarrasPrecond(boundary_condition=True)

    class Linear(nn.Module):
        def forward(self, x_in, time, y=None):
            sigma = torch.exp(time / 250).view(-1, 1, 1, 1)
            c_skip, c_out, c_in = (s.view(-1, 1, 1, 1) for s in precond.scalings(
                sigma.flatten()))
            x = x_in / c_in
            return (mu + (sigma - 0.002) * k - c_skip * x) / c_out

    objective = EasyConsistencyTuning(precond, double=2, p_mean=-1.0, p_std=1.5)
    torch.manual_seed(0)
    t = (torch.randn([16, 1, 1, 1]) * 1.5 - 1.0).exp().flatten()
    r = objective.schedule(t, 1)
    assert (r == 0).any() and (r > 0).any() and (t < 0.1).any()
    torch.manual_seed(0)
    loss = objective(Linear(), mu, None, step=1)['loss']
    norm = k.flatten(1).norm(dim=1)
    expected = torch.where(r > 0, norm, norm * (t - 0.002) / t)
    torch.testing.assert_close(loss, expected, rtol=1e-3, atol=1e-5)
