"""Sigma schedules: the Karras et al. (2022) noise levels every sampler walks.

:func:`get_sigmas_karras`, :func:`ts_to_sigmas` and :func:`check_trig_ts`
are what each registered sampler's noise levels are made of
(:func:`mmagic_cm.sampling.samplers.sampling_sigmas`); :func:`karras_sigma`
is the grid point formula the multistep sampler and training use.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch


def _numbers(value, cast, name: str, expected: str) -> tuple:
    """A tuple of ``cast`` values from a comma-separated string or a sequence."""
    if isinstance(value, str):
        try:
            return tuple(cast(v) for v in value.split(','))
        except ValueError:
            raise ValueError(f'{name}={value!r}: expected comma-separated {expected}') from None
    return tuple(cast(v) for v in value)


def get_sigmas_karras(n: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                      rho: float = 7.0, device='cpu') -> torch.Tensor:
    """Karras et al. (2022) noise levels, descending, with a 0 appended.

    Args:
        n: number of noise levels (>= 1).
        sigma_min, sigma_max: end points; rho: schedule curvature.

    Returns:
        float32 tensor of shape (n + 1,): ``sigma_max ... sigma_min, 0``.
    """
    if n < 1:
        raise ValueError(f'need at least one noise level, got n={n}')
    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min**(1 / rho), sigma_max**(1 / rho)
    sigmas = (hi + ramp * (lo - hi))**rho
    return torch.cat([sigmas, sigmas.new_zeros(1)]).to(device)


def karras_sigma(index, steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0):
    """Noise level(s) at grid index ``index`` of a ``steps``-point Karras grid.

    ``index`` is a number (the multistep sampler: a Python float64, not the
    float32 of :func:`get_sigmas_karras`; that precision is part of matching
    the original images) or a tensor of indices (training: float32 for int
    indices, as the original's losses compute them).
    """
    hi, lo = sigma_max**(1 / rho), sigma_min**(1 / rho)
    return (hi + index / (steps - 1) * (lo - hi))**rho


def check_ts(ts: Optional[Sequence[int]], steps: int) -> tuple:
    """Validate multistep grid indices; returns them as a tuple of ints.

    Raises:
        ValueError: unless ``ts`` has >= 2 strictly increasing integers in
        ``[0, steps - 1]``.
    """
    if steps < 2:
        raise ValueError(f'multistep needs steps >= 2, got steps={steps}')
    if ts is None or isinstance(ts, str) and not ts.strip():
        raise ValueError('multistep needs ts, e.g. ts="0,22,39" with steps=40')
    ts = _numbers(ts, int, 'ts', 'integers, e.g. "0,22,39"')
    if len(ts) < 2:
        raise ValueError(f'ts={list(ts)}: multistep needs at least two indices; '
                         'use the onestep sampler for one step')
    if any(b <= a for a, b in zip(ts, ts[1:])):
        raise ValueError(f'ts={list(ts)} must be strictly increasing')
    if ts[0] < 0 or ts[-1] > steps - 1:
        raise ValueError(f'ts={list(ts)} must lie in [0, steps-1] = [0, {steps - 1}]')
    return ts


def ts_to_sigmas(ts: Sequence[int], steps: int = 40, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    """Multistep grid indices -> their noise levels, float64 (N,).

    Computed in Python floats, as the original does, then stored losslessly.
    """
    return torch.tensor([karras_sigma(t, steps, sigma_min, sigma_max, rho) for t in ts],
                        dtype=torch.float64)


#: the paper's intermediate TrigFlow time of two-step sCM sampling (Lu & Song 2025)
TRIGFLOW_MID = 1.1


def check_trig_ts(trig_ts, steps: int) -> tuple:
    """Intermediate TrigFlow times of an n-step 'trigflow' sampler: n - 1 floats,
    strictly decreasing in (0, π/2); default: none for one step, (1.1,) for two."""
    if trig_ts is None or isinstance(trig_ts, str) and not trig_ts.strip():
        if steps in (1, 2):
            return () if steps == 1 else (TRIGFLOW_MID, )
        raise ValueError(f'the trigflow sampler with steps={steps} needs trig_ts: '
                         f'{steps - 1} TrigFlow times in (0, pi/2), e.g. "1.3,1.1"')
    trig_ts = _numbers(trig_ts, float, 'trig_ts', 'numbers, e.g. "1.1"')
    if len(trig_ts) != steps - 1:
        raise ValueError(f'trig_ts={list(trig_ts)}: {steps} trigflow steps take {steps - 1} '
                         'intermediate times')
    if any(not 0 < t < math.pi / 2 for t in trig_ts) or any(
            b >= a for a, b in zip(trig_ts, trig_ts[1:])):
        raise ValueError(f'trig_ts={list(trig_ts)} must decrease strictly within (0, pi/2)')
    return trig_ts
