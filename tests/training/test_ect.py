"""ECT: loss parity with locuslab/ect's ECMLoss (CIFAR-10 and ImageNet-64 branches), its
r(t) schedule, its weightings and scalings, shared dropout."""
import pytest
import torch

from mmagic_cm.testing import ECT_CASES, load_ref, tiny_ect_denoiser
from mmagic_cm.training.dropout import SharedDropout
from mmagic_cm.training.losses import ect_loss, ect_weights
from mmagic_cm.training.objectives import EasyConsistencyTuning
from mmagic_cm.training.schedules import ECTSchedule


@pytest.mark.parametrize('name', sorted(ECT_CASES))
def test_loss_matches_locuslab_ect(name):
    """Same seed, inputs and stage: the same per-sample losses and gradient as
    their ECMLoss (fixture: tools/reference/make_ect_fixtures.py)."""
    arrays, _ = load_ref('ect_loss.npz')
    case = ECT_CASES[name]
    denoiser, images, labels = tiny_ect_denoiser()
    objective = EasyConsistencyTuning(
        denoiser.precond, p_mean=case['p_mean'], p_std=case['p_std'], q=case['q'], double=5,
        mapping=case['mapping'], k=case['k'], b=case['b'], c=case['c'])
    torch.manual_seed(case['seed'])
    out = objective(denoiser.net, images, labels, step=5 * case['stage'] + 4)
    assert out['stage'].item() == case['stage']
    out['loss'].sum().backward()
    ref_loss = torch.from_numpy(arrays[f'{name}/loss'])
    # float32 sums in another order (thread count) move the last digits only
    torch.testing.assert_close(out['loss'].double(), ref_loss, rtol=1e-5, atol=1e-5)
    ref_grad = torch.from_numpy(arrays[f'{name}/grad'])
    torch.testing.assert_close(denoiser.net.out[2].weight.grad, ref_grad, rtol=1e-4,
                               atol=1e-5 * float(ref_grad.abs().max()))


def test_r_schedule_halves_the_gap_per_stage():
    t = torch.tensor([0.01, 0.5, 2.0, 80.0])
    const = ECTSchedule(q=2, double=100, mapping='const')
    for stage in range(4):
        r = const(t, 100 * stage)
        torch.testing.assert_close(t - r, t / 2**(stage + 1))
    sig = ECTSchedule(q=2, double=100, mapping='sigmoid', k=8, b=1)
    r = sig(t, 0)
    assert r[0] == 0 and (r >= 0).all() and (r < t).all()  # small t: r clamps to 0
    assert (sig(t, 700) > r).all() or (sig(t, 700)[1:] > r[1:]).all()
    with pytest.raises(ValueError, match='mapping'):
        ECTSchedule(mapping='cosine')


def test_shared_dropout_replays_the_recorded_masks():
    net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Dropout(0.5),
                              torch.nn.Linear(64, 64), torch.nn.Dropout(0.5))
    x = torch.randn(4, 8)
    shared = SharedDropout(net)
    torch.manual_seed(0)
    with shared.record():
        a = net(x)
    torch.manual_seed(0)
    assert torch.equal(a, net(x))  # the same draws as plain CPU dropout
    with shared.replay():
        b = net(x)
    assert torch.equal(a, b)
    with shared.replay():
        assert torch.equal(net(x), a) and torch.equal(net(x), a)  # passes start over
    with shared.replay(), pytest.raises(RuntimeError, match='shape'):
        net(x[:2])
    with SharedDropout(net).replay(), pytest.raises(RuntimeError, match='record'):
        net(x)
    net.eval()  # eval mode: nothing patched, no dropout
    with shared.replay():
        assert torch.equal(net(x), net[2](net[0](x)))


