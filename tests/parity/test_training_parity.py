"""Training objectives and schedules against the original code's values."""
import numpy as np
import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond
from mmagic_cm.testing import load_ref, reference_unet
from mmagic_cm.training.losses import build_metric, consistency_loss, edm_loss
from mmagic_cm.training.schedules import OriginalSchedule

REF = 'training_losses.npz'


def denoiser_of(unet, precond, y):
    return lambda x, sigma: precond.denoise(unet, x, sigma, y=y)[1]


@pytest.mark.parametrize('case', ['ct/l1', 'ct/l2', 'ct/l2-32', 'cd/l1', 'cd/l2', 'cd/l2-32',
                                  'cd_karras/l2'])
def test_consistency_loss_matches_original(case):
    ref, meta = load_ref(REF)
    c = meta['consistency_cases'][case]
    y = torch.from_numpy(ref['labels'])
    online = reference_unet('tiny_cond', 0).train()
    target = reference_unet('tiny_cond', c['target_weight_seed']).train().requires_grad_(False)
    student = KarrasPrecond(boundary_condition=True)
    teacher = None
    if c['teacher']:
        t_unet = reference_unet('tiny_cond', c['teacher_weight_seed']).eval()
        teacher = denoiser_of(t_unet, KarrasPrecond(boundary_condition=False), y)
    loss = consistency_loss(
        denoiser_of(online, student, y), denoiser_of(target, student, y),
        torch.from_numpy(ref['x_start']), c['num_scales'], torch.from_numpy(ref['noise']),
        torch.from_numpy(ref[c['indices_key']]), build_metric(c['loss_norm']),
        teacher=teacher, weighting=c['weight_schedule'])
    np.testing.assert_allclose(loss.detach().numpy(), ref[f'{case}/loss'], rtol=2e-5,
                               atol=1e-7)
    loss.sum().backward()  # gradients reach the online network only
    assert online.out[-1].weight.grad is not None
    assert target.out[-1].weight.grad is None


def test_edm_loss_matches_original():
    ref, _ = load_ref(REF)
    unet = reference_unet('tiny_cond', 0).train()
    den = KarrasPrecond(boundary_condition=False, weight_schedule='karras')
    y = torch.from_numpy(ref['labels'])
    loss = edm_loss(denoiser_of(unet, den, y), torch.from_numpy(ref['x_start']),
                    torch.from_numpy(ref['edm/sigmas']), torch.from_numpy(ref['noise']),
                    'karras', 0.5)
    np.testing.assert_allclose(loss.detach().numpy(), ref['edm/loss'], rtol=2e-5)


@pytest.mark.parametrize('name,kwargs', [
    ('fixed_fixed', dict(target_ema_mode='fixed', scale_mode='fixed', start_ema=0.95,
                         start_scales=40, end_scales=40, total_steps=600000)),
    ('fixed_progressive', dict(target_ema_mode='fixed', scale_mode='progressive',
                               start_ema=0.95, start_scales=2, end_scales=200,
                               total_steps=10000)),
    ('adaptive_progressive', dict(target_ema_mode='adaptive', scale_mode='progressive',
                                  start_ema=0.95, start_scales=2, end_scales=150,
                                  total_steps=10000)),
])
def test_schedule_matches_create_ema_and_scales_fn(name, kwargs):
    ref, _ = load_ref(REF)
    schedule = OriginalSchedule(**kwargs)
    got = [schedule(int(k)) for k in ref['schedule/steps']]
    np.testing.assert_array_equal([n for _, n in got], ref[f'schedule/{name}/scales'])
    np.testing.assert_allclose([m for m, _ in got], ref[f'schedule/{name}/ema'], rtol=1e-15)
