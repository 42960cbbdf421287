"""sCM's tangent and loss against NVlabs FastGen's own code (fixture:
tools/reference/make_scm_fixtures.py runs their ``SCMModel._compute_scm_loss``)."""
import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.testing import SCM_CASES, SCM_P_MEAN, SCM_P_STD, load_ref, tiny_scm_setup
from mmagic_cm.training.scm import (
    ContinuousConsistencyDistillation,
    ContinuousConsistencyTraining,
    scm_tangent,
)


def ref(name, key):
    arrays, _ = load_ref('scm_loss.npz')
    return torch.from_numpy(arrays[f'{name}/{key}'])


@pytest.mark.parametrize('name', sorted(k for k, c in SCM_CASES.items() if c['tangent']))
def test_tangent_matches_fastgen(name):
    """The normalised tangent g from FastGen's own inputs (F, cos t sin t dF/dt,
    x_t, dx_t/dt, t, warm-up), fp64: the same to rounding."""
    g = scm_tangent(ref(name, 'tangent/F'), ref(name, 'tangent/dF'), ref(name, 'tangent/x_t'),
                    ref(name, 'tangent/dxdt'), ref(name, 'tangent/t'), 0.5,
                    float(ref(name, 'warmup')), 0.1, 'rms')
    torch.testing.assert_close(g, ref(name, 'tangent/g'), rtol=1e-10, atol=1e-12)
    assert ref(name, 'tangent/g').abs().max() > 0.05  # a tangent that is not ~0


@pytest.mark.parametrize('name', sorted(SCM_CASES))
def test_objective_matches_fastgen(name, monkeypatch):
    """The whole objective, same seed and networks: time draw, x_t, dx_t/dt (data
    or teacher), the JVP, the tangent, warm-up, prior and adaptive weighting give
    FastGen's per-sample loss and gradients."""
    case = SCM_CASES[name]
    net, teacher, weight_net, images, labels = tiny_scm_setup()
    kwargs = dict(p_mean=SCM_P_MEAN, p_std=SCM_P_STD, tangent='jvp',
                  tangent_warmup=case['warmup'], tangent_norm='rms', tangent_norm_const=0.1,
                  prior_weighting=case['prior'], adaptive_weighting=case['adaptive'])
    if case['cd']:
        objective = ContinuousConsistencyDistillation(
            KarrasPrecond(), teacher=dict(path='unused.pt'), **kwargs)
        monkeypatch.setattr(objective.frozen, 'get', lambda device: teacher)
    else:
        objective = ContinuousConsistencyTraining(KarrasPrecond(), **kwargs)
    if case['adaptive']:
        objective.weight_net.load_state_dict(weight_net.state_dict())
        objective.weight_net.double()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(case['seed'])
        out = objective(net, images, labels, step=case['step'])
    finally:
        torch.set_default_dtype(torch.float32)
    assert out['tangent_warmup'].item() == pytest.approx(float(ref(name, 'warmup')))
    # our tangent and squared error are float32: agreement to ~1e-6
    torch.testing.assert_close(out['loss'].double(), ref(name, 'loss'), rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(out['unweighted'].double(), ref(name, 'unweighted').mean(),
                               rtol=2e-5, atol=1e-7)
    out['loss'].sum().backward()
    for key, grad in (('grad_out', net.out[2].weight.grad),
                      ('grad_in', net.input_blocks[0][0].weight.grad)):
        expected = ref(name, key)
        torch.testing.assert_close(grad.double(), expected, rtol=1e-4,
                                   atol=1e-4 * float(expected.abs().max()))
    if case['adaptive']:
        expected = ref(name, 'grad_weight_net')
        torch.testing.assert_close(objective.weight_net.mlp[0].weight.grad.double(), expected,
                                   rtol=1e-4, atol=1e-4 * float(expected.abs().max()))
