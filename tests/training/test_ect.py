"""ECT: loss parity with locuslab/ect's ECMLoss, its r(t) schedule, shared dropout."""
import pytest
import torch

from mmagic_cm.testing import ECT_CASES, load_ref, tiny_ect_denoiser
from mmagic_cm.training.dropout import SharedDropout
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