def test_imagenet_loss_matches_locuslab_ect_imgnet():
    """Weighting 'snrpk' with plain EDM scalings: the same per-sample losses and
    gradient as the ECMLoss of their ImageNet-64 branch (``wt='snrpk'``;
    fixture: tools/reference/make_ect_imgnet_fixtures.py)."""
    arrays, meta = load_ref('ect_imgnet_loss.npz')
    assert meta['cases']
    for name, case in meta['cases'].items():
        denoiser, images, labels = tiny_ect_denoiser()
        objective = EasyConsistencyTuning(
            denoiser.precond, p_mean=case['p_mean'], p_std=case['p_std'], q=case['q'],
            double=5, mapping=case['mapping'], k=case['k'], b=case['b'], c=case['c'],
            weighting='snrpk', scalings='edm')
        torch.manual_seed(case['seed'])
        out = objective(denoiser.net, images, labels, step=5 * case['stage'] + 4)
        out['loss'].sum().backward()
        torch.testing.assert_close(out['loss'].double(),
                                   torch.from_numpy(arrays[f'{name}/loss']),
                                   rtol=1e-5, atol=1e-5, msg=name)
        ref_grad = torch.from_numpy(arrays[f'{name}/grad'])
        torch.testing.assert_close(denoiser.net.out[2].weight.grad, ref_grad, rtol=1e-4,
                                   atol=1e-5 * float(ref_grad.abs().max()), msg=name)


def test_snrpk_weights_by_hand():
    """SNR(t) + 1/σ_d² = 1/t² + 4 at σ_d = 0.5: 8 at t = 0.5, 5 at t = 1, 104 at
    t = 0.1, 4.0625 at t = 4; the default stays 1/(t − r)."""
    t = torch.tensor([0.5, 1.0, 0.1, 4.0], dtype=torch.float64)
    r = t / 2
    torch.testing.assert_close(ect_weights(t, r, 'snrpk', 0.5),
                               torch.tensor([8.0, 5.0, 104.0, 4.0625], dtype=torch.float64))
    torch.testing.assert_close(ect_weights(t, r), 2 / t)
    # the loss: an identity 'network' makes f(x_t) - f(x_r) = (t - r) n exactly
    x = torch.zeros(4, 3, 2, 2, dtype=torch.float64)
    n = torch.ones_like(x)  # |n| = sqrt(12)
    loss = ect_loss(lambda x, s: x, x, t, r, n, weighting='snrpk', sigma_data=0.5)
    torch.testing.assert_close(loss, (t / 2) * 12**0.5 * torch.tensor([8.0, 5.0, 104.0, 4.0625],
                                                                     dtype=torch.float64))
    torch.testing.assert_close(ect_loss(lambda x, s: x, x, t, r, n),
                               torch.full((4, ), 12**0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match='weighting'):
        ect_loss(lambda x, s: x, x, t, r, n, weighting='snr')
    with pytest.raises(ValueError, match='weighting'):
        EasyConsistencyTuning(tiny_ect_denoiser()[0].precond, weighting='karas')
    with pytest.raises(ValueError, match='scalings'):
        EasyConsistencyTuning(tiny_ect_denoiser()[0].precond, scalings='plain')


class Zero(torch.nn.Module):
    """F = 0: the denoiser is c_skip(σ) x, which shows the scalings."""

    def forward(self, x, t, y=None):
        return torch.zeros_like(x)


@pytest.mark.parametrize('scalings', ['boundary', 'edm'])
def test_ect_trains_through_the_chosen_scalings(scalings):
    """c_skip by hand: EDM's σ_d²/(σ² + σ_d²) (locuslab/ect's ECMPrecond in
    training, their EDM2 Precond) or the boundary one σ_d²/((σ − σ_min)² + σ_d²)."""
    precond = tiny_ect_denoiser()[0].precond  # boundary condition, σ_min 0.002
    objective = EasyConsistencyTuning(precond, p_mean=-1.0, p_std=1.5, q=2.0, double=10,
                                      mapping='const', weighting='inverse-gap',
                                      scalings=scalings)
    x = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    torch.manual_seed(3)
    loss = objective(Zero(), x, None, step=0)['loss']
    torch.manual_seed(3)  # the objective's draws: t, then the noise
    t = (torch.randn([5, 1, 1, 1]) * 1.5 - 1.0).exp()
    n = torch.randn_like(x)
    r = t / 2  # const mapping, stage 0, q = 2
    shift = 0.0 if scalings == 'edm' else 0.002

    def c_skip(s):
        return 0.25 / ((s - shift)**2 + 0.25)

    diff = c_skip(t) * (x + t * n) - c_skip(r) * (x + r * n)
    expected = diff.flatten(1).norm(dim=1) / (t - r).flatten()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
