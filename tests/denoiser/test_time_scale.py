"""The network's time input: 250 ln σ (the original's networks) or a
low-frequency ln σ / 4 (``precond.time_scale``, NVlabs EDM's ADM)."""
import math

import numpy as np
import pytest
import torch

from mmagic_cm.denoiser import KarrasPrecond, TrigFlowPrecond
from mmagic_cm.denoiser.precond import Denoiser, build_precond
from mmagic_cm.training.scm import ContinuousConsistencyDistillation

SIGMAS = [0.002, 0.05, 0.5, 1.0, 7.3, 80.0]


class Spy(torch.nn.Module):
    """A 'network' that records its time input and returns zeros."""

    def forward(self, x, t, **cond):
        self.t = t.clone()
        return torch.zeros_like(x)


def test_default_time_input_is_the_originals():
    """The original's ``1000 * 0.25 * th.log(sigma + 1e-44)``, evaluated in
    float64 NumPy here (torch's and NumPy's log may differ in the last bit)."""
    got = KarrasPrecond().time_input(torch.tensor(SIGMAS, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), 1000 * 0.25 * np.log(np.array(SIGMAS) + 1e-44),
                               rtol=1e-15)


@pytest.mark.parametrize('scale', [0.25, 1.0, 250.0])
def test_time_scale_reaches_the_network(scale):
    spy = Spy()
    den = Denoiser(spy, KarrasPrecond(time_scale=scale, boundary_condition=True))
    den(torch.zeros(len(SIGMAS), 3, 4, 4), torch.tensor(SIGMAS))
    np.testing.assert_allclose(spy.t.numpy(), [scale * math.log(s) for s in SIGMAS],
                               rtol=1e-6)


def test_time_scale_is_kept_by_the_other_scalings_and_by_configs():
    p = build_precond(dict(type='KarrasPrecond', time_scale=0.25), boundary_condition=True)
    assert p.time_scale == 0.25
    assert p.with_boundary_condition(False).time_scale == 0.25
    assert 'time_scale=0.25' in repr(p)
    assert TrigFlowPrecond(time_scale=3).time_scale == 3.0
    assert repr(TrigFlowPrecond(time_scale=3)).count('time_scale') == 1


@pytest.mark.parametrize('bad', [0, -1, float('inf'), float('nan'), 'x', True])
def test_bad_time_scale_is_one_clear_error(bad):
    with pytest.raises(ValueError, match='time_scale'):
        KarrasPrecond(time_scale=bad)


@pytest.mark.parametrize('student, expected', [
    (KarrasPrecond(time_scale=0.25), 0.25),
    (KarrasPrecond(), 250.0),
    (TrigFlowPrecond(time_scale=1.0), 250.0),  # an EDM teacher of the original's kind
])
def test_scd_teacher_takes_its_time_input(student, expected):
    objective = ContinuousConsistencyDistillation(student, teacher=dict(path='unused.pt'))
    teacher = objective.teacher_precond()
    assert type(teacher) is KarrasPrecond and not teacher.boundary_condition
    assert teacher.time_scale == expected
    spy = Spy()
    objective.frozen.module = spy  # read instead of a file
    t = torch.tensor([0.3, 1.0])
    objective.velocity(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4),
                       torch.zeros(2, 3, 4, 4), t, None)
    sigma = 0.5 * torch.tan(t)
    np.testing.assert_allclose(spy.t.numpy(), (expected * torch.log(sigma)).numpy(), rtol=1e-5)
